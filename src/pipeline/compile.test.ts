import { describe, expect, it } from 'vitest';
import {
  compilePipeline,
  formatPipelineError,
  validatePipeline,
  type PipelinePlan,
  type StepPlan,
} from './index.js';
import { TEST_CONTEXT } from './testing/context.js';

function compile(source: string, overrides?: Record<string, string>): PipelinePlan {
  const result = compilePipeline({
    file: 'p.yml',
    source,
    context: TEST_CONTEXT,
    ...(overrides ? { overrides } : {}),
  });
  if (!result.ok) throw new Error(result.errors.map(formatPipelineError).join('\n'));
  return result.plan;
}

function errorsOf(source: string): string[] {
  return validatePipeline('p.yml', source).map(formatPipelineError);
}

function step(plan: PipelinePlan, stage: number, index: number): StepPlan {
  const s = plan.stages[stage]?.steps[index];
  if (!s) throw new Error(`no step ${stage}/${index}`);
  return s;
}

const LAYERED = `
env: { WHO: top, TOP_ONLY: t, X: top }
stages:
  - name: s
    env: { WHO: stage, X: stage }
    steps:
      - name: a
        env: { WHO: step }
        commands: ['echo \${WHO} \${X} \${TOP_ONLY} \${SLIPWAY_STEP}']
`;

describe('variables', () => {
  it('resolves step env over stage env over top-level env over built-ins', () => {
    const a = step(compile(LAYERED), 0, 0);
    expect(a.commands).toEqual(['echo step stage t a']);
    expect(a.env).toMatchObject({
      WHO: 'step',
      X: 'stage',
      TOP_ONLY: 't',
      SLIPWAY_STEP: 'a',
      SLIPWAY_STAGE: 's',
    });
  });

  it('lets overrides win over every layer and exports them to every step', () => {
    const plan = compile(LAYERED, { WHO: 'cli', EXTRA: 'e' });
    const a = step(plan, 0, 0);
    expect(a.commands).toEqual(['echo cli stage t a']);
    expect(a.env).toMatchObject({ WHO: 'cli', EXTRA: 'e' });
    expect(plan.env).toEqual({ WHO: 'cli', TOP_ONLY: 't', X: 'top', EXTRA: 'e' });
  });

  it('makes overrides visible to env values of every layer, and replaces secrets', () => {
    const plan = compile(
      `env: { URL: 'http://\${HOST}', TOKEN: { from_secret: t } }\nsteps: [{ name: a, commands: [x] }]`,
      { HOST: 'example.com', TOKEN: 'plain' },
    );
    expect(step(plan, 0, 0).env).toMatchObject({
      URL: 'http://example.com',
      TOKEN: 'plain',
      HOST: 'example.com',
    });
    expect(step(plan, 0, 0).secrets).toEqual([]);
  });

  it('resolves env values from their own block and lower layers, and a self-reference from below', () => {
    const plan = compile(`
env: { A: a, B: '\${A}b', C: '\${B}c' }
stages:
  - name: s
    env: { C: '[\${C}]', D: '\${C}d' }
    steps: [{ name: x, commands: [x] }]
`);
    expect(step(plan, 0, 0).env).toMatchObject({ A: 'a', B: 'ab', C: '[abc]', D: '[abc]d' });
  });

  it('resolves a top-level value in its own scope, not with a stage that overrides what it references', () => {
    const plan = compile(`
env: { WHO: top, MSG: 'hi \${WHO}' }
stages: [{ name: s, env: { WHO: stage }, steps: [{ name: x, commands: [x] }] }]
`);
    expect(step(plan, 0, 0).env).toMatchObject({ WHO: 'stage', MSG: 'hi top' });
  });

  it('exports the built-ins with the build context', () => {
    const plan = compilePipeline({
      file: 'p.yml',
      source: 'steps: [{ name: a, commands: [x] }]',
      context: { ...TEST_CONTEXT, tag: 'v1.0.0', event: 'tag' },
    });
    if (!plan.ok) throw new Error('expected ok');
    expect(step(plan.plan, 0, 0).env).toEqual({
      CI: 'true',
      SLIPWAY: 'true',
      SLIPWAY_BUILD_ID: 'b-42',
      SLIPWAY_BUILD_NUMBER: '42',
      SLIPWAY_PROJECT: 'acme/rocket',
      SLIPWAY_BRANCH: 'main',
      SLIPWAY_TAG: 'v1.0.0',
      SLIPWAY_COMMIT: TEST_CONTEXT.commit,
      SLIPWAY_EVENT: 'tag',
      SLIPWAY_STAGE: 'default',
      SLIPWAY_STEP: 'a',
      SLIPWAY_WORKSPACE: '/workspace',
      BUILD_ID: 'b-42',
      PROJECT_KEY: 'acme/rocket',
      BRANCH_TO_BUILD: 'main',
    });
  });

  it('keeps secrets out of env, the highest layer deciding', () => {
    const plan = compile(`
env: { T: { from_secret: top_t }, U: plain }
stages:
  - name: s
    steps:
      - { name: a, commands: [x] }
      - { name: b, env: { T: override, U: { from_secret: step_u } }, commands: [x] }
`);
    expect(step(plan, 0, 0).secrets).toEqual([{ env: 'T', secret: 'top_t' }]);
    expect(step(plan, 0, 0).env).not.toHaveProperty('T');
    expect(step(plan, 0, 1).secrets).toEqual([{ env: 'U', secret: 'step_u' }]);
    expect(step(plan, 0, 1).env).toMatchObject({ T: 'override' });
    expect(step(plan, 0, 1).env).not.toHaveProperty('U');
  });

  it('substitutes in images, artifacts and service fields', () => {
    const plan = compile(`
image: 'node:\${V}'
env: { V: '20' }
services:
  - { name: db, image: 'pg:\${V}', env: { P: '\${SLIPWAY_BUILD_NUMBER}' }, commands: ['run \${V}'] }
steps:
  - { name: a, commands: [x], artifacts: ['out/\${SLIPWAY_STEP}-\${V}.tgz'] }
  - { name: b, image: 'alpine:\${V}', commands: [x] }
`);
    expect(plan.image).toBe('node:20');
    expect(step(plan, 0, 0).image).toBe('node:20');
    expect(step(plan, 0, 0).artifacts).toEqual(['out/a-20.tgz']);
    expect(step(plan, 0, 1).image).toBe('alpine:20');
    expect(plan.services).toEqual([
      { name: 'db', image: 'pg:20', env: { P: '42' }, secrets: [], commands: ['run 20'] },
    ]);
  });
});

describe('plan', () => {
  it('applies defaults and leaves the image undefined when none is given', () => {
    const a = step(compile('steps: [{ name: a, commands: [x] }]'), 0, 0);
    expect(a).toMatchObject({ retries: 0, allowFailure: false, needs: [], artifacts: [], secrets: [] });
    expect('image' in a).toBe(false);
    expect('timeoutMs' in a).toBe(false);
  });

  it('records where stages and steps are written', () => {
    const plan = compile('stages:\n  - name: s\n    steps:\n      - name: a\n        commands: [x]\n');
    expect(plan.stages[0]?.pos).toEqual({ line: 2, col: 5 });
    expect(step(plan, 0, 0).pos).toEqual({ line: 4, col: 9 });
  });

  it('normalises when.event and when.status to lists, and drops an empty when', () => {
    const plan = compile(`
stages:
  - { name: a, when: { event: push, status: failure }, steps: [{ name: x, commands: [x] }] }
  - { name: b, when: {}, steps: [{ name: x, commands: [x] }] }
`);
    expect(plan.stages[0]?.when).toEqual({ event: ['push'], status: ['failure'] });
    expect(plan.stages[1]).not.toHaveProperty('when');
  });
});

describe('error positions', () => {
  it.each([
    ['plain', 'steps: [{ name: a, commands: [x] }]\nimage: node:${NOPE}', '2:13'],
    ['single-quoted', "steps: [{ name: a, commands: [x] }]\nimage: 'it''s ${NOPE}'", '2:15'],
    [
      'double-quoted with escapes',
      'steps: [{ name: a, commands: [x] }]\nimage: "\\t\\u00e9 ${NOPE}"',
      '2:18',
    ],
    [
      'literal block with anchor',
      'steps:\n  - name: a\n    commands:\n      - &c |\n        one\n          two ${NOPE}\n',
      '6:15',
    ],
    [
      'folded block (falls back to the start)',
      'steps:\n  - name: a\n    commands:\n      - >\n        one ${NOPE}\n',
      '4:9',
    ],
    [
      'multi-line plain (falls back to the start)',
      'steps:\n  - name: a\n    commands:\n      - one\n        ${NOPE}\n',
      '4:9',
    ],
  ])('%s', (_, source, at) => {
    const errors = errorsOf(source);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatch(new RegExp(`^p\\.yml:${at}: unknown variable "\\$\\{NOPE\\}"`));
  });

  it('reports every kind of error in one pass, in reading order, with code and path', () => {
    const result = compilePipeline({
      file: 'p.yml',
      context: TEST_CONTEXT,
      source: `stages:
  - name: s
    steps:
      - name: a
        needs: [zzz]
        commands: ['echo \${NOPE}']
      - name: b
        comands: [x]
`,
    });
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.errors.map((e) => [e.code, e.line, e.col, e.path])).toEqual([
      ['needs_unknown', 5, 17, 'stages[0].steps[0].needs[0]'],
      ['unknown_variable', 6, 26, 'stages[0].steps[0].commands[0]'],
      ['unknown_key', 8, 9, 'stages[0].steps[1]'],
    ]);
    expect(result.errors[2]).toEqual({
      code: 'unknown_key',
      file: 'p.yml',
      line: 8,
      col: 9,
      path: 'stages[0].steps[1]',
      message: 'unknown key "comands" at stages[0].steps[1]; did you mean "commands"?',
    });
  });
});

describe('validatePipeline', () => {
  it('returns no errors for a valid file and a list for an invalid one', () => {
    expect(validatePipeline('p.yml', 'steps: [{ name: a, commands: [x] }]')).toEqual([]);
    expect(errorsOf('steps: []')).toEqual([
      'p.yml:1:8: expected a non-empty list of steps at steps, got an empty list',
    ]);
  });

  it('accepts a stray "---" at the end, but not a second document', () => {
    expect(errorsOf('steps: [{ name: a, commands: [x] }]\n---\n')).toEqual([]);
    expect(errorsOf('---\nsteps: [{ name: a, commands: [x] }]\n...\n')).toEqual([]);
    expect(errorsOf('steps: [{ name: a, commands: [x] }]\n---\nsteps: []\n')).toEqual([
      'p.yml:2:1: expected one YAML document, found more than one (remove the "---" separator)',
    ]);
  });

  it('explains a top level that is not a mapping', () => {
    expect(errorsOf('make test')).toEqual([
      'p.yml:1:1: expected a mapping with "stages" or "steps" at the top level, got a string',
    ]);
  });

  it('passes YAML warnings and shadowed built-ins on as warnings', () => {
    const result = compilePipeline({
      file: 'p.yml',
      context: TEST_CONTEXT,
      source: 'env: { CI: "false" }\nsteps: [{ name: a, commands: [!custom x] }]',
    });
    expect(result.ok && result.warnings.map((w) => w.code)).toEqual(['shadows_builtin', 'yaml_warning']);
  });
});

describe('robustness', () => {
  it('stops expanding an alias bomb instead of hanging', () => {
    // 60 stages × 60 steps × 60 commands from a 2 kB file.
    const sixty = (ref: string): string => `[${Array(60).fill(ref).join(', ')}]`;
    const source = [
      `x-c: &c ${sixty('x')}`,
      'x-step: &step { name: a, commands: *c }',
      `x-steps: &steps ${sixty('*step')}`,
      'x-stage: &stage { name: s, steps: *steps }',
      `stages: ${sixty('*stage')}`,
    ].join('\n');
    // A hang is the test's own timeout; no wall-time bound (a loaded machine took 20 s).
    const errors = errorsOf(source);
    expect(errors.filter((e) => e.includes('too many values'))).toHaveLength(1);
  });

  it('handles a recursive alias', () => {
    expect(errorsOf('steps:\n  - name: a\n    commands: &c [x, *c]\n')).toEqual([
      'p.yml:3:22: expected a string at steps[0].commands[1], got a list',
    ]);
  });

  it('treats __proto__ and constructor as ordinary keys', () => {
    const plan = compile(
      'env: { __proto__: { from_secret: p }, constructor: c }\nsteps: [{ name: a, commands: [x] }]',
    );
    expect(step(plan, 0, 0).secrets).toEqual([{ env: '__proto__', secret: 'p' }]);
    expect(Object.hasOwn(step(plan, 0, 0).env, 'constructor')).toBe(true);
    expect(errorsOf('steps: [{ name: a, commands: [x], constructor: 1, __proto__: 2 }]')).toEqual([
      'p.yml:1:35: unknown key "constructor" at steps[0]; expected one of name, image, commands, env, timeout, retries, allow_failure, needs, artifacts, reports, matrix, cache',
      'p.yml:1:51: unknown key "__proto__" at steps[0]; expected one of name, image, commands, env, timeout, retries, allow_failure, needs, artifacts, reports, matrix, cache',
    ]);
  });

  it.each([[''], ['\t'], ['[[['], ['a: b: c'], ['{'], ['- - -'], ['!!binary x'], ['? [a]\n: b'], ['"\\u']])(
    'never throws on %j',
    (source) => {
      expect(() => validatePipeline('p.yml', source)).not.toThrow();
      expect(validatePipeline('p.yml', source).length).toBeGreaterThan(0);
    },
  );
});
