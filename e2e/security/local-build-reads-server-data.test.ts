/**
 * Attack: a member triggers a build on a server with the local executor whose steps go for the
 * server's data: the secret key and the database by absolute path and through
 * `$SLIPWAY_WORKSPACE/../../..` (the data dir, when workspaces lived in it), a file written
 * into the data dir, a listing of it, an admin token inserted into `slipway.db` with the
 * host's `sqlite3`, and the step's environment. Once, steps ran as the server's user and
 * every one of these worked. Now they run as the build user and all of them come up empty.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, chown, readFile, rm, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Build } from '../../src/server/api/dto.js';
import { TestRepo } from '../../src/server/testing/git-repo.js';
import { SLIPWAY_BIN } from '../cli-helpers.js';
import {
  allFinished,
  cleanup,
  freePort,
  ServerProcess,
  tempDir,
  type Api,
} from '../server/server-harness.js';

/** What the attack would use as its admin token once inserted. */
const FORGED = 'slw_forged_admin_token_0123456789abcdef';
/** Server environment that must never reach a step. */
const SERVER_ENV = {
  SLIPWAY_TOKEN: 'slw_server_env_token_value',
  AWS_SECRET_ACCESS_KEY: 'server-cloud-credential-value',
};

describe("a member's build on the local executor cannot reach the server's data", () => {
  let server: ServerProcess;
  let api: Api;
  let dataDir: string;
  let build: Build;
  let log: string[];
  let tokensBefore: TokenSummary[];
  let workspaceRoot: string | undefined;

  beforeAll(async () => {
    dataDir = await tempDir('server-data');
    // As a fresh `.slipway-data` used to be made: world-readable. The server must tighten it.
    await chmod(dataDir, 0o755);
    // The server's default build user and workspace root: what an operator gets.
    server = await ServerProcess.start({ executor: 'local', dataDir, workspaceRoot: null, env: SERVER_ENV });
    api = server.api();
    const db = join(dataDir, 'slipway.db');
    const up = '"$SLIPWAY_WORKSPACE/../../.."';
    const attempt = (label: string, command: string) =>
      `echo "${label}: $(${command} 2>&1 | head -c 300 | tr '\\n' ' ')"`;
    const pipeline = {
      steps: [
        {
          name: 'read',
          commands: [
            attempt('key-abs', `base64 -w0 ${dataDir}/secret.key`),
            attempt('key-up', `base64 -w0 ${up}/secret.key`),
            attempt('db-abs', `head -c 15 ${db}`),
            attempt('db-up', `head -c 15 ${up}/slipway.db`),
            attempt('wal-abs', `od -An -tx1 -N4 ${db}-wal`),
          ],
        },
        {
          name: 'list',
          commands: [attempt('ls-abs', `ls -a ${dataDir}`), attempt('ls-up', `ls -a ${up}`)],
        },
        {
          name: 'write',
          commands: [
            attempt('touch-abs', `touch ${dataDir}/planted`),
            attempt('touch-up', `touch ${up}/planted-up`),
            attempt(
              'sqlite',
              `sqlite3 ${db} "insert into tokens (name, role, hash, created_at) values ('forged', 'admin', '${sha256(FORGED)}', 0)"`,
            ),
          ],
        },
        {
          name: 'env',
          commands: ['env | sed "s/^/env: /"', 'echo "id: $(id)"', 'echo "ws: $SLIPWAY_WORKSPACE"'],
        },
      ],
    };
    const repo = await TestRepo.create({ '.slipway.yml': JSON.stringify(pipeline) });
    await api.ok('POST', '/projects', { slug: 'attack/data', repoUrl: repo.url });
    const member = await api.ok<{ token: string }>('POST', '/tokens', { name: 'member', role: 'member' });
    tokensBefore = await tokens(api);
    const trigger = await api.request('POST', '/projects/attack/data/builds', {
      json: { branch: 'main' },
      token: member.token,
    });
    expect(trigger.status, trigger.text).toBe(201);
    [build] = (await allFinished(api, 'attack/data', 1)) as [Build];
    log = (await api.storedLog(build.id)).map((line) => line.text);
    const ws = log.find((line) => line.startsWith('ws: '))?.slice(4);
    // The build's workspace root is /var/tmp/slipway-workspaces-<installation>: ours to remove.
    if (ws !== undefined && !ws.startsWith(dataDir)) workspaceRoot = dirname(dirname(ws));
  });

  afterAll(async () => {
    await cleanup();
    if (workspaceRoot?.startsWith('/var/tmp/slipway-workspaces-')) {
      await rm(workspaceRoot, { recursive: true, force: true });
      // `../../..` of a workspace is /var/tmp now, where the build user may write: not ours to litter.
      await rm(join(dirname(workspaceRoot), 'planted-up'), { force: true });
    }
  });

  const said = (label: string): string => {
    const line = log.find((l) => l.startsWith(`${label}: `));
    expect(line, `the step's "${label}" line in:\n${log.join('\n')}`).toBeDefined();
    return line!.slice(label.length + 2);
  };

  it('the build ran (every step succeeded as its commands ran)', () => {
    expect(build.status, log.join('\n')).toBe('success');
  });

  it('cannot read secret.key, by absolute path or through the workspace', async () => {
    const key = (await readFile(join(dataDir, 'secret.key'))).toString('base64');
    expect(log.join('\n')).not.toContain(key);
    expect(said('key-abs')).toMatch(/Permission denied/);
    expect(said('key-up')).toMatch(/Permission denied|No such file/);
  });

  it('cannot read slipway.db or its WAL', () => {
    expect(log.join('\n')).not.toContain('SQLite format');
    expect(said('db-abs')).toMatch(/Permission denied/);
    expect(said('db-up')).toMatch(/Permission denied|No such file/);
    expect(said('wal-abs')).toMatch(/Permission denied/);
  });

  it('cannot list the data dir', () => {
    expect(said('ls-abs')).toMatch(/Permission denied/);
    expect(said('ls-abs')).not.toContain('slipway.db');
    expect(said('ls-up')).not.toContain('slipway.db');
  });

  it('cannot write into the data dir nor the database', async () => {
    expect(existsSync(join(dataDir, 'planted'))).toBe(false);
    expect(existsSync(join(dataDir, 'planted-up'))).toBe(false);
    expect(said('touch-abs')).toMatch(/Permission denied/);
    expect(said('sqlite')).toMatch(/unable to open|Permission denied|readonly/i);
    expect(await tokens(api)).toEqual(tokensBefore);
    expect((await api.request('GET', '/tokens', { token: FORGED })).status).toBe(401);
  });

  it("sees nothing of the server's environment, and runs as neither root nor the server's user", () => {
    const env = log.filter((l) => l.startsWith('env: ')).map((l) => l.slice(5));
    expect(env.length).toBeGreaterThan(0);
    for (const line of env) {
      expect(line).not.toMatch(/^(SLIPWAY_TOKEN|SLIPWAY_SECRET_KEY|SLIPWAY_DATABASE|SLIPWAY_DATA_DIR|AWS_)/);
      for (const value of Object.values(SERVER_ENV)) expect(line).not.toContain(value);
    }
    const home = env.find((l) => l.startsWith('HOME='))?.slice(5);
    expect(home).toBeDefined();
    expect(home).not.toBe(process.env.HOME);
    expect(home).not.toMatch(/^\/root/);
    const id = said('id');
    expect(id).toMatch(/^uid=\d+\(slipway-build\) gid=\d+\(slipway-build\) groups=\d+\(slipway-build\)$/);
    expect(id).not.toMatch(/\b0\(root\)/);
  });

  it("does not show the server's options (a database URL with its password) in the process list", async () => {
    // Any user, a build's too, may read /proc/<pid>/cmdline.
    const cmdline = (await readFile(`/proc/${server.pid}/cmdline`, 'utf8')).replaceAll('\0', ' ');
    expect(cmdline.trim()).toBe('slipway server');
    expect(cmdline).not.toContain(dataDir);
  });

  it('has its workspace outside the data dir', () => {
    expect(said('ws').startsWith(dataDir)).toBe(false);
  });

  it("keeps the server's files private: data dir 0700, key and database 0600 (tightened, with a warning)", async () => {
    const mode = async (path: string) => ((await stat(path)).mode & 0o777).toString(8);
    expect(await mode(dataDir)).toBe('700');
    expect(await mode(join(dataDir, 'secret.key'))).toBe('600');
    for (const file of ['slipway.db', 'slipway.db-wal', 'slipway.db-shm'])
      if (existsSync(join(dataDir, file))) expect(await mode(join(dataDir, file))).toBe('600');
    expect(server.log).toContain(`data dir ${dataDir} was readable by others (mode 0755)`);
    expect(server.log).toMatch(/builds run as host processes as user slipway-build/);
    // The user exists on the host now, as a system account without a login shell.
    const entry = execFileSync('getent', ['passwd', 'slipway-build'], { encoding: 'utf8' });
    expect(entry).toMatch(/:\/usr\/sbin\/nologin\n?$/);
  });
});

type TokenSummary = { id: number; name: string; role: string };

/** The live tokens, without the last-use times that the member's trigger moves. */
async function tokens(api: Api): Promise<TokenSummary[]> {
  const list = await api.ok<TokenSummary[]>('GET', '/tokens');
  return list.map(({ id, name, role }) => ({ id, name, role }));
}

describe('a server that is not root and cannot switch users', () => {
  afterAll(cleanup);

  it('refuses to start with the local executor, naming --build-user self and what it means', async () => {
    const entry = execFileSync('getent', ['passwd', 'slipway-build'], { encoding: 'utf8' }).split(':');
    const [uid, gid] = [Number(entry[2]), Number(entry[3])];
    const dataDir = await tempDir('unprivileged-data');
    await chown(dataDir, uid, gid);
    const result = spawnSync(
      process.execPath,
      [
        SLIPWAY_BIN,
        'server',
        '--executor',
        'local',
        '--data-dir',
        dataDir,
        '--port',
        String(await freePort()),
      ],
      {
        uid,
        gid,
        encoding: 'utf8',
        env: { PATH: process.env.PATH ?? '/usr/bin:/bin', NO_COLOR: '1' },
        timeout: 60_000,
      },
    );
    expect(result.status, result.stderr).toBe(1);
    expect(result.stderr).toContain(
      'the local executor runs builds as the user "slipway-build", but the server runs as slipway-build',
    );
    expect(result.stderr).toContain(
      "pass --build-user self to run builds as slipway-build: builds can then read and change the server's data.",
    );
    expect(result.stderr).not.toMatch(/\n\s+at /);
  });
});

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}
