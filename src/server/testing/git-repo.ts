import { execFileSync } from 'node:child_process';
import { mkdtemp, mkdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

/** git's environment in tests: a fixed author and committer, whoever runs them. */
export const GIT_ENV = {
  ...process.env,
  GIT_AUTHOR_NAME: 'Test',
  GIT_AUTHOR_EMAIL: 'test@example.com',
  GIT_COMMITTER_NAME: 'Test',
  GIT_COMMITTER_EMAIL: 'test@example.com',
};

/** A real git repository on disk for tests, reachable by a `file://` URL. */
export class TestRepo {
  private constructor(readonly dir: string) {}

  static async create(files: Record<string, string>, branch = 'main'): Promise<TestRepo> {
    const dir = await mkdtemp(join(tmpdir(), 'slipway-test-repo-'));
    const repo = new TestRepo(dir);
    repo.git('init', '--quiet', '-b', branch);
    await repo.commit(files, 'initial');
    return repo;
  }

  get url(): string {
    return `file://${this.dir}`;
  }

  git(...args: string[]): string {
    return execFileSync('git', args, { cwd: this.dir, env: GIT_ENV, encoding: 'utf8' }).trim();
  }

  /** Writes the files and commits them on the current branch; returns the commit sha. */
  async commit(files: Record<string, string>, message = 'change'): Promise<string> {
    for (const [name, content] of Object.entries(files)) {
      await mkdir(dirname(join(this.dir, name)), { recursive: true });
      await writeFile(join(this.dir, name), content);
    }
    this.git('add', '-A');
    this.git('commit', '--quiet', '--allow-empty', '-m', message);
    return this.git('rev-parse', 'HEAD');
  }

  branch(name: string): void {
    this.git('checkout', '--quiet', '-B', name);
  }
}
