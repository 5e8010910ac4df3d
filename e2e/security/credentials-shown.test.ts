/**
 * Attack (issue 10 item 6): credentials shown to viewers and to third parties. A repository
 * URL with `user:token@` was returned as is to viewers and sent in every notification; a
 * notification target's URL (Slack's is a bearer credential) was returned to viewers. Now the
 * credentials are a sealed project secret, every URL leaving the server is redacted, and the
 * server still clones with them: here from a real `git http-backend` that demands Basic auth.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdir, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type Api,
  FINISHED,
  ServerProcess,
  cleanup,
  execFileAsync,
  tempDir,
  waitFor,
} from '../server/server-harness.js';

const USER = 'alice';
const TOKEN = 'ghp_RepoTokenNeverShown0123456789';
const HOOK_PATH = 'T000/B000/SlackPathIsABearerSecret42';

/** Serves `root` through `git http-backend` (CGI) to requests with the right Basic credentials. */
function gitHttpServer(root: string, seen: string[]): Server {
  const wanted = `Basic ${Buffer.from(`${USER}:${TOKEN}`).toString('base64')}`;
  return createServer((req: IncomingMessage, res: ServerResponse) => {
    seen.push(req.headers.authorization ?? '');
    if (req.headers.authorization !== wanted) {
      res.writeHead(401, { 'www-authenticate': 'Basic realm="git"' }).end('credentials required\n');
      return;
    }
    const url = new URL(req.url ?? '/', 'http://x');
    const cgi = spawn('git', ['http-backend'], {
      env: {
        ...process.env,
        GIT_PROJECT_ROOT: root,
        GIT_HTTP_EXPORT_ALL: '1',
        PATH_INFO: decodeURIComponent(url.pathname),
        QUERY_STRING: url.search.slice(1),
        REQUEST_METHOD: req.method ?? 'GET',
        CONTENT_TYPE: req.headers['content-type'] ?? '',
        REMOTE_USER: USER,
        REMOTE_ADDR: '127.0.0.1',
      },
    });
    req.pipe(cgi.stdin);
    const chunks: Buffer[] = [];
    cgi.stdout.on('data', (c: Buffer) => chunks.push(c));
    cgi.on('close', () => {
      const out = Buffer.concat(chunks);
      const split = out.indexOf('\r\n\r\n');
      const head = out.subarray(0, split).toString('latin1');
      const headers: Record<string, string> = {};
      let status = 200;
      for (const line of head.split('\r\n')) {
        const at = line.indexOf(':');
        const name = line.slice(0, at).trim().toLowerCase();
        const value = line.slice(at + 1).trim();
        if (name === 'status') status = Number.parseInt(value, 10);
        else if (name !== '') headers[name] = value;
      }
      res.writeHead(status, headers).end(out.subarray(split + 4));
    });
  });
}

/** Records every body POSTed to it. */
function receiver(bodies: string[]): Server {
  return createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      bodies.push(`${req.url} ${body}`);
      res.writeHead(200).end();
    });
  });
}

async function listen(server: Server): Promise<number> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return (server.address() as AddressInfo).port;
}

describe('security: credentials are never shown', () => {
  let server: ServerProcess;
  let admin: Api;
  let viewer: Api;
  let git: Server;
  let notices: Server;
  const auth: string[] = [];
  const received: string[] = [];
  let repoUrl: string;
  let hookUrl: string;

  beforeAll(async () => {
    const root = await tempDir('git-http');
    const work = join(root, 'work');
    await execFileAsync('git', ['init', '--bare', '-q', '-b', 'main', join(root, 'repo.git')]);
    await mkdir(work);
    await writeFile(
      join(work, '.slipway.yml'),
      'steps:\n  - name: show\n    commands:\n      - cat .git/config 2>/dev/null || echo no-git-config\n      - echo cloned-ok\n',
    );
    const g = (...args: string[]) => execFileAsync('git', ['-C', work, ...args]);
    await g('init', '-q', '-b', 'main');
    await g('-c', 'user.name=t', '-c', 'user.email=t@t', 'add', '.');
    await g('-c', 'user.name=t', '-c', 'user.email=t@t', 'commit', '-q', '-m', 'pipeline');
    await g('push', '-q', join(root, 'repo.git'), 'main');
    git = gitHttpServer(root, auth);
    repoUrl = `http://${USER}:${TOKEN}@127.0.0.1:${await listen(git)}/repo.git`;
    notices = receiver(received);
    hookUrl = `http://127.0.0.1:${await listen(notices)}/services/${HOOK_PATH}`;

    server = await ServerProcess.start({ executor: 'local' });
    admin = server.api();
    const token = await admin.ok<{ token: string }>('POST', '/tokens', { name: 'looker', role: 'viewer' });
    viewer = server.api(token.token);
  }, 120_000);

  afterAll(async () => {
    git?.close();
    notices?.close();
    await cleanup();
  }, 60_000);

  it('a project created with user:token@ shows *** to every role, and its notify target only scheme and host', async () => {
    const created = await admin.ok<{ repoUrl: string }>('POST', '/projects', {
      slug: 'sec/creds',
      repoUrl,
      defaultExecutor: 'local',
    });
    expect(created.repoUrl).toBe(repoUrl.replace(`${USER}:${TOKEN}`, '***'));
    await admin.ok('POST', '/projects/sec/creds/notify-targets', { url: hookUrl });
    for (const api of [viewer, admin]) {
      const project = await api.request('GET', '/projects/sec/creds');
      expect(project.status).toBe(200);
      expect(project.text).not.toContain(TOKEN);
      expect(project.text).toContain('http://***@127.0.0.1');
      const list = await api.request('GET', '/projects');
      expect(list.text).not.toContain(TOKEN);
      const targets = await api.request<{ url: string }[]>('GET', '/projects/sec/creds/notify-targets');
      expect(targets.status).toBe(200);
      expect(targets.text).not.toContain(HOOK_PATH);
      expect(targets.body[0]!.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/\*\*\*$/);
    }
  });

  it('the build clones with the credentials, and neither its log nor its notifications show them', async () => {
    const build = await admin.ok<{ id: number }>('POST', '/projects/sec/creds/builds', { branch: 'main' });
    const done = await waitFor(
      'the build to finish',
      async () => {
        const b = await admin.build(build.id);
        return FINISHED.has(b.status) ? b : undefined;
      },
      120_000,
      250,
    );
    const log = (await admin.storedLog(build.id)).map((l) => l.text).join('\n');
    expect(done.status, log).toBe('success');
    expect(log).toContain('cloned-ok');
    expect(log).not.toContain(TOKEN);
    expect(auth.some((a) => a.startsWith('Basic '))).toBe(true);
    // Both notices (started, finished) arrive in the background.
    const notes = await waitFor('two notices', () => (received.length >= 2 ? received : undefined), 60_000);
    for (const note of notes) {
      expect(note).not.toContain(TOKEN);
      expect(note).toContain('http://***@127.0.0.1');
    }
  }, 180_000);

  it('sending the redacted URL back keeps the credentials; the secret is listed, never shown', async () => {
    const shown = (await admin.ok<{ repoUrl: string }>('GET', '/projects/sec/creds')).repoUrl;
    await admin.ok('PATCH', '/projects/sec/creds', { repoUrl: shown });
    const secrets = await admin.request('GET', '/projects/sec/creds/secrets');
    expect(secrets.text).toContain('.repo-credentials');
    expect(secrets.text).not.toContain(TOKEN);
    const build = await admin.ok<{ id: number }>('POST', '/projects/sec/creds/builds', { branch: 'main' });
    const done = await waitFor(
      'the second build',
      async () => {
        const b = await admin.build(build.id);
        return FINISHED.has(b.status) ? b : undefined;
      },
      120_000,
      250,
    );
    expect(done.status).toBe('success');
  }, 180_000);
});
