import { access, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RecordingSink, eventually, isAlive, within } from '../executor.case.js';
import type { BuildSpec, StepSpec } from '../types.js';
import { ExecutorError } from '../types.js';
import { runStep } from '../lifecycle.js';
import { LocalExecutor, type LocalExecutorOptions } from './local-executor.js';

const roots: string[] = [];
async function tempDir(prefix: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  roots.push(dir);
  return dir;
}
afterAll(async () => {
  await Promise.all(roots.map((r) => rm(r, { recursive: true, force: true })));
});

let seq = 0;
const build = (extra: Partial<BuildSpec> = {}): BuildSpec => ({
  buildId: `local-${++seq}`,
  project: 'acme/app',
  branch: 'main',
  services: [],
  ...extra,
});
const step = (commands: string[], env: Record<string, string> = {}): StepSpec => ({
  key: `test/s${++seq}`,
  stage: 'test',
  step: `s${seq}`,
  commands,
  env,
  secrets: {},
  attempt: 1,
});
const never = (): AbortSignal => new AbortController().signal;

describe('LocalExecutor', () => {
  let tmpRoot: string;
  let ex: LocalExecutor;
  const make = (options: LocalExecutorOptions = {}): LocalExecutor =>
    new LocalExecutor({ tmpRoot, killGraceMs: 300, outputDrainMs: 500, ...options });

  beforeAll(async () => {
    tmpRoot = await tempDir('slipway-test-local-');
    ex = make();
  });

  describe('workspace', () => {
    it('derives the workspace path from the build id, inside tmpRoot, before prepare', async () => {
      const path = ex.workspacePath('../../etc/passwd');
      expect(path.startsWith(tmpRoot + '/slipway-')).toBe(true);
      expect(path.endsWith('/workspace')).toBe(true);
      expect(ex.workspacePath('a/b')).not.toBe(ex.workspacePath('a_b'));
      const h = await ex.prepare(build({ buildId: '../../etc/passwd' }));
      expect(h.workspace).toBe(path);
      await ex.destroy(h);
    });

    it('uses a given workdir as the workspace and keeps it on destroy', async () => {
      const workdir = await tempDir('slipway-test-workdir-');
      await writeFile(join(workdir, 'mine.txt'), 'keep me\n');
      const wx = make({ workdir });
      const h = await wx.prepare(build());
      expect(h.workspace).toBe(workdir);
      expect(wx.workspacePath('anything')).toBe(workdir);
      const sink = new RecordingSink();
      expect(await runStep(wx, h, step(['cat mine.txt', 'echo new > made.txt']), sink, never())).toEqual({
        kind: 'exited',
        exitCode: 0,
      });
      expect(sink.out()).toEqual(['keep me']);
      await wx.destroy(h);
      expect(await readFile(join(workdir, 'made.txt'), 'utf8')).toBe('new\n');
      expect(await readFile(join(workdir, 'mine.txt'), 'utf8')).toBe('keep me\n');
    });

    it('keeps scripts and the marker outside the workspace', async () => {
      const h = await ex.prepare(build());
      const sink = new RecordingSink();
      await runStep(ex, h, step(['ls -A']), sink, never());
      expect(sink.out()).toEqual([]);
      await ex.destroy(h);
    });

    it('removes read-only directories a build leaves behind', async () => {
      const h = await ex.prepare(build());
      await runStep(
        ex,
        h,
        step(['mkdir -p ro/sub', 'echo x > ro/sub/f', 'chmod 500 ro/sub ro']),
        new RecordingSink(),
        never(),
      );
      await ex.destroy(h);
      await expect(access(h.workspace)).rejects.toThrow();
    });

    it('finds a workspace left by a crashed process and removes it', async () => {
      const crashed = make();
      const h = await crashed.prepare(build());
      const leftover = (await ex.listResources()).find((r) => r.buildId === h.buildId);
      expect(leftover).toMatchObject({
        kind: 'workspace',
        id: h.workspace,
        project: 'acme/app',
        running: false,
      });
      expect((await crashed.listResources()).find((r) => r.buildId === h.buildId)?.running).toBe(true);
      await ex.removeResources(h.buildId);
      await expect(access(h.workspace)).rejects.toThrow();
      expect((await ex.listResources()).filter((r) => r.buildId === h.buildId)).toEqual([]);
    });

    it('rejects preparing the same build twice', async () => {
      const h = await ex.prepare(build());
      await expect(ex.prepare(build({ buildId: h.buildId }))).rejects.toMatchObject({ code: 'workspace' });
      await ex.destroy(h);
    });

    it('fails prepare with a workspace error when sourceDir is missing', async () => {
      const spec = build({ sourceDir: join(tmpRoot, 'no-such-dir') });
      await expect(ex.prepare(spec)).rejects.toMatchObject({ name: 'ExecutorError', code: 'workspace' });
      await ex.destroy({ buildId: spec.buildId, workspace: ex.workspacePath(spec.buildId) });
    });
  });

  describe('steps', () => {
    it('inherits PATH and HOME from the host, not other host variables; step env wins', async () => {
      process.env.SLIPWAY_TEST_SERVER_SECRET = 'do-not-leak';
      try {
        const h = await ex.prepare(build());
        const sink = new RecordingSink();
        const exit = await runStep(
          ex,
          h,
          step(['echo "$HOME"', 'echo "${SLIPWAY_TEST_SERVER_SECRET:-unset}"', 'echo "$LANG"', 'seq 1 1'], {
            LANG: 'C.UTF-8',
          }),
          sink,
          never(),
        );
        expect(exit).toEqual({ kind: 'exited', exitCode: 0 });
        expect(sink.out()).toEqual([process.env.HOME ?? '', 'unset', 'C.UTF-8', '1']);
        await ex.destroy(h);
      } finally {
        delete process.env.SLIPWAY_TEST_SERVER_SECRET;
      }
    });

    it('passes the whole host env with inheritEnv: all', async () => {
      process.env.SLIPWAY_TEST_HOST_VAR = 'visible';
      try {
        const all = make({ inheritEnv: 'all' });
        const h = await all.prepare(build());
        const sink = new RecordingSink();
        await runStep(all, h, step(['echo "$SLIPWAY_TEST_HOST_VAR"']), sink, never());
        expect(sink.out()).toEqual(['visible']);
        await all.destroy(h);
      } finally {
        delete process.env.SLIPWAY_TEST_HOST_VAR;
      }
    });

    it('reports death by a signal as 128 + signal number', async () => {
      const h = await ex.prepare(build());
      expect(await runStep(ex, h, step(['kill -KILL $$']), new RecordingSink(), never())).toEqual({
        kind: 'exited',
        exitCode: 137,
      });
      await ex.destroy(h);
    });

    it('resolves kind error when the shell cannot start', async () => {
      const h = await ex.prepare(build());
      await rm(h.workspace, { recursive: true });
      const exit = await runStep(ex, h, step(['echo hi']), new RecordingSink(), never());
      expect(exit?.kind).toBe('error');
      await ex.destroy(h);
    });

    it('resolves kind error for a build it did not prepare', async () => {
      const exit = await runStep(
        ex,
        { buildId: 'unknown', workspace: '/nowhere' },
        step(['true']),
        new RecordingSink(),
        never(),
      );
      expect(exit).toMatchObject({ kind: 'error', code: 'workspace' });
    });

    it('lists a running step as a process of its build', async () => {
      const h = await ex.prepare(build());
      const ctl = new AbortController();
      const sink = new RecordingSink();
      const s = step(['echo started', 'sleep 300']);
      const running = runStep(ex, h, s, sink, ctl.signal);
      await eventually(10_000, 'started', () => sink.has('started'));
      const procs = (await ex.listResources()).filter((r) => r.buildId === h.buildId && r.kind === 'process');
      expect(procs).toEqual([
        {
          kind: 'process',
          id: expect.any(String) as string,
          buildId: h.buildId,
          project: 'acme/app',
          step: s.key,
          running: true,
        },
      ]);
      ctl.abort();
      await within(20_000, 'abort', running);
      expect(
        (await ex.listResources()).filter((r) => r.buildId === h.buildId && r.kind === 'process'),
      ).toEqual([]);
      await ex.destroy(h);
    });

    // An escaped grandchild (own session) keeps the stdout pipe open after its group is killed.
    const escapee = [
      `node -e "const c = require('child_process').spawn('sleep', ['300'], { detached: true, stdio: ['ignore', 'inherit', 'inherit'] }); require('fs').writeFileSync('escaped.pid', String(c.pid)); c.unref()"`,
    ];

    it('does not hang on an aborted step whose escaped grandchild holds stdout open', async () => {
      const h = await ex.prepare(build());
      const ctl = new AbortController();
      const sink = new RecordingSink();
      const running = runStep(ex, h, step([...escapee, 'echo started', 'sleep 300']), sink, ctl.signal);
      await eventually(10_000, 'started', () => sink.has('started'));
      ctl.abort();
      const pid = Number(await readFile(join(h.workspace, 'escaped.pid'), 'utf8'));
      try {
        expect((await within(20_000, 'aborted step', running))?.kind).toBe('aborted');
        expect(await isAlive(pid)).toBe(true); // it really escaped: the bound, not a kill, ended the wait
      } finally {
        process.kill(pid, 'SIGKILL');
        await ex.destroy(h);
      }
    });

    it('does not hang on a finished step whose escaped grandchild holds stdout open', async () => {
      const h = await ex.prepare(build());
      const sink = new RecordingSink();
      const exit = await within(
        20_000,
        'step',
        runStep(ex, h, step([...escapee, 'echo done']), sink, never()),
      );
      process.kill(Number(await readFile(join(h.workspace, 'escaped.pid'), 'utf8')), 'SIGKILL');
      expect(exit).toEqual({ kind: 'exited', exitCode: 0 });
      expect(sink.out()).toEqual(['done']);
      await ex.destroy(h);
    });
  });

  describe('services', () => {
    const listen = (port: number): string =>
      `exec node -e "require('net').createServer(s => s.end()).listen(${port}, '127.0.0.1', () => console.log('listening on ' + ${port}))"`;

    async function freePort(): Promise<number> {
      const server = createServer();
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      const address = server.address();
      await new Promise((r) => server.close(r));
      if (typeof address !== 'object' || address === null) throw new Error('no port');
      return address.port;
    }

    it('runs a service with commands, waits for its port and streams its output', async () => {
      const port = await freePort();
      const logs = new RecordingSink();
      const h = await ex.prepare(
        build({
          services: [
            {
              name: 'db',
              image: 'postgres:15',
              env: { PORT: String(port) },
              secrets: [],
              commands: ['echo "starting on $PORT"', listen(port)],
              waitFor: port,
            },
          ],
          serviceSink: (name) => (name === 'db' ? logs : new RecordingSink()),
        }),
      );
      try {
        const sink = new RecordingSink();
        const exit = await runStep(
          ex,
          h,
          step([
            `node -e "require('net').connect(${port}, '127.0.0.1').on('connect', () => process.exit(0)).on('error', () => process.exit(1))"`,
          ]),
          sink,
          never(),
        );
        expect(exit).toEqual({ kind: 'exited', exitCode: 0 });
        await eventually(10_000, 'service log', () => logs.has(`listening on ${port}`));
        expect(logs.out()[0]).toBe(`starting on ${port}`);
        const svc = (await ex.listResources()).find((r) => r.buildId === h.buildId && r.kind === 'process');
        expect(svc).toMatchObject({ step: 'service:db', running: true });
        const pid = Number(svc?.id);
        await ex.destroy(h);
        await eventually(10_000, 'service stopped', async () => !(await isAlive(pid)));
      } finally {
        await ex.destroy(h);
      }
    });

    it('refuses a service that only has an image', async () => {
      const spec = build({ services: [{ name: 'db', image: 'postgres:15', env: {}, secrets: [] }] });
      const err = await ex.prepare(spec).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ExecutorError);
      expect(err).toMatchObject({
        code: 'service',
        message:
          'the local executor cannot run service "db" (image postgres:15): it has no commands; use the docker executor',
      });
    });

    it('fails with a service error when the port never opens', async () => {
      const quick = make({ serviceTimeoutMs: 500 });
      const port = await freePort();
      const spec = build({
        services: [{ name: 'slow', env: {}, secrets: [], commands: ['sleep 300'], waitFor: port }],
      });
      await expect(quick.prepare(spec)).rejects.toMatchObject({
        code: 'service',
        message: expect.stringContaining('did not accept connections') as string,
      });
      await quick.destroy({ buildId: spec.buildId, workspace: quick.workspacePath(spec.buildId) });
      expect((await quick.listResources()).filter((r) => r.buildId === spec.buildId)).toEqual([]);
    });

    it('fails early when a service exits before its port opens', async () => {
      const port = await freePort();
      const spec = build({
        services: [
          { name: 'broken', env: {}, secrets: [], commands: ['echo boom >&2', 'exit 4'], waitFor: port },
        ],
      });
      await expect(ex.prepare(spec)).rejects.toMatchObject({
        code: 'service',
        message: expect.stringContaining('exited with code 4') as string,
      });
      await ex.destroy({ buildId: spec.buildId, workspace: ex.workspacePath(spec.buildId) });
    });
  });

  it('creates build roots private to the user', async () => {
    const h = await ex.prepare(build());
    const root = join(h.workspace, '..');
    expect((await stat(root)).mode & 0o077).toBe(0);
    await ex.destroy(h);
  });
});
