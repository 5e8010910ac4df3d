import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { buildApp } from '../../server/api/app.js';
import type { App } from '../../server/api/context.js';
import { Metrics } from '../../server/metrics.js';
import { TestRepo } from '../../server/testing/git-repo.js';
import { localScheduler } from '../../server/testing/local-scheduler.js';
import type { Scheduler } from '../../server/scheduler/scheduler.js';
import type { DatabaseBuildControl } from '../../server/scheduler/build-control.js';
import { createProject, createToken, getBuild, type Build, type Project } from '../../store/index.js';
import { openTestDatabase, type TestDatabase } from '../../store/testing/dialects.js';
import { registerRemoteCommands } from './commands.js';
import { until } from '../../testing/until.js';

const GATED = `
stages:
  - name: deploy
    approval: true
    steps:
      - name: ship
        commands: [echo shipped]
  - name: report
    when: { status: [success, failure] }
    steps:
      - name: tell
        commands: [echo reported]
`;

/** `slipway approve` and `get build` against a real server whose scheduler runs real builds. */
describe('slipway approve against a real server (real git, local executor)', () => {
  let t: TestDatabase;
  let app: App;
  let scheduler: Scheduler;
  let control: DatabaseBuildControl;
  let token = '';
  let server = '';
  let project: Project;

  beforeAll(async () => {
    t = await openTestDatabase('sqlite');
    const dataDir = await mkdtemp(join(tmpdir(), 'slipway-cli-approve-'));
    const local = localScheduler(t.db, dataDir);
    ({ scheduler, control } = local);
    app = buildApp({
      db: t.db,
      control,
      logs: local.logs,
      hub: local.hub,
      metrics: new Metrics({ db: t.db, processMetrics: false }),
      globalLimit: 2,
    });
    server = await app.listen({ host: '127.0.0.1', port: 0 });
    token = (await createToken(t.db, { name: 'member-token', role: 'member' })).token;
    const repo = await TestRepo.create({ '.slipway.yml': GATED });
    project = await createProject(t.db, { slug: 'acme/deploy', repoUrl: repo.url });
    scheduler.start();
  });

  afterAll(async () => {
    await scheduler?.stop();
    await app?.close();
    await t?.destroy();
  });

  beforeEach(() => {
    vi.stubEnv('NO_COLOR', '1');
    vi.stubEnv('SLIPWAY_SERVER', '');
    return () => vi.unstubAllEnvs();
  });

  /** Runs `slipway <args>` in-process as the member token; what it printed and its exit code. */
  async function slipway(...args: string[]): Promise<{ code: number; stdout: string }> {
    const program = new Command('slipway').exitOverride();
    let code = -1;
    registerRemoteCommands(program, (c) => (code = c));
    let stdout = '';
    const spy = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
      stdout += typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString();
      return true;
    });
    try {
      await program.parseAsync([...args, '--server', server, '--token', token], { from: 'user' });
    } finally {
      spy.mockRestore();
    }
    return { code, stdout };
  }

  const waitingBuild = async (): Promise<Build> => {
    const build = await control.trigger(project, {
      branch: 'main',
      event: 'manual',
      trigger: 'manual',
      triggeredBy: 'ana',
    });
    return until(async () => {
      const now = await getBuild(t.db, build.id);
      return now?.status === 'waiting' ? now : undefined;
    });
  };

  it('approve --reject --reason records the reason and prints the state after the decision', async () => {
    const build = await waitingBuild();
    const shown = await slipway('get', 'build', project.slug, String(build.number));
    expect(shown.stdout).toMatch(/approval\s+deploy waiting for a person since /);

    const res = await slipway(
      'approve',
      project.slug,
      String(build.number),
      '--reject',
      '--reason',
      'not today',
    );
    expect(res.code).toBe(0);
    const lines = res.stdout.trimEnd().split('\n');
    expect(lines[0]).toBe(`${project.slug} #${build.number}: deploy rejected by member-token — "not today"`);
    // The state after the server acted on it: no longer waiting (the `when.status` stage runs).
    expect(lines[1]).toMatch(new RegExp(`^${project.slug} #${build.number} (running|failure)`));
    expect((await getBuild(t.db, build.id))?.status).not.toBe('waiting');

    const done = await until(async () => {
      const now = await getBuild(t.db, build.id);
      return now?.status === 'failure' ? now : undefined;
    });
    const detail = await slipway('get', 'build', project.slug, String(done.number));
    expect(detail.stdout).toMatch(
      /approval\s+deploy rejected by member-token (just now|\d+s ago) — "not today"/,
    );
  });

  it('approve --comment (an alias) approves, and the build goes on', async () => {
    const build = await waitingBuild();
    const res = await slipway('approve', project.slug, String(build.number), '--comment', 'ship it');
    expect(res.code).toBe(0);
    expect(res.stdout.split('\n')[0]).toBe(
      `${project.slug} #${build.number}: deploy approved by member-token — "ship it"`,
    );
    expect(res.stdout.split('\n')[1]).toMatch(
      new RegExp(`^${project.slug} #${build.number} (running|success)$`),
    );
  });
});
