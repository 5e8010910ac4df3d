/**
 * Attack (issue 10 item 4): the live log had no backpressure and no memory bound. One step
 * printing a 50 MB line with 10 viewers following it took the server to 2.1 GB and stalled
 * `/healthz` for 10 s. Now a logical line keeps its first 1 MiB and ends with a marker (the
 * rest is discarded as it streams), a build's log has a cap (the project's, else the
 * server's), and a reader that does not keep up is written to no further than a bound and
 * catches up from the store. Real server process, local executor.
 */
import { readFile } from 'node:fs/promises';
import { request as httpRequest, type ClientRequest } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Build, LogLine } from '../../src/server/api/dto.js';
import { TestRepo } from '../../src/server/testing/git-repo.js';
import type { Api } from '../server/server-harness.js';
import { FINISHED, ServerProcess, cleanup, followLog, waitFor } from '../server/server-harness.js';

const MB50 = 52_428_800;

async function rssMb(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? 0) / 1024;
}

/** Opens the live log and never reads it: the socket's buffers fill and stay full. */
function pausedFollower(api: Api, buildId: number): ClientRequest {
  const url = new URL(`${api.baseUrl}/api/v1/builds/${buildId}/logs?follow=1`);
  const req = httpRequest(url, {
    headers: { authorization: `Bearer ${api.token}`, accept: 'text/event-stream' },
  });
  req.on('response', (res) => res.pause());
  req.on('error', () => undefined);
  req.end();
  return req;
}

async function finished(api: Api, id: number): Promise<Build> {
  return waitFor(
    `build ${id} to finish`,
    async () => {
      const build = await api.build(id);
      return FINISHED.has(build.status) ? build : undefined;
    },
    240_000,
    250,
  );
}

describe('live log under a 50 MB line and 10 followers (issue 10 item 4)', () => {
  let server: ServerProcess;
  let api: Api;
  let repo: TestRepo;

  beforeAll(async () => {
    server = await ServerProcess.start({ executor: 'local' });
    api = server.api();
    repo = await TestRepo.create({
      '.slipway.yml': [
        'steps:',
        '  - name: huge',
        '    commands:',
        // Time for the followers to connect; they would get everything from the store anyway.
        '      - sleep 3',
        `      - head -c ${MB50} /dev/zero | tr '\\0' a; echo`,
        '      - echo after the line',
        '',
      ].join('\n'),
    });
    await api.ok('POST', '/projects', { slug: 'attack/huge', repoUrl: repo.url });
  }, 120_000);

  afterAll(cleanup);

  it('keeps RSS bounded and /healthz answering; readers get the truncated line and the end', async () => {
    const build = await api.ok<Build>('POST', '/projects/attack/huge/builds', { branch: 'main' });
    const readers = Array.from({ length: 5 }, () => followLog(api, build.id));
    const paused = Array.from({ length: 5 }, () => pausedFollower(api, build.id));

    let maxRss = await rssMb(server.pid);
    let maxHealthMs = 0;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        const t0 = performance.now();
        const health = await fetch(`${server.url}/healthz`);
        await health.text();
        maxHealthMs = Math.max(maxHealthMs, performance.now() - t0);
        maxRss = Math.max(maxRss, await rssMb(server.pid));
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    })();

    const done = await finished(api, build.id);
    const endings = await Promise.all(readers.map((r) => r.done));
    sampling = false;
    await sampler;
    for (const req of paused) req.destroy();

    expect(done.status).toBe('success');
    expect(endings).toEqual(Array(5).fill('end'));
    for (const reader of readers) {
      const texts = reader.lines.map((l: LogLine) => l.text);
      const kept = texts.filter((t) => /^a+$/.test(t));
      expect(kept.join('').length).toBe(1024 * 1024);
      expect(texts).toContain('… [line truncated: 52,428,800 bytes, kept 1,048,576]');
      expect(texts).toContain('after the line');
    }
    expect(maxRss, `largest RSS of the server, MB`).toBeLessThan(600);
    expect(maxHealthMs, 'longest /healthz round trip, ms').toBeLessThan(3000);
    console.log(
      `50 MB line, 10 followers: max RSS ${maxRss.toFixed(0)} MB, max /healthz ${maxHealthMs.toFixed(0)} ms`,
    );
  }, 300_000);

  it("a build whose log passes the project's limit ends with its real status and one marker", async () => {
    const limited = await TestRepo.create({
      '.slipway.yml': [
        'steps:',
        '  - name: chatty',
        '    commands:',
        '      - seq 1 400000',
        '      - exit 3',
        '',
      ].join('\n'),
    });
    await api.ok('POST', '/projects', {
      slug: 'attack/chatty',
      repoUrl: limited.url,
      maxLogBytes: 1024 * 1024,
    });
    const project = await api.ok<{ maxLogBytes: number | null }>('GET', '/projects/attack/chatty');
    expect(project.maxLogBytes).toBe(1024 * 1024);
    const build = await api.ok<Build>('POST', '/projects/attack/chatty/builds', { branch: 'main' });
    const done = await finished(api, build.id);
    expect(done.status).toBe('failure');
    const log = await api.storedLog(build.id);
    const output = log.filter((l) => l.stream === 'stdout');
    const markers = log.filter((l) => l.text === '[log limit reached: further output dropped]');
    expect(markers).toHaveLength(1);
    expect(output.reduce((sum, l) => sum + Buffer.byteLength(l.text), 0)).toBeLessThanOrEqual(1024 * 1024);
    expect(output.at(-1)?.text).not.toBe('400000');
    // The step's own exit code decided, and the server's note about it is still there.
    expect(
      log.some((l) => l.stream === 'system' && /exited with code 3/.test(l.text)),
      log
        .filter((l) => l.stream === 'system')
        .map((l) => l.text)
        .join('\n'),
    ).toBe(true);
    const record = await api.build(build.id);
    expect(JSON.stringify(record)).toContain('exited with code 3');
  }, 300_000);
});
