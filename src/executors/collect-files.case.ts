/**
 * Conformance of `Executor.collectFiles` (artifacts): the same patterns pick the same files
 * on every executor, and nothing outside the workspace is ever read. Run from each
 * executor's `collect-files.test.ts`:
 *
 *   collectFilesConformance('local', async () => ({ executor: new LocalExecutor() }));
 *
 * The workspace is built by a real step using only `sh`, `mkdir`, `printf`, `ln`, `dd` and
 * `mkfifo`, so a busybox image is enough.
 */
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RecordingSink } from './executor.case.js';
import { runStep } from './lifecycle.js';
import type { BuildHandle, Executor } from './types.js';

export interface CollectTarget {
  executor: Executor;
  image?: string;
  cleanup?: () => Promise<void>;
}

interface Collected {
  files: Map<string, { size: number; text: string; sha256: string }>;
  rejected: Map<string, string>;
}

const WORKSPACE_SCRIPT = [
  'mkdir -p dist/js "dist/with space" reports/unit reports/e2e .hidden logs empty-dir',
  "printf 'app' > dist/app.tgz",
  "printf 'console.log(1)' > dist/js/main.js",
  "printf 'x' > dist/js/vendor.js",
  "printf 'spaced' > 'dist/with space/file name.txt'",
  "printf '<xml/>' > reports/unit/a.xml",
  "printf '<xml2/>' > reports/e2e/b.xml",
  "printf 'nope' > reports/unit/a.txt",
  "printf 'secret' > .hidden/h.txt",
  "printf 'root' > root.txt",
  "printf 'log' > logs/build.log",
  'dd if=/dev/zero of=dist/big.bin bs=1024 count=3072 2>/dev/null',
  // Symlinks: out of the workspace (absolute and relative), inside to a file and to a dir, dangling.
  'ln -s /etc/passwd dist/evil-abs',
  'ln -s ../../../../../../../../etc/passwd dist/evil-rel',
  'ln -s app.tgz dist/good-link',
  'ln -s js dist/js-link',
  'ln -s does-not-exist dist/dangling',
  'ln -s /etc out',
  'ln -s dist dist-alias',
  'mkfifo dist/fifo',
];

export function collectFilesConformance(name: string, setup: () => Promise<CollectTarget>): void {
  describe(`collectFiles conformance: ${name}`, { timeout: 120_000 }, () => {
    let target: CollectTarget;
    let handle: BuildHandle;
    const run = `${process.pid.toString(36)}${Date.now().toString(36)}`;

    beforeAll(async () => {
      target = await setup();
      const ex = target.executor;
      handle = await ex.prepare({
        buildId: `collect-${run}`,
        project: 'conformance/collect',
        branch: 'main',
        ...(target.image !== undefined ? { image: target.image } : {}),
        services: [],
      });
      const sink = new RecordingSink();
      const exit = await runStep(
        ex,
        handle,
        {
          key: 'build/make',
          stage: 'build',
          step: 'make',
          ...(target.image !== undefined ? { image: target.image } : {}),
          commands: WORKSPACE_SCRIPT,
          env: {},
          secrets: {},
          attempt: 1,
        },
        sink,
        new AbortController().signal,
      );
      expect(exit, sink.lines.map((l) => l.text).join('\n')).toEqual({ kind: 'exited', exitCode: 0 });
    }, 600_000);

    afterAll(async () => {
      if (handle) await target.executor.destroy(handle);
      await target?.cleanup?.();
    }, 120_000);

    async function collect(patterns: string[], read = true): Promise<Collected> {
      const files = new Map<string, { size: number; text: string; sha256: string }>();
      const rejected = new Map<string, string>();
      for await (const entry of target.executor.collectFiles!(handle, patterns)) {
        if (entry.kind === 'rejected') {
          rejected.set(entry.path, entry.reason);
          continue;
        }
        if (!read) {
          files.set(entry.path, { size: entry.size, text: '', sha256: '' });
          continue;
        }
        const chunks: Buffer[] = [];
        for await (const chunk of entry.open()) chunks.push(chunk as Buffer);
        const bytes = Buffer.concat(chunks);
        expect(bytes.length, entry.path).toBe(entry.size);
        files.set(entry.path, {
          size: entry.size,
          text: bytes.length < 100 ? bytes.toString() : '',
          sha256: createHash('sha256').update(bytes).digest('hex'),
        });
      }
      return { files, rejected };
    }

    it('implements collectFiles', () => {
      expect(typeof target.executor.collectFiles).toBe('function');
    });

    it('selects regular files by literal path, glob, ** and directory, with their bytes', async () => {
      const got = await collect([
        'dist/app.tgz',
        'reports/**/*.xml',
        'dist/js',
        'root.txt',
        'dist/with space/*',
      ]);
      expect([...got.files.keys()].sort()).toEqual([
        'dist/app.tgz',
        'dist/js/main.js',
        'dist/js/vendor.js',
        'dist/with space/file name.txt',
        'reports/e2e/b.xml',
        'reports/unit/a.xml',
        'root.txt',
      ]);
      expect(got.files.get('dist/app.tgz')).toMatchObject({ size: 3, text: 'app' });
      expect(got.files.get('dist/with space/file name.txt')?.text).toBe('spaced');
      expect(got.rejected.size).toBe(0);
    });

    it('understands classes, alternatives, ? and leading wildcards (whole workspace)', async () => {
      const got = await collect(['reports/{unit,e2e}/[ab].xml', 'logs/build.lo?', '*.txt', '.hidden/**']);
      expect([...got.files.keys()].sort()).toEqual([
        '.hidden/h.txt',
        'logs/build.log',
        'reports/e2e/b.xml',
        'reports/unit/a.xml',
        'root.txt',
      ]);
    });

    it('streams a large file exactly', async () => {
      const got = await collect(['dist/big.bin']);
      const zeros = createHash('sha256')
        .update(Buffer.alloc(3072 * 1024))
        .digest('hex');
      expect(got.files.get('dist/big.bin')).toMatchObject({ size: 3072 * 1024, sha256: zeros });
    });

    it('skips files nobody opens and still reads the next ones', async () => {
      const skipped = await collect(['dist/**'], false);
      expect(skipped.files.has('dist/big.bin')).toBe(true);
      const after = await collect(['dist/**']);
      expect(after.files.get('dist/js/main.js')?.text).toBe('console.log(1)');
    });

    it('refuses absolute patterns and patterns with ..', async () => {
      const got = await collect(['/etc/passwd', '../outside', 'dist/../../x', 'dist/app.tgz']);
      expect([...got.files.keys()]).toEqual(['dist/app.tgz']);
      expect(got.rejected.get('/etc/passwd')).toMatch(/absolute/);
      expect(got.rejected.get('../outside')).toMatch(/"\.\."/);
      expect(got.rejected.get('dist/../../x')).toMatch(/"\.\."/);
    });

    it('refuses symlinks that leave the workspace, and reads nothing outside it', async () => {
      const got = await collect(['dist/**', 'out/passwd', 'out']);
      for (const [path, file] of got.files) {
        expect(path.startsWith('out')).toBe(false);
        expect(file.text).not.toMatch(/root:/);
      }
      expect(got.rejected.get('dist/evil-abs')).toMatch(/outside the workspace/);
      expect(got.rejected.get('dist/evil-rel')).toMatch(/outside the workspace/);
      expect(got.files.has('dist/evil-abs')).toBe(false);
      expect(got.files.has('dist/evil-rel')).toBe(false);
    });

    it('follows a symlink to a file inside the workspace, never a symlinked directory', async () => {
      const got = await collect(['dist/**', 'dist-alias/app.tgz']);
      expect(got.files.get('dist/good-link')).toMatchObject({ size: 3, text: 'app' });
      expect(got.rejected.get('dist/js-link')).toMatch(/director/);
      expect(got.files.has('dist-alias/app.tgz')).toBe(false);
      expect([...got.files.keys()].some((p) => p.startsWith('dist/js-link/'))).toBe(false);
    });

    it('refuses dangling symlinks and things that are not regular files', async () => {
      const got = await collect(['dist/dangling', 'dist/fifo']);
      expect(got.files.size).toBe(0);
      expect(got.rejected.get('dist/dangling')).toMatch(/does not exist/);
      expect(got.rejected.get('dist/fifo')).toMatch(/not a regular file/);
    });

    it('yields nothing for patterns that match nothing', async () => {
      const got = await collect(['nothing/**', 'missing.txt', 'empty-dir']);
      expect(got.files.size).toBe(0);
      expect(got.rejected.size).toBe(0);
    });
  });
}
