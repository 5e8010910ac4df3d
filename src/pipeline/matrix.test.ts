import { describe, expect, it } from 'vitest';
import {
  compilePipeline,
  formatPipelineError,
  pipelineJsonSchema,
  type PipelinePlan,
  type StepPlan,
} from './index.js';
import { TEST_CONTEXT } from './testing/context.js';

function compile(source: string): PipelinePlan {
  const result = compilePipeline({ file: 'p.yml', source, context: TEST_CONTEXT });
  if (!result.ok) throw new Error(result.errors.map(formatPipelineError).join('\n'));
  return result.plan;
}

function errorsOf(source: string): string[] {
  const result = compilePipeline({ file: 'p.yml', source, context: TEST_CONTEXT });
  return result.ok ? [] : result.errors.map(formatPipelineError);
}

const names = (plan: PipelinePlan): string[] => plan.stages.flatMap((s) => s.steps.map((t) => t.name));

function stepNamed(plan: PipelinePlan, name: string): StepPlan {
  const found = plan.stages.flatMap((s) => s.steps).find((s) => s.name === name);
  if (!found) throw new Error(`no step ${name} in ${names(plan).join(', ')}`);
  return found;
}

describe('matrix expansion', () => {
  it('makes one step per combination, named with the keys in the order written', () => {
    const plan = compile(`
steps:
  - name: test
    matrix: { node: [18, 20, 22], db: [pg, mysql] }
    commands: [echo]
`);
    expect(names(plan)).toEqual([
      'test (node=18, db=pg)',
      'test (node=18, db=mysql)',
      'test (node=20, db=pg)',
      'test (node=20, db=mysql)',
      'test (node=22, db=pg)',
      'test (node=22, db=mysql)',
    ]);
    expect(stepNamed(plan, 'test (node=20, db=pg)').matrix).toEqual({
      step: 'test',
      values: { node: '20', db: 'pg' },
    });
  });

  it('substitutes ${matrix.KEY} in image, commands, env and artifacts, and exports MATRIX_KEY', () => {
    const plan = compile(`
steps:
  - name: test
    image: "node:\${matrix.node}"
    matrix: { node: [1.10, 20], node-flavour: [slim] }
    env: { V: "v\${matrix.node}", MATRIX_NODE_FLAVOUR: own }
    commands: ['echo \${matrix.node} \${MATRIX_NODE} \${SLIPWAY_STEP} $\${matrix.node}']
    artifacts: ["out-\${matrix.node-flavour}.txt"]
`);
    const cell = stepNamed(plan, 'test (node=1.10, node-flavour=slim)');
    expect(cell.image).toBe('node:1.10');
    expect(cell.commands).toEqual(['echo 1.10 1.10 test (node=1.10, node-flavour=slim) ${matrix.node}']);
    expect(cell.artifacts).toEqual(['out-slim.txt']);
    // The step's own env wins over the exported twin; no `matrix.` name reaches the environment.
    expect(cell.env).toMatchObject({ V: 'v1.10', MATRIX_NODE: '1.10', MATRIX_NODE_FLAVOUR: 'own' });
    expect(Object.keys(cell.env).filter((k) => k.startsWith('matrix.'))).toEqual([]);
    expect(cell.env.SLIPWAY_STEP).toBe('test (node=1.10, node-flavour=slim)');
  });

  it('applies exclude, then include: extra keys for matching cells, unmatched entries as cells of their own', () => {
    const plan = compile(`
steps:
  - name: test
    matrix:
      node: [18, 20]
      db: [pg, mysql]
      exclude: [{ node: 18, db: mysql }]
      include:
        - { node: 20, experimental: true }
        - { node: 20, db: pg, experimental: false }
        - { node: 22, db: sqlite }
    commands: [echo]
`);
    expect(names(plan)).toEqual([
      'test (node=18, db=pg)',
      'test (node=20, db=pg, experimental=false)',
      'test (node=20, db=mysql, experimental=true)',
      'test (node=22, db=sqlite)',
    ]);
    expect(stepNamed(plan, 'test (node=20, db=mysql, experimental=true)').env.MATRIX_EXPERIMENTAL).toBe(
      'true',
    );
  });

  it('lets needs on a matrix step wait for every cell, and passes max_parallel on', () => {
    const plan = compile(`
steps:
  - name: build
    matrix: { os: [a, b] }
    commands: [echo]
  - name: test
    needs: [build]
    matrix: { node: [1, 2], max_parallel: 1 }
    commands: [echo]
  - name: report
    needs: [test]
    commands: [echo]
`);
    expect(stepNamed(plan, 'test (node=2)').needs).toEqual(['build (os=a)', 'build (os=b)']);
    expect(stepNamed(plan, 'test (node=2)').matrix?.maxParallel).toBe(1);
    expect(stepNamed(plan, 'report').needs).toEqual(['test (node=1)', 'test (node=2)']);
  });
});

describe('matrix on a stage', () => {
  it('runs every step of the stage once per cell, needs within the cell, ${matrix.KEY} in the stage env too', () => {
    const plan = compile(`
stages:
  - name: test
    matrix: { node: [18, 20], max_parallel: 1 }
    env: { NODE: "node-\${matrix.node}" }
    steps:
      - name: build
        commands: ['echo \${NODE}']
      - name: unit
        needs: [build]
        commands: ['echo \${matrix.node}']
  - name: after
    steps: [{ name: done, commands: [echo] }]
`);
    expect(names(plan)).toEqual([
      'build (node=18)',
      'unit (node=18)',
      'build (node=20)',
      'unit (node=20)',
      'done',
    ]);
    const unit = stepNamed(plan, 'unit (node=20)');
    expect(unit.needs).toEqual(['build (node=20)']);
    expect(unit.commands).toEqual(['echo 20']);
    expect(unit.env).toMatchObject({ NODE: 'node-20', MATRIX_NODE: '20', SLIPWAY_STEP: 'unit (node=20)' });
    expect(unit.matrix).toEqual({ step: 'unit', values: { node: '20' }, maxParallel: 1, stageCell: 1 });
    expect(stepNamed(plan, 'build (node=18)').commands).toEqual(['echo node-18']);
  });

  it('refuses a step with a matrix in a stage with one, and counts cells times steps', () => {
    const steps = Array.from({ length: 3 }, (_, i) => `      - { name: s${i}, commands: [echo] }`).join('\n');
    const axis = `[${Array.from({ length: 200 }, (_, i) => i).join(', ')}]`;
    expect(
      errorsOf(`
stages:
  - name: a
    matrix: { n: [1, 2] }
    steps:
      - name: t
        matrix: { m: [1] }
        commands: [echo]
  - name: b
    matrix: { n: ${axis} }
    steps:
${steps}
`),
    ).toEqual([
      'p.yml:7:17: step "t" at stages[0].steps[0].matrix has a matrix, and so has its stage "a"; put every axis in one of them',
      'p.yml:14:9: stage "b" has 600 steps, more than 500, at stages[1].steps[2]; a stage may have at most 500 steps',
    ]);
  });
});

describe('matrix errors', () => {
  it('reports an empty axis, a non-scalar value and an empty matrix at their positions', () => {
    expect(
      errorsOf(`
steps:
  - name: a
    matrix: { node: [], db: [pg, { x: 1 }] }
    commands: [echo]
  - name: b
    matrix: { max_parallel: 2 }
    commands: [echo]
`),
    ).toEqual([
      'p.yml:4:21: expected a non-empty list of matrix values at steps[0].matrix.node, got an empty list',
      'p.yml:4:34: expected a matrix value at steps[0].matrix.db[1], got a mapping',
      'p.yml:7:13: the matrix of step "b" at steps[1].matrix has no axes; expected at least one, such as "node: [18, 20]"',
    ]);
  });

  it('reports axis names that are one variable, and exclude keys that are no axis', () => {
    expect(
      errorsOf(`
steps:
  - name: a
    matrix:
      node: [1]
      NODE: [2]
      exclude: [{ nod: 1 }]
      include: [{ Node: 3 }]
    commands: [echo]
`),
    ).toEqual([
      'p.yml:6:7: duplicate matrix axis name "NODE" at steps[0].matrix.NODE: it is the same variable as "node" (MATRIX_NODE); names must differ in more than case and "-"/"_"',
      'p.yml:7:17: exclude at steps[0].matrix.exclude[0] names "nod", which is not an axis of the matrix of step "a"; did you mean "node"?',
      'p.yml:8:17: duplicate matrix axis name "Node" at steps[0].matrix.include[0]: it is the same variable as "node" (MATRIX_NODE); names must differ in more than case and "-"/"_"',
    ]);
  });

  it("bounds a cell's values in its name, and shows control characters as a space", () => {
    const long = 'x'.repeat(130);
    expect(errorsOf(`steps:\n  - name: a\n    matrix: { v: [${long}] }\n    commands: [echo]\n`)).toEqual([
      `p.yml:3:13: the matrix of step "a" at steps[0].matrix has a cell whose values "v=${'x'.repeat(38)}…" take 132 characters; a cell's values (key=value, …), which its steps' names show, may take at most 128 characters`,
    ]);
    const plan = compile('steps:\n  - name: a\n    matrix: { v: ["one\\n\\ttwo"] }\n    commands: [echo]\n');
    expect(names(plan)).toEqual(['a (v=one two)']);
    expect(plan.stages[0]!.steps[0]!.env.MATRIX_V).toBe('one\n\ttwo');
  });

  it('reports cells with the same name', () => {
    expect(
      errorsOf(`
steps:
  - name: a
    matrix: { node: [1, "1"] }
    commands: [echo]
`),
    ).toEqual([
      'p.yml:4:13: the matrix of step "a" at steps[0].matrix has two cells named "a (node=1)"; each combination of values may appear once',
    ]);
  });

  it('refuses a matrix of 10,000 cells from its axes, without making them', () => {
    const axis = `[${Array.from({ length: 100 }, (_, i) => i).join(', ')}]`;
    // 100^50 combinations: only a count taken from the lengths answers this at all.
    const axes = Array.from({ length: 50 }, (_, i) => `      a${i}: ${axis}`).join('\n');
    expect(
      errorsOf(`
steps:
  - name: test
    matrix:
      x: ${axis}
      y: ${axis}
    commands: [echo]
  - name: bomb
    matrix:
${axes}
    commands: [echo]
`),
    ).toEqual([
      'p.yml:5:7: the matrix of step "test" at steps[0].matrix expands to 10,000 cells; a matrix may expand to at most 256 cells',
      'p.yml:10:7: the matrix of step "bomb" at steps[1].matrix expands to more than 9,007,199,254,740,991 cells; a matrix may expand to at most 256 cells',
    ]);
  });

  it('counts cells after exclude and include, and cells towards the steps of a stage', () => {
    const axis = `[${Array.from({ length: 17 }, (_, i) => i).join(', ')}]`;
    // 289 combinations, 34 excluded: 255 cells, one include makes 256: within the bound.
    const ok = compile(`
steps:
  - name: t
    matrix: { x: ${axis}, y: ${axis}, exclude: [{ x: 0 }, { x: 1 }], include: [{ x: 99, y: 99 }] }
    commands: [echo]
`);
    expect(names(ok)).toHaveLength(256);
    const two = Array.from(
      { length: 2 },
      (_, i) =>
        `  - name: t${i}\n    matrix: { x: ${axis}, y: ${axis}, exclude: [{ x: 0 }, { x: 1 }] }\n    commands: [echo]`,
    ).join('\n');
    expect(errorsOf(`steps:\n${two}\n`)).toEqual([
      'p.yml:5:5: stage "default" has 510 steps, more than 500, at steps[1]; a stage may have at most 500 steps',
    ]);
  });

  it('reports an unknown ${matrix.KEY} with a hint', () => {
    expect(
      errorsOf(`
steps:
  - name: a
    matrix: { node: [1] }
    commands: ['echo \${matrix.nod}']
  - name: b
    commands: ['echo \${matrix.node}']
`),
    ).toEqual([
      'p.yml:5:22: unknown variable "${matrix.nod}" at steps[0].commands[0]; did you mean "${matrix.node}"?',
      `p.yml:7:22: unknown variable "\${matrix.node}" at steps[1].commands[0]; \${matrix.KEY} names an axis or include key of the step's matrix`,
    ]);
  });
});

describe('the JSON Schema', () => {
  it('knows matrix on steps and stages: axes by pattern, include, exclude and max_parallel', () => {
    type Node = { properties: Record<string, Node>; items: Node; patternProperties?: Record<string, Node> };
    const top = pipelineJsonSchema() as unknown as Node;
    const step = top.properties.steps!.items.properties.matrix!;
    const stage = top.properties.stages!.items.properties.matrix!;
    expect(stage).toEqual(step);
    expect(Object.keys(step.properties)).toEqual(['include', 'exclude', 'max_parallel']);
    expect(Object.values(step.patternProperties ?? {})[0]).toMatchObject({ type: 'array', minItems: 1 });
  });
});
