import { readFileSync } from 'node:fs';
import { relative } from 'node:path';
import { BaseSequencer, type TestSpecification } from 'vitest/node';

/**
 * Longest test files first, so that none of them is started last and becomes the tail of the
 * run. Vitest sorts by the durations it cached in an earlier run, but a clean clone (CI) has
 * none and it then starts small files first — the stand-in Kubernetes conformance suite and
 * the 200-build burst are small files of two minutes each. Durations come from that cache when
 * there is one, else from test-durations.json (`scripts/test-durations.mjs` writes it), else a
 * guess.
 */
export default class LongestFirst extends BaseSequencer {
  private readonly known = readDurations();

  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const root = this.ctx.config.root;
    const durationOf = (file: TestSpecification): number => {
      const path = relative(root, file.moduleId);
      const cached = this.ctx.cache.getFileTestResults(`${file.project.name}:${path}`)?.duration;
      return cached ?? this.known[path] ?? UNKNOWN_MS;
    };
    return Promise.resolve([...files].sort((a, b) => durationOf(b) - durationOf(a)));
  }
}

/** A new file: about what most files take, so that it neither leads nor trails. */
const UNKNOWN_MS = 5_000;

function readDurations(): Record<string, number> {
  try {
    return JSON.parse(readFileSync(new URL('./test-durations.json', import.meta.url), 'utf8')) as Record<
      string,
      number
    >;
  } catch {
    return {};
  }
}
