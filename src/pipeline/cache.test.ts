import { describe, expect, it } from 'vitest';
import { compilePipeline, formatPipelineError, type StepPlan } from './index.js';
import { TEST_CONTEXT } from './testing/context.js';

function compile(source: string): { step?: StepPlan; errors: string[] } {
  const result = compilePipeline({ file: 'p.yml', source, context: TEST_CONTEXT });
  if (!result.ok) return { errors: result.errors.map(formatPipelineError) };
  return { step: result.plan.stages[0]!.steps[0]!, errors: [] };
}

const step = (cache: string) => `
env: { V: "1" }
steps:
  - name: build
    commands: [npm ci]
    cache: ${cache}
`;

describe('cache', () => {
  it('compiles key parts, restore keys and paths', () => {
    const { step: s, errors } = compile(
      step(
        `{ key: "npm-\${V}-\${hashFiles('package-lock.json', 'a/*.lock')}-x", restore_keys: ["npm-\${V}-", npm-], paths: [node_modules/, ./dist, ~/.npm] }`,
      ),
    );
    expect(errors).toEqual([]);
    expect(s!.cache).toEqual({
      key: [{ text: 'npm-1-' }, { hashFiles: ['package-lock.json', 'a/*.lock'] }, { text: '-x' }],
      restoreKeys: ['npm-1-', 'npm-'],
      paths: ['node_modules', 'dist', '~/.npm'],
    });
  });

  it('reports bad paths, keys and functions at their line and column', () => {
    expect(compile(step(`{ key: k, paths: [] }`)).errors).toEqual([
      expect.stringMatching(/^p\.yml:6:29: .*non-empty list/),
    ]);
    expect(
      compile(step(`{ key: k, paths: [../x, /etc, "a/../../b", "~root/x", "*.js", "."] }`)).errors,
    ).toEqual([
      expect.stringMatching(/^p\.yml:6:30: .*"\.\." segment/),
      expect.stringMatching(/^p\.yml:6:36: .*absolute path/),
      expect.stringMatching(/^p\.yml:6:42: .*"\.\." segment/),
      expect.stringMatching(/^p\.yml:6:55: .*~user/),
      expect.stringMatching(/^p\.yml:6:66: .*not globs/),
      expect.stringMatching(/^p\.yml:6:74: .*not the workspace itself/),
    ]);
    expect(compile(step(`{ key: k, paths: ["~", ~/, "~/."] }`)).errors).toEqual([
      expect.stringMatching(/^p\.yml:6:30: .*not HOME itself/),
      expect.stringMatching(/^p\.yml:6:35: .*not HOME itself/),
      expect.stringMatching(/^p\.yml:6:39: .*not HOME itself/),
    ]);
    expect(compile(step(`{ key: "a b", paths: [x] }`)).errors).toEqual([
      expect.stringMatching(/^p\.yml:6:20: .*may only contain .* not " "/),
    ]);
    expect(compile(step(`{ key: "npm-\${hashFile('x')}", paths: [x] }`)).errors).toEqual([
      expect.stringMatching(/^p\.yml:6:24: .*unknown function "hashFile"/),
    ]);
    expect(compile(step(`{ key: "npm-\${hashFiles()}", paths: [x] }`)).errors).toEqual([
      expect.stringMatching(/^p\.yml:6:24: .*one or more quoted/),
    ]);
    expect(compile(step(`{ key: "\${hashFiles('../x')}", paths: [x] }`)).errors).toEqual([
      expect.stringMatching(/^p\.yml:6:20: .*"\.\." segment/),
    ]);
    expect(
      compile(step(`{ key: k, restore_keys: ["\${hashFiles('x')}", "a b"], paths: [x] }`)).errors,
    ).toEqual([
      expect.stringMatching(/^p\.yml:6:37: .*only allowed in the key/),
      expect.stringMatching(/^p\.yml:6:58: .*restore key may only/),
    ]);
    expect(compile(step(`{ key: "\${NOPE}", paths: [x] }`)).errors).toEqual([
      expect.stringMatching(/^p\.yml:6:20: .*NOPE/),
    ]);
    expect(compile(step(`{ paths: [x] }`)).errors).toEqual([expect.stringMatching(/^p\.yml:6:12: .*key/)]);
  });
});
