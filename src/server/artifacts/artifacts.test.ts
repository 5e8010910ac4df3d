import { createHash } from 'node:crypto';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { Command } from 'commander';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FsBlobStore } from '../../blobs/fs-blob-store.js';
import type { BlobStore } from '../../blobs/types.js';
import { registerArtifactCommands } from '../../cli/remote/artifact-commands.js';
import { RecordingSink } from '../../executors/executor.case.js';
import { runStep } from '../../executors/lifecycle.js';
import { LocalExecutor } from '../../executors/local/local-executor.js';
import type { BuildHandle } from '../../executors/types.js';
import { runPipeline } from '../../orchestrator/run-pipeline.js';
import type { LogLine } from '../../orchestrator/types.js';
import { compilePipeline } from '../../pipeline/index.js';
import type { Build, Project } from '../../store/index.js';
import { DIALECTS } from '../../store/testing/dialects.js';
import { makeBuild, makeProject } from '../../store/testing/fixtures.js';
import { startPluginApi } from '../testing/plugin-api.js';
import type { PluginApi } from '../testing/plugin-api.js';
import { collectArtifacts, createArtifactCollector, BuildArtifacts } from './collector.js';
import { registerArtifactRoutes } from './routes.js';
import { artifactKey, listArtifacts, recordArtifact } from './store.js';

const sha = (text: string | Buffer) => createHash('sha256').update(text).digest('hex');

describe.each(DIALECTS)('artifacts (%s)', (dialect) => {
  let api: PluginApi;
  let blobs: FsBlobStore;
  let dir: string;
  let project: Project;
  let executor: LocalExecutor;
  let n = 0;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'slipway-artifacts-'));
    blobs = new FsBlobStore(join(dir, 'blobs'));
    api = await startPluginApi(dialect, (db) => [(app) => registerArtifactRoutes(app, { db, blobs })]);
    project = await makeProject(api.t.db, { slug: `acme/art-${dialect}` });
    executor = new LocalExecutor({ tmpRoot: join(dir, 'work') });
  });
  afterAll(async () => {
    await api?.close();
    await rm(dir, { recursive: true, force: true });
  });

  /** A prepared workspace made by a real step; destroyed after `fn`. */
  async function withWorkspace<T>(
    commands: string[],
    fn: (handle: BuildHandle, build: Build) => Promise<T>,
  ): Promise<T> {
    const build = await makeBuild(api.t.db, project.id, { event: 'push' });
    const handle = await executor.prepare({
      buildId: `art-${dialect}-${++n}-${Date.now()}`,
      project: project.slug,
      branch: 'main',
      services: [],
    });
    try {
      const sink = new RecordingSink();
      const exit = await runStep(
        executor,
        handle,
        { key: 'build/make', stage: 'build', step: 'make', commands, env: {}, secrets: {}, attempt: 1 },
        sink,
        new AbortController().signal,
      );
      expect(exit, sink.lines.map((l) => l.text).join('\n')).toEqual({ kind: 'exited', exitCode: 0 });
      return await fn(handle, build);
    } finally {
      await executor.destroy(handle);
    }
  }

  it('publishes matching files to the blob store and the database, with sizes and hashes', async () => {
    await withWorkspace(
      [
        'mkdir -p dist/js reports',
        "printf 'app' > dist/app.tgz",
        "printf 'js' > dist/js/main.js",
        "printf '<x/>' > reports/r.xml",
      ],
      async (handle, build) => {
        const log: string[] = [];
        const result = await collectArtifacts(
          { db: api.t.db, blobs },
          {
            buildId: build.id,
            executor,
            handle,
            step: 'build/make',
            patterns: ['dist/**', 'reports/*.xml', 'nothing/*'],
            log: (l) => log.push(l),
          },
        );
        expect(result).toEqual({ published: 3, bytes: 9, rejected: 0 });
        const rows = await listArtifacts(api.t.db, build.id);
        expect(rows.map((r) => [r.path, r.size, r.sha256, r.step])).toEqual([
          ['dist/app.tgz', 3, sha('app'), 'build/make'],
          ['dist/js/main.js', 2, sha('js'), 'build/make'],
          ['reports/r.xml', 4, sha('<x/>'), 'build/make'],
        ]);
        const stored = await blobs.get(artifactKey(build.id, 'dist/js/main.js'));
        let text = '';
        for await (const chunk of stored!) text += (chunk as Buffer).toString();
        expect(text).toBe('js');
        expect(log).toContain('artifact dist/app.tgz published (3 B)');
        expect(log).toContain('artifacts: nothing matched "nothing/*"');
      },
    );
  });

  it('rejects .., absolute paths and symlinks leaving the workspace, with one log line each', async () => {
    await withWorkspace(
      [
        'mkdir -p out',
        "printf 'ok' > out/ok.txt",
        'ln -s /etc/passwd out/passwd',
        'ln -s ../../../../../../../etc/hostname out/host',
        'ln -s /etc etc-link',
      ],
      async (handle, build) => {
        const log: string[] = [];
        const result = await collectArtifacts(
          { db: api.t.db, blobs },
          {
            buildId: build.id,
            executor,
            handle,
            step: 'build/make',
            patterns: ['../secrets.txt', '/etc/passwd', 'out/**', 'etc-link/passwd', 'out/../../x'],
            log: (l) => log.push(l),
          },
        );
        expect((await listArtifacts(api.t.db, build.id)).map((a) => a.path)).toEqual(['out/ok.txt']);
        expect(result.rejected).toBe(6);
        expect(log).toEqual(
          expect.arrayContaining([
            'artifact ../secrets.txt rejected: pattern refused: it contains ".." and would leave the workspace',
            'artifact /etc/passwd rejected: pattern refused: it is an absolute path; artifacts are paths relative to the workspace',
            'artifact out/../../x rejected: pattern refused: it contains ".." and would leave the workspace',
            'artifact out/passwd rejected: symlink to /etc/passwd, outside the workspace',
            'artifact out/host rejected: symlink to ../../../../../../../etc/hostname, outside the workspace',
            'artifact etc-link rejected: symlink to /etc, outside the workspace',
          ]),
        );
        const keys: string[] = [];
        for await (const blob of blobs.list(`artifacts/${build.id}/`)) keys.push(blob.key);
        expect(keys).toEqual([artifactKey(build.id, 'out/ok.txt')]);
      },
    );
  });

  it('enforces the per-file and per-build limits, keeping what fits', async () => {
    await withWorkspace(
      [
        'mkdir -p a',
        'dd if=/dev/zero of=a/big bs=1024 count=20 2>/dev/null',
        "printf '1234567890' > a/f1",
        "printf '1234567890' > a/f2",
        "printf '1234567890' > a/f3",
      ],
      async (handle, build) => {
        const log: string[] = [];
        const result = await collectArtifacts(
          { db: api.t.db, blobs, limits: { maxFileBytes: 10 * 1024, maxBuildBytes: 25 } },
          {
            buildId: build.id,
            executor,
            handle,
            step: 'build/make',
            patterns: ['a/*'],
            log: (l) => log.push(l),
          },
        );
        expect(result).toMatchObject({ published: 2, bytes: 20, rejected: 2 });
        expect((await listArtifacts(api.t.db, build.id)).map((a) => a.path)).toEqual(['a/f1', 'a/f2']);
        expect(log).toContain('artifact a/big rejected: 20 KiB is over the limit of 10 KiB per file');
        expect(log).toContain(
          "artifact a/f3 rejected: it would bring the build's artifacts to 30 B, over the limit of 25 B per build",
        );
        expect(await blobs.head(artifactKey(build.id, 'a/big'))).toBeUndefined();
      },
    );
  });

  it('lets one step of a build own a path: another step publishing it is refused', async () => {
    await withWorkspace(["printf 'one' > shared.txt"], async (handle, build) => {
      const state = new BuildArtifacts({ db: api.t.db, blobs }, build.id);
      const log: string[] = [];
      const input = {
        buildId: build.id,
        executor,
        handle,
        patterns: ['shared.txt'],
        log: (l: string) => log.push(l),
      };
      await collectArtifacts({ db: api.t.db, blobs }, { ...input, step: 'build/a' }, state);
      const second = await collectArtifacts({ db: api.t.db, blobs }, { ...input, step: 'build/b' }, state);
      expect(second.rejected).toBe(1);
      expect(log).toContain('artifact shared.txt rejected: step build/a already published this path');
      // The same step again (a build taken over after a crash) replaces its own artifact.
      const again = await collectArtifacts({ db: api.t.db, blobs }, { ...input, step: 'build/a' });
      expect(again.published).toBe(1);
      expect((await listArtifacts(api.t.db, build.id)).map((a) => a.step)).toEqual(['build/a']);
    });
  });

  describe('the afterStep hook the scheduler uses', () => {
    const pipeline = (source: string) => {
      const compiled = compilePipeline({
        file: '.slipway.yml',
        source,
        context: {
          buildId: 'x',
          buildNumber: 1,
          project: 'acme/x',
          branch: 'main',
          commit: 'c',
          event: 'push',
          workspace: '/w',
        },
      });
      if (!compiled.ok) throw new Error(JSON.stringify(compiled.errors));
      return compiled.plan;
    };
    const run = async (source: string, store: BlobStore, build: Build) => {
      const plan = pipeline(source);
      const lines: { step: string; text: string }[] = [];
      const collector = createArtifactCollector({ db: api.t.db, blobs: store });
      const afterStep = collector.afterStep(executor, build.id, plan, (_stage, step, text) =>
        lines.push({ step, text }),
      );
      const result = await runPipeline(
        plan,
        {
          buildId: `wrap-${dialect}-${++n}-${Date.now()}`,
          buildNumber: 1,
          project: project.slug,
          branch: 'main',
          commit: 'c',
          event: 'push',
          workspace: '/w',
        },
        executor,
        {
          ...(afterStep ? { afterStep } : {}),
          observer: {
            stepLog: (_s: string, step: string, line: LogLine) => lines.push({ step, text: line.text }),
          },
        },
      );
      return { result, lines };
    };

    it('collects after a successful step only, before the workspace is gone', async () => {
      const build = await makeBuild(api.t.db, project.id);
      const { result, lines } = await run(
        `
stages:
  - name: build
    steps:
      - { name: ok, commands: ["printf ok > ok.txt"], artifacts: [ok.txt] }
      - { name: bad, commands: ["printf bad > bad.txt", "exit 3"], artifacts: [bad.txt], allow_failure: true }
  - name: later
    steps:
      - { name: last, commands: ["printf last > last.txt"], artifacts: ["*.txt"] }
`,
        blobs,
        build,
      );
      expect(result.status).toBe('success');
      const artifacts = await listArtifacts(api.t.db, build.id);
      // bad.txt was not collected when its step failed; the last step's *.txt found it later.
      expect(artifacts.map((a) => [a.path, a.step])).toEqual([
        ['bad.txt', 'later/last'],
        ['last.txt', 'later/last'],
        ['ok.txt', 'build/ok'],
      ]);
      // *.txt in the last step also found bad.txt and ok.txt: ok.txt belongs to build/ok.
      expect(lines).toContainEqual({
        step: 'last',
        text: 'artifact ok.txt rejected: step build/ok already published this path',
      });
      expect(lines).toContainEqual({ step: 'last', text: 'artifact bad.txt published (3 B)' });
    });

    it('turns a storage failure into a step error, never a silent green build', async () => {
      const build = await makeBuild(api.t.db, project.id);
      const broken: BlobStore = {
        description: 'broken',
        put: () => Promise.reject(new Error('bucket is on fire')),
        get: () => Promise.resolve(undefined),
        head: () => Promise.resolve(undefined),
        list: async function* () {},
        deletePrefix: () => Promise.resolve(0),
      };
      const { result } = await run(
        `steps:\n  - { name: s, commands: ["printf x > x.txt"], artifacts: [x.txt] }\n`,
        broken,
        build,
      );
      expect(result.status).toBe('error');
      expect(result.stages[0]!.steps[0]!.reason?.message).toBe(
        'artifacts could not be stored: x.txt: bucket is on fire',
      );
      expect(await listArtifacts(api.t.db, build.id)).toEqual([]);
    });
  });

  describe('routes and CLI', () => {
    let build: Build;
    let server = '';
    const bin = Buffer.from(Array.from({ length: 300_000 }, (_, i) => (i * 7) % 256));

    beforeAll(async () => {
      build = await makeBuild(api.t.db, project.id);
      // Published straight through the store and the table, as the collector would.
      for (const [path, body] of [
        ['dist/app.bin', bin],
        ['dist/sub dir/ünï %.txt', Buffer.from('odd name')],
      ] as const) {
        await blobs.put(artifactKey(build.id, path), body, { size: body.length });
        await recordArtifact(api.t.db, {
          buildId: build.id,
          step: 'build/make',
          path,
          size: body.length,
          sha256: sha(body),
          createdAt: Date.now(),
        });
      }
      server = await api.app.listen({ host: '127.0.0.1', port: 0 });
    });

    it("lists a build's artifacts for any role", async () => {
      const res = await api.call('viewer', { method: 'GET', url: `/api/v1/builds/${build.id}/artifacts` });
      expect(res.statusCode).toBe(200);
      expect(res.json()).toEqual([
        {
          path: 'dist/app.bin',
          size: bin.length,
          sha256: sha(bin),
          step: 'build/make',
          createdAt: expect.any(String) as unknown,
        },
        {
          path: 'dist/sub dir/ünï %.txt',
          size: 8,
          sha256: sha('odd name'),
          step: 'build/make',
          createdAt: expect.any(String) as unknown,
        },
      ]);
      expect(
        (await api.call(null, { method: 'GET', url: `/api/v1/builds/${build.id}/artifacts` })).statusCode,
      ).toBe(401);
      expect(
        (await api.call('viewer', { method: 'GET', url: '/api/v1/builds/999999/artifacts' })).statusCode,
      ).toBe(404);
    });

    it('streams an artifact with its length, digest and a download name', async () => {
      const res = await api.call('viewer', {
        method: 'GET',
        url: `/api/v1/builds/${build.id}/artifacts/dist/app.bin`,
      });
      expect(res.statusCode).toBe(200);
      expect(res.rawPayload.equals(bin)).toBe(true);
      expect(res.headers['content-length']).toBe(String(bin.length));
      expect(res.headers['content-type']).toBe('application/octet-stream');
      expect(res.headers['x-slipway-sha256']).toBe(sha(bin));
      expect(res.headers['content-disposition']).toBe(
        `attachment; filename="app.bin"; filename*=UTF-8''app.bin`,
      );
      const odd = await api.call('viewer', {
        method: 'GET',
        url: `/api/v1/builds/${build.id}/artifacts/dist/${encodeURIComponent('sub dir')}/${encodeURIComponent('ünï %.txt')}`,
      });
      expect(odd.statusCode, odd.body).toBe(200);
      expect(odd.body).toBe('odd name');
    });

    it('refuses traversal and unknown paths without touching other blobs', async () => {
      const other = await makeBuild(api.t.db, project.id);
      await blobs.put(artifactKey(other.id, 'private.txt'), 'not yours');
      for (const url of [
        `/api/v1/builds/${build.id}/artifacts/../${other.id}/private.txt`,
        `/api/v1/builds/${build.id}/artifacts/..%2F${other.id}%2Fprivate.txt`,
        `/api/v1/builds/${build.id}/artifacts/dist/..%2F..%2F${other.id}/private.txt`,
        `/api/v1/builds/${build.id}/artifacts/%2Fetc%2Fpasswd`,
      ]) {
        const res = await api.call('viewer', { method: 'GET', url });
        expect([400, 404], `${url}: ${res.statusCode} ${res.body}`).toContain(res.statusCode);
        expect(res.body).not.toContain('not yours');
      }
      const dots = await api.call('viewer', {
        method: 'GET',
        url: `/api/v1/builds/${build.id}/artifacts/dist/..%2F..%2Fx`,
      });
      expect(dots.statusCode).toBe(400);
      expect(dots.json<{ error: { message: string } }>().error.message).toMatch(/segment/);
      expect(
        (
          await api.call('viewer', {
            method: 'GET',
            url: `/api/v1/builds/${build.id}/artifacts/dist/missing.bin`,
          })
        ).statusCode,
      ).toBe(404);
    });

    async function cli(args: string[], cwd: string): Promise<{ code: number; out: Buffer; err: string }> {
      const stdout = new PassThrough();
      const stderr = new PassThrough();
      const out: Buffer[] = [];
      let err = '';
      stdout.on('data', (c: Buffer) => out.push(c));
      stderr.on('data', (c: Buffer) => (err += c.toString()));
      let code = -1;
      const program = new Command('slipway').exitOverride();
      registerArtifactCommands(program, (c) => (code = c), { stdout, stderr, cwd: () => cwd });
      await program.parseAsync([
        'node',
        'slipway',
        ...args,
        '--server',
        server,
        '--token',
        api.tokens.viewer,
      ]);
      return { code, out: Buffer.concat(out), err };
    }

    it('slipway artifacts list and get (-o file, -o -, default name), verifying the hash', async () => {
      const cwd = await mkdtemp(join(dir, 'cli-'));
      const list = await cli(['artifacts', 'list', project.slug, String(build.number)], cwd);
      expect(list.code).toBe(0);
      expect(list.out.toString()).toMatch(/dist\/app\.bin\s+300000\s+[0-9a-f]{12}\s+build\/make/);
      const json = await cli(['artifacts', 'list', project.slug, `#${build.number}`, '-o', 'json'], cwd);
      expect(JSON.parse(json.out.toString())).toHaveLength(2);

      expect(
        (await cli(['artifacts', 'get', project.slug, String(build.number), 'dist/app.bin'], cwd)).code,
      ).toBe(0);
      expect((await readFile(join(cwd, 'app.bin'))).equals(bin)).toBe(true);
      expect(
        (
          await cli(
            [
              'artifacts',
              'get',
              project.slug,
              String(build.number),
              'dist/sub dir/ünï %.txt',
              '-o',
              'renamed.txt',
            ],
            cwd,
          )
        ).code,
      ).toBe(0);
      expect(await readFile(join(cwd, 'renamed.txt'), 'utf8')).toBe('odd name');
      const piped = await cli(
        ['artifacts', 'get', project.slug, String(build.number), 'dist/app.bin', '-o', '-'],
        cwd,
      );
      expect(piped.out.equals(bin)).toBe(true);
      expect((await readdir(cwd)).sort()).toEqual(['app.bin', 'renamed.txt']); // no partial files left

      const missing = await cli(['artifacts', 'get', project.slug, String(build.number), 'nope.txt'], cwd);
      expect(missing.code).toBe(2);
      expect(missing.err).toMatch(/artifact nope\.txt of build .* not found/);
    });

    it('leaves no file behind when the bytes do not match the recorded hash', async () => {
      const cwd = await mkdtemp(join(dir, 'cli-'));
      // Someone changed the stored bytes behind the server's back.
      await blobs.put(artifactKey(build.id, 'dist/sub dir/ünï %.txt'), 'evil ney');
      const res = await cli(
        ['artifacts', 'get', project.slug, String(build.number), 'dist/sub dir/ünï %.txt'],
        cwd,
      );
      expect(res.code).toBe(1);
      expect(res.err).toMatch(/SHA-256 of the download does not match/);
      expect(await readdir(cwd)).toEqual([]);
    });
  });
});
