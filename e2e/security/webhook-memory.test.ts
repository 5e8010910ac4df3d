/**
 * Attack (issue 10 item 7): unauthenticated memory use through `/hooks/*`. Ten parallel
 * deliveries of 24 MiB with a bad signature used to be buffered, decoded and JSON-parsed
 * before the signature was looked at: a real server grew from 105 to 411 MB. Now the body is
 * streamed with a hard cap (5 MiB by default), a declared length over it is refused before a
 * byte is read, and `?project=` deliveries are verified over the raw bytes before parsing.
 */
import { readFileSync } from 'node:fs';
import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signBody } from '../../src/server/hooks/signatures.js';
import { ServerProcess, cleanup } from '../server/server-harness.js';

const MiB = 1024 * 1024;
const SECRET = 'webhook-memory-secret';

/** The process's peak resident set (VmHWM) in bytes, as the kernel counts it. */
function peakRss(pid: number): number {
  const line = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!line) throw new Error(`no VmHWM in /proc/${pid}/status`);
  return Number(line[1]) * 1024;
}

/**
 * One POST of `body`; chunked (no Content-Length) when asked. Resolves with the status, or with
 * `reset` when the server closed the connection under the upload before its answer was read:
 * Node's server closes a connection whose request it answered before reading it whole, and on
 * a busy machine the client may hit the closed socket (EPIPE, ECONNRESET) before it has parsed
 * the answer. That is a refusal too; nothing else is.
 */
function post(url: string, path: string, body: Buffer, headers: Record<string, string>, chunked: boolean) {
  return new Promise<number | 'reset'>((resolve, reject) => {
    const req = request(`${url}${path}`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        ...headers,
        ...(chunked ? { 'transfer-encoding': 'chunked' } : { 'content-length': String(body.length) }),
      },
    });
    let status: number | undefined;
    req.on('response', (res) => {
      status = res.statusCode;
      res.resume();
      res.on('end', () => resolve(status!));
    });
    // A server that answers before the upload ends may close the socket under it: the answer counts.
    req.on('error', (error: NodeJS.ErrnoException) => {
      if (status !== undefined) resolve(status);
      else if (error.code === 'EPIPE' || error.code === 'ECONNRESET') resolve('reset');
      else reject(error);
    });
    if (chunked) {
      for (let at = 0; at < body.length; at += MiB) req.write(body.subarray(at, at + MiB));
      req.end();
    } else req.end(body);
  });
}

describe('security: webhook bodies cannot grow the server', () => {
  let server: ServerProcess;

  beforeAll(async () => {
    server = await ServerProcess.start({ executor: 'local' });
    const api = server.api();
    await api.ok('POST', '/projects', { slug: 'sec/mem', repoUrl: 'https://git.example.com/sec/mem.git' });
    await api.ok('PATCH', '/projects/sec/mem/hooks', { secret: SECRET });
  }, 120_000);

  afterAll(cleanup, 60_000);

  it('ten parallel bad-signature 24 MiB posts: each refused, peak RSS grows far less than the bodies', async () => {
    // A JSON object of 24 MiB naming the project's repository, so that parsing it would find it.
    const head =
      '{"repository":{"clone_url":"https://git.example.com/sec/mem.git"},"ref":"refs/heads/main","pad":"';
    const body = Buffer.alloc(24 * MiB, 'a');
    body.write(head, 0);
    body.write('"}', body.length - 2);
    const bad = { 'x-hub-signature-256': signBody('not the secret', body), 'x-github-event': 'push' };
    // Warm up the route (JIT, pools) so that the baseline is the steady state.
    expect(await post(server.url, '/hooks/github?project=sec/mem', Buffer.from('{}'), bad, false)).toBe(401);
    const before = peakRss(server.pid);
    const answers = await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        post(
          server.url,
          // Half name the project (verified first), half do not (the payload would have to say).
          i % 2 === 0 ? '/hooks/github?project=sec/mem' : '/hooks/github',
          body,
          bad,
          // Half declare their length, half stream chunked so that only the cap can stop them.
          i % 4 < 2,
        ),
      ),
    );
    for (const status of answers) expect([401, 413, 'reset']).toContain(status);
    const growth = peakRss(server.pid) - before;
    // Before the fix: ~300 MB. Ten capped bodies of 5 MiB are 50 MiB at most, whatever the load.
    expect(growth, `peak RSS grew by ${Math.round(growth / MiB)} MiB`).toBeLessThan(150 * MiB);
    // None of them got through, whatever its answer looked like.
    expect(await server.api().allBuilds('sec/mem')).toEqual([]);
    // The server still answers.
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
  }, 180_000);

  it('a genuine delivery of ordinary size still gets through', async () => {
    const body = Buffer.from(
      JSON.stringify({ ref: 'refs/heads/main', after: 'a'.repeat(40), head_commit: { id: 'a'.repeat(40) } }),
    );
    const status = await post(
      server.url,
      '/hooks/github?project=sec/mem',
      body,
      { 'x-hub-signature-256': signBody(SECRET, body), 'x-github-event': 'push' },
      false,
    );
    expect(status).toBe(201);
  }, 60_000);
});
