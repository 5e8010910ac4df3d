/**
 * Attacks (issue 10 item 3 and the compiler Lows) on a real `slipway server` process: a
 * pipeline whose `${}` references double 25 times (586 bytes took the server from 334 MB to
 * 1.85 GB and ended in `spawn E2BIG`), a 10 MB pipeline file (held the event loop 7 s) and a
 * 20,000-deep nesting (2 s). Each build now ends `failure` with `pipeline_invalid` and a
 * message that says which limit, and `/healthz` keeps answering while the server compiles
 * (in a worker thread). Needs `npx tsc -p tsconfig.build.json`.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BuildDetail } from '../../src/server/api/dto.js';
import { TestRepo } from '../../src/server/testing/git-repo.js';
import { allFinished, cleanup, ServerProcess, type Api } from '../server/server-harness.js';
import { probeHealth } from './probe-health.js';

/** `A1: "${A0}${A0}"` and so on, 25 times: 2^25 × 16 characters once expanded. */
function doublings(): string {
  const lines = ['env:', '  A0: "0123456789abcdef"'];
  for (let i = 1; i <= 25; i++) lines.push(`  A${i}: "\${A${i - 1}}\${A${i - 1}}"`);
  lines.push('steps:', '  - name: boom', '    commands: ["echo ${A25} | wc -c"]');
  return lines.join('\n') + '\n';
}

/** A 10 MB file of ordinary commands. */
function tenMegabytes(): string {
  const line = '      - echo hello world this is a line of text\n';
  return 'steps:\n  - name: big\n    commands:\n' + line.repeat(Math.ceil(10_000_000 / line.length));
}

/** Lists in lists, 20,000 deep, as a step's env value. */
function deep(): string {
  const n = 20_000;
  return `steps:\n  - name: deep\n    commands: [echo]\n    env:\n      X: ${'['.repeat(n)}${']'.repeat(n)}\n`;
}

describe('security: a pipeline file cannot exhaust or stall the server', () => {
  let server: ServerProcess;
  let api: Api;

  beforeAll(async () => {
    server = await ServerProcess.start({ executor: 'local' });
    api = server.api();
  }, 120_000);
  afterAll(cleanup, 60_000);

  /** Builds `source` as `.slipway.yml` of a new project while probing `/healthz`. */
  async function buildOf(slug: string, source: string): Promise<{ detail: BuildDetail; longest: number }> {
    const repo = await TestRepo.create({ '.slipway.yml': source });
    await api.ok('POST', '/projects', { slug, repoUrl: repo.url });
    const probe = probeHealth(server.url);
    let detail: BuildDetail;
    let longest: number;
    try {
      await api.ok('POST', `/projects/${slug}/builds`, { branch: 'main' });
      const [build] = await allFinished(api, slug, 1);
      detail = await api.build(build!.id);
    } finally {
      longest = await probe.stop();
    }
    console.log(`${slug}: longest /healthz round trip ${Math.round(longest)} ms`);
    return { detail, longest };
  }

  it('25 chained ${A}${A} doublings: the build fails with the value and line that cross 64 KiB', async () => {
    const { detail } = await buildOf('attack/doublings', doublings());
    expect(detail.status, JSON.stringify(detail)).toBe('failure');
    expect(detail.reason).toEqual({
      code: 'pipeline_invalid',
      message:
        '.slipway.yml is invalid (1 error): .slipway.yml:15:15: the value of A13 at env.A13 expands to more than 64 KiB at "${A12}"; a value may be at most 64 KiB (65536 characters) after substitution',
    });
    // The server is still itself afterwards.
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
  }, 180_000);

  it('a 10 MB pipeline file: /healthz answers throughout, the build fails saying the file is too large', async () => {
    const source = tenMegabytes();
    const { detail, longest } = await buildOf('attack/ten-mb', source);
    expect(detail.status, JSON.stringify(detail)).toBe('failure');
    expect(detail.reason).toEqual({
      code: 'pipeline_invalid',
      message: `.slipway.yml is invalid (1 error): .slipway.yml:1:1: the file is ${Buffer.byteLength(source)} bytes, more than 1 MiB; a pipeline file may be at most 1 MiB (1048576 bytes)`,
    });
    // Before the fix: 7 s. Generous for a machine at load 8.
    expect(longest, `longest /healthz round trip ${Math.round(longest)} ms`).toBeLessThan(2_000);
  }, 180_000);

  it('20,000 levels of nesting: /healthz answers throughout, the build fails saying it nests too deep', async () => {
    const { detail, longest } = await buildOf('attack/deep', deep());
    expect(detail.status, JSON.stringify(detail)).toBe('failure');
    expect(detail.reason).toEqual({
      code: 'pipeline_invalid',
      message:
        '.slipway.yml is invalid (1 error): .slipway.yml:5:70: mappings and lists nest more than 64 levels deep here; a pipeline file may nest them at most 64 levels deep',
    });
    // Before the fix: 2 s, then "Maximum call stack size exceeded". Generous for load 8.
    expect(longest, `longest /healthz round trip ${Math.round(longest)} ms`).toBeLessThan(2_000);
  }, 180_000);
});
