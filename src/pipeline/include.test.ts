/**
 * `include:` in the pure compiler: files come from an in-memory resolver, read through
 * `compileWithIncludes` as the server and `slipway run` read them.
 */
import { describe, expect, it } from 'vitest';
import { compilePipeline, PLACEHOLDER_CONTEXT, type CompileResult } from './compile.js';
import { formatPipelineError } from './errors.js';
import { compileWithIncludes, includeName, type IncludeResolver } from './include.js';
import { MAX_FILE_BYTES, MAX_INCLUDES } from './limits.js';

/** A resolver over `files` (by `includeName`) that records what it was asked for. */
function memory(files: Record<string, string>): IncludeResolver & { reads: string[]; maxes: number[] } {
  const reads: string[] = [];
  const maxes: number[] = [];
  return {
    reads,
    maxes,
    readInclude(ref, maxBytes) {
      const name = includeName(ref);
      reads.push(name);
      maxes.push(maxBytes);
      const text = files[name];
      if (text === undefined) return Promise.resolve({ ok: false, message: `no file ${name}` });
      if (Buffer.byteLength(text) > maxBytes)
        return Promise.resolve({ ok: false, tooBig: Buffer.byteLength(text) });
      return Promise.resolve({ ok: true, text });
    },
  };
}

function compile(main: string, resolver: IncludeResolver): Promise<CompileResult> {
  return compileWithIncludes(
    { file: '.slipway.yml', source: main, context: PLACEHOLDER_CONTEXT },
    resolver,
    (i) => compilePipeline(i),
  );
}

async function errorsOf(main: string, resolver: IncludeResolver): Promise<string[]> {
  const result = await compile(main, resolver);
  if (result.ok) throw new Error('expected errors');
  return result.errors.map(formatPipelineError);
}

const COMMON = `image: busybox:1
env: { A: common, B: common }
services:
  - name: db
    image: postgres
stages:
  - name: lint
    steps:
      - name: lint
        commands: ["echo $A"]
`;

describe('include', () => {
  it('merges included files: their stages first, this file wins on image and env', async () => {
    const resolver = memory({
      'ci/common.yml': COMMON,
      'acme/ci@v1.2:ci/node.yml':
        'include: [{ file: ci/inner.yml }]\nstages: [{ name: test, steps: [{ name: t, commands: [x] }] }]\n',
      // A same-repository include of another project's file is that project's file, at that ref.
      'acme/ci@v1.2:ci/inner.yml':
        'env: { C: inner }\nstages: [{ name: inner, steps: [{ name: i, commands: [x] }] }]\n',
    });
    const result = await compile(
      `include:
  - file: ./ci/common.yml
  - { project: acme/ci, ref: v1.2, file: ci/node.yml }
image: alpine
env: { B: main }
steps:
  - name: build
    commands: [make]
`,
      resolver,
    );
    if (!result.ok) throw new Error(result.errors.map(formatPipelineError).join('\n'));
    const { plan } = result;
    expect(plan.stages.map((s) => s.name)).toEqual(['lint', 'inner', 'test', 'default']);
    expect(plan.image).toBe('alpine');
    expect(plan.env).toMatchObject({ A: 'common', B: 'main', C: 'inner' });
    expect(plan.services.map((s) => s.name)).toEqual(['db']);
    expect(resolver.reads).toEqual([
      'ci/common.yml',
      'acme/ci@v1.2:ci/node.yml',
      'acme/ci@v1.2:ci/inner.yml',
    ]);
    // An included step says where it was written.
    expect(plan.stages[0]?.steps[0]?.pos).toEqual({ line: 9, col: 9, file: 'ci/common.yml' });
  });

  it('reports errors at the included file, line and column, for every pass', async () => {
    const errors = await errorsOf(
      'include: [{ file: ci/a.yml }]\nstages: [{ name: lint, steps: [{ name: x, commands: [x] }] }]\n',
      memory({
        'ci/a.yml': `stages:
  - name: lint
    steps:
      - name: a
        comands: [x]
      - name: b
        commands: ["echo \${NOPE}"]
        timeout: 5x
`,
      }),
    );
    // The pipeline file's errors first, then each included file's (parse, schema, variables, checks).
    expect(errors).toEqual([
      '.slipway.yml:2:18: duplicate stage name "lint" at stages[0].name; also used by stages[0] in ci/a.yml:2:5',
      'ci/a.yml:5:9: unknown key "comands" at stages[0].steps[0]; did you mean "commands"?',
      expect.stringMatching(
        /^ci\/a\.yml:7:26: unknown variable "\$\{NOPE\}" at stages\[0\]\.steps\[1\]\.commands\[0\]/,
      ),
      expect.stringMatching(/^ci\/a\.yml:8:18: invalid duration "5x" at stages\[0\]\.steps\[1\]\.timeout/),
    ]);
  });

  it('reports a cycle as its chain, and a self-include', async () => {
    const cycle = await errorsOf(
      'include: [{ file: a.yml }]\nsteps: [{ name: s, commands: [x] }]\n',
      memory({ 'a.yml': '# a\n\ninclude: [{ file: b.yml }]\n', 'b.yml': 'include:\n  - file: a.yml\n' }),
    );
    expect(cycle).toEqual([
      'b.yml:2:5: include cycle at include[0]: a.yml:3:11 includes b.yml, b.yml:2:5 includes a.yml; a file may not include itself, directly or through others',
    ]);
    const self = await errorsOf(
      'include: [{ file: .slipway.yml }]\nsteps: [{ name: s, commands: [x] }]\n',
      memory({}),
    );
    expect(self).toEqual([
      '.slipway.yml:1:11: include cycle at include[0]: .slipway.yml:1:11 includes .slipway.yml; a file may not include itself, directly or through others',
    ]);
  });

  it('refuses paths that leave the repository, a missing file, a ref without project and a project without ref', async () => {
    const resolver = memory({});
    const errors = await errorsOf(
      `include:
  - file: ../x.yml
  - file: /etc/passwd
  - file: ci/missing.yml
  - { file: a.yml, ref: v1 }
  - { project: acme/ci, file: a.yml }
  - { project: acme/ci, ref: "-x", file: a.yml }
steps: [{ name: s, commands: [x] }]
`,
      resolver,
    );
    expect(errors).toEqual([
      expect.stringMatching(
        /^\.slipway\.yml:2:5: include "\.\.\/x\.yml" at include\[0\]\.file leaves the repository/,
      ),
      expect.stringMatching(
        /^\.slipway\.yml:3:5: include "\/etc\/passwd" at include\[1\]\.file leaves the repository/,
      ),
      '.slipway.yml:4:5: cannot include ci/missing.yml at include[2]: no file ci/missing.yml',
      expect.stringMatching(/^\.slipway\.yml:5:5: "ref" at include\[3\]\.ref needs "project"/),
      expect.stringMatching(/^\.slipway\.yml:6:5: include of acme\/ci at include\[4\] needs "ref"/),
      expect.stringMatching(/^\.slipway\.yml:7:5: invalid ref "-x" at include\[5\]\.ref/),
    ]);
    expect(resolver.reads).toEqual(['ci/missing.yml']);
  });

  it('bounds each file, the number of files and the nesting (a 10 MB file, 1,000 includes, an include bomb)', async () => {
    const big = memory({ 'big.yml': `# ${'x'.repeat(10 * 1024 * 1024)}\n` });
    expect(
      await errorsOf('include: [{ file: big.yml }]\nsteps: [{ name: s, commands: [x] }]\n', big),
    ).toEqual([
      expect.stringMatching(
        /^\.slipway\.yml:1:11: big\.yml included at include\[0\] is 10485763 bytes, more than 1 MiB/,
      ),
    ]);
    expect(Math.max(...big.maxes)).toBeLessThanOrEqual(MAX_FILE_BYTES);

    const files: Record<string, string> = {};
    const list = Array.from({ length: 1000 }, (_, i) => {
      files[`f${i}.yml`] = `env: { V${i}: x }\n`;
      return `  - file: f${i}.yml`;
    });
    const many = memory(files);
    expect(
      await errorsOf(`include:\n${list.join('\n')}\nsteps: [{ name: s, commands: [x] }]\n`, many),
    ).toEqual([
      expect.stringMatching(/^\.slipway\.yml:102:5: f100\.yml at include\[100\] is one file too many/),
    ]);
    expect(many.reads.length).toBe(MAX_INCLUDES);

    // Each file includes the next twice: every file is read once, and the nesting ends it.
    const bomb: Record<string, string> = {};
    for (let i = 0; i < 40; i++)
      bomb[`b${i}.yml`] = `include: [{ file: b${i + 1}.yml }, { file: b${i + 1}.yml }]\n`;
    const bombed = memory(bomb);
    expect(
      await errorsOf(
        'include: [{ file: b0.yml }, { file: b0.yml }]\nsteps: [{ name: s, commands: [x] }]\n',
        bombed,
      ),
    ).toEqual([
      expect.stringMatching(
        /^b9\.yml:1:11: b10\.yml at include\[0\] would be included 11 levels deep \(\.slipway\.yml → b0\.yml → .* → b9\.yml → b10\.yml\); includes may nest at most 10 levels$/,
      ),
    ]);
    expect(bombed.reads.length).toBe(10);
  });

  it('compiles a file that is only includes, and says so when nothing has stages', async () => {
    const only = await compile('include: [{ file: ci/common.yml }]\n', memory({ 'ci/common.yml': COMMON }));
    expect(only.ok && only.plan.stages.map((s) => s.name)).toEqual(['lint']);
    expect(await errorsOf('include: [{ file: e.yml }]\n', memory({ 'e.yml': '# only comments\n' }))).toEqual([
      '.slipway.yml:1:1: missing required key "stages" or "steps" at the top level: neither this file nor the files it includes have stages',
    ]);
  });

  it('refuses the short form in an included file, and tells a caller without resolver what was not read', async () => {
    expect(
      await errorsOf(
        'include: [{ file: s.yml }]\nstages: [{ name: a, steps: [{ name: s, commands: [x] }] }]\n',
        memory({ 's.yml': 'steps: [{ name: s, commands: [x] }]\n' }),
      ),
    ).toEqual([expect.stringMatching(/^s\.yml:1:1: an included file cannot use the short form/)]);
    const direct = compilePipeline({
      file: '.slipway.yml',
      source: 'include: [{ file: a.yml }]\n',
      context: PLACEHOLDER_CONTEXT,
    });
    expect(direct.ok).toBe(false);
    if (!direct.ok) {
      expect(direct.missing).toEqual([{ file: 'a.yml' }]);
      expect(direct.errors.map(formatPipelineError)).toEqual([
        expect.stringMatching(/^\.slipway\.yml:1:11: a\.yml is included but was not read/),
      ]);
    }
  });
});
