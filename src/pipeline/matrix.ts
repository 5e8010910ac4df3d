/**
 * A step's `matrix`: its axes, `exclude` and `include` (GitHub Actions semantics) → the cells,
 * each a step of its own named `test (node=20, db=pg)`. The number of cells is worked out from
 * the axes' lengths before any cell is made, so a file that asks for millions costs nothing to
 * refuse (see `MAX_MATRIX_CELLS`).
 */
import { isScalar } from 'yaml';
import type { PipelineError } from './errors.js';
import { MAX_MATRIX_CELLS, MAX_MATRIX_LABEL_CHARS } from './limits.js';
import type { SourceIndex } from './located.js';
import type { Loose } from './loose.js';
import type { StepFile } from './schema.js';
import type { PipelineSource } from './source.js';
import { suggest } from './suggest.js';
import type { PipelinePlan, SourcePos, StepPlan } from './types.js';
import { type EnvEntry } from './variables.js';

/** The keys of `matrix` that are not axes. */
const RESERVED = new Set(['include', 'exclude', 'max_parallel']);

/**
 * Most combinations of the axes that are looked at one by one (to apply `exclude`). More than
 * this is refused from the axes' lengths alone, even if `exclude` would have removed enough.
 */
const MAX_COMBINATIONS = MAX_MATRIX_CELLS * 16;

/** One cell: its values by key (axes in the order written, then `include` keys), as written. */
export interface MatrixCell {
  /** `test (node=20, db=pg)`: the step's name and `label`. */
  name: string;
  /** `node=20, db=pg`: for a stage's matrix, each step of the cell is named `<step> (<label>)`. */
  label: string;
  values: Map<string, string>;
}

/** A step's matrix, expanded; `cells` is empty when it has errors (then `errors` says why). */
export interface MatrixExpansion {
  cells: MatrixCell[];
  maxParallel?: number;
  errors: PipelineError[];
}

/** `node` → `MATRIX_NODE`, `node-version` → `MATRIX_NODE_VERSION`: a cell's variable in its environment. */
export function matrixEnvName(key: string): string {
  return `MATRIX_${key.toUpperCase().replaceAll('-', '_')}`;
}

const expansions = new WeakMap<object, MatrixExpansion>();

/**
 * The cells of the matrix of `owner` (a step or a stage), or undefined when it has none. Worked out once per step object
 * (the checks and the planner both ask); errors are reported by the checks.
 */
export function expandMatrix(
  src: PipelineSource,
  index: SourceIndex,
  owner: { name?: string | undefined; matrix?: Matrix | undefined },
  noun: 'step' | 'stage' = 'step',
): MatrixExpansion | undefined {
  const matrix = owner.matrix;
  if (matrix === undefined) return undefined;
  let done = expansions.get(matrix);
  if (!done) {
    done = new Expander(src, index, noun, owner.name ?? '', matrix).run();
    expansions.set(matrix, done);
  }
  return done;
}

/** The variables of one cell, for the step's scope: `matrix.KEY` to substitute, `MATRIX_KEY` exported too. */
export function matrixLayer(cell: MatrixCell): Map<string, EnvEntry> {
  const layer = new Map<string, EnvEntry>();
  for (const [key, value] of cell.values) {
    layer.set(`matrix.${key}`, { kind: 'value', value });
    layer.set(matrixEnvName(key), { kind: 'value', value });
  }
  return layer;
}

type Matrix = NonNullable<Loose<StepFile>['matrix']>;
type Entry = { key: string; text: string };

class Expander {
  private readonly errors: PipelineError[] = [];
  private readonly path: string;
  private readonly pos: SourcePos;

  constructor(
    private readonly src: PipelineSource,
    private readonly index: SourceIndex,
    private readonly noun: 'step' | 'stage',
    private readonly owner: string,
    private readonly matrix: Matrix,
  ) {
    const loc = index.self(matrix);
    this.path = loc?.path ?? '';
    this.pos = loc?.pos ?? { line: 1, col: 1 };
  }

  run(): MatrixExpansion {
    const result = (cells: MatrixCell[]): MatrixExpansion => ({
      cells: this.errors.length > 0 ? [] : cells,
      ...(this.matrix.max_parallel === undefined ? {} : { maxParallel: this.matrix.max_parallel }),
      errors: this.errors,
    });
    const { axes, valid } = this.axes();
    const excludes = this.entries('exclude');
    const includes = this.entries('include');
    // What can be checked still is, so that one run reports every error.
    this.checkKeys(axes, includes ?? []);
    this.checkExcludes(axes, excludes ?? []);
    if (!valid || excludes === undefined || includes === undefined) return result([]);
    if (axes.length === 0 && includes.length === 0) {
      this.error(
        'invalid_value',
        this.pos,
        `the matrix of ${this.noun} "${this.owner}" at ${this.path} has no axes; expected at least one, such as "node: [18, 20]"`,
      );
    }
    if (this.errors.length > 0) return result([]);

    // Counted from the lengths first: a product over the bound is refused without looking at a cell.
    let product = axes.length === 0 ? 0 : 1;
    for (const axis of axes) {
      product *= axis.values.length;
      if (product > MAX_COMBINATIONS) {
        const total = axes.reduce((n, a) => n * a.values.length, 1);
        const before = excludes.length > 0 ? ' before exclude' : '';
        this.tooMany(`${formatCount(total)} cells${before}`);
        return result([]);
      }
    }
    const cells = this.combinations(axes, product, excludes);
    const added = this.include(axes, cells, includes);
    const total = cells.length + added.length;
    if (total > MAX_MATRIX_CELLS) {
      this.tooMany(`${formatCount(total)} cells`);
      return result([]);
    }
    const all = [...cells, ...added.map((a) => a.values)];
    return result(this.named(axes, includes, all, added));
  }

  /** The axes in the order written; not `valid` if a value is invalid (the validator said why). */
  private axes(): { axes: { key: string; values: string[]; keyPos: SourcePos }[]; valid: boolean } {
    const axes = [];
    let valid = true;
    for (const key of this.index.keys(this.matrix)) {
      if (typeof key !== 'string' || RESERVED.has(key)) continue;
      const list = Reflect.get(this.matrix, key) as unknown;
      const loc = this.index.at(this.matrix, key);
      if (!loc) continue;
      if (!Array.isArray(list)) {
        valid = false;
        axes.push({ key, values: [], keyPos: loc.keyPos ?? loc.pos });
        continue;
      }
      const values = list.map((v: unknown, i) => written(v, this.index.at(list, i)?.node));
      if (values.some((v) => v === undefined)) valid = false;
      axes.push({ key, values: values.filter((v) => v !== undefined), keyPos: loc.keyPos ?? loc.pos });
    }
    return { axes, valid };
  }

  /** The entries of `include` or `exclude`, each as its keys and values; undefined if one is invalid. */
  private entries(
    which: 'include' | 'exclude',
  ): { pos: SourcePos; path: string; entries: Entry[] }[] | undefined {
    const list = this.matrix[which];
    if (this.index.at(this.matrix, which) !== undefined && list === undefined) return undefined;
    const out = [];
    for (const [i, item] of (list ?? []).entries()) {
      const loc = list && this.index.at(list, i);
      if (item === undefined || !loc) return undefined;
      const entries: Entry[] = [];
      for (const key of this.index.keys(item)) {
        const text = written(Reflect.get(item, key), this.index.at(item, key)?.node);
        if (text === undefined) return undefined;
        entries.push({ key: String(key), text });
      }
      if (entries.length === 0) {
        const does = which === 'exclude' ? 'would remove every cell' : 'adds nothing';
        this.error(
          'invalid_value',
          loc.pos,
          `empty ${which} entry at ${loc.path} ${does}; name at least one key`,
        );
      }
      out.push({ pos: loc.pos, path: loc.path, entries });
    }
    return out;
  }

  /** Two keys that would be one variable (`node` and `NODE` are both `MATRIX_NODE`). */
  private checkKeys(
    axes: { key: string; keyPos: SourcePos }[],
    includes: { pos: SourcePos; path: string; entries: Entry[] }[],
  ): void {
    const seen = new Map<string, string>();
    const see = (key: string, pos: SourcePos, where: string) => {
      const env = matrixEnvName(key);
      const first = seen.get(env);
      if (first === undefined) seen.set(env, key);
      else if (first !== key) {
        const message = `duplicate matrix axis name "${key}" at ${where}: it is the same variable as "${first}" (${env}); names must differ in more than case and "-"/"_"`;
        this.error('duplicate_name', pos, message);
      }
    };
    for (const axis of axes) see(axis.key, axis.keyPos, `${this.path}.${axis.key}`);
    for (const inc of includes) for (const e of inc.entries) see(e.key, inc.pos, inc.path);
  }

  private checkExcludes(
    axes: { key: string }[],
    excludes: { pos: SourcePos; path: string; entries: Entry[] }[],
  ): void {
    const names = axes.map((a) => a.key);
    for (const ex of excludes) {
      for (const { key } of ex.entries) {
        if (names.includes(key)) continue;
        const guess = suggest(key, names);
        const hint = guess !== undefined ? `did you mean "${guess}"?` : `expected one of ${names.join(', ')}`;
        this.error(
          'unknown_key',
          ex.pos,
          `exclude at ${ex.path} names "${key}", which is not an axis of the matrix of ${this.noun} "${this.owner}"; ${hint}`,
        );
      }
    }
  }

  /** Every combination of the axes in order (the last axis changing fastest), without the excluded ones. */
  private combinations(
    axes: { key: string; values: string[] }[],
    product: number,
    excludes: { entries: Entry[] }[],
  ): Map<string, string>[] {
    const cells: Map<string, string>[] = [];
    const at = axes.map(() => 0);
    for (let n = 0; n < product; n++) {
      const cell = new Map(axes.map((a, i) => [a.key, a.values[at[i] ?? 0] ?? '']));
      if (!excludes.some((ex) => ex.entries.every((e) => cell.get(e.key) === e.text))) cells.push(cell);
      for (let i = axes.length - 1; i >= 0; i--) {
        const next = (at[i] ?? 0) + 1;
        at[i] = next < (axes[i]?.values.length ?? 0) ? next : 0;
        if (at[i] !== 0) break;
      }
    }
    return cells;
  }

  /**
   * GitHub Actions' `include`: an entry whose axis values all match a cell adds its other keys
   * to that cell (an axis value is never changed; a value an earlier entry added may be); an
   * entry that matches no cell of the axes is a cell of its own. Returns those extra cells.
   */
  private include(
    axes: { key: string }[],
    cells: Map<string, string>[],
    includes: { pos: SourcePos; entries: Entry[] }[],
  ): { values: Map<string, string>; pos: SourcePos }[] {
    const axisKeys = new Set(axes.map((a) => a.key));
    const added: { values: Map<string, string>; pos: SourcePos }[] = [];
    for (const inc of includes) {
      const matching = cells.filter((c) =>
        inc.entries.every((e) => !axisKeys.has(e.key) || c.get(e.key) === e.text),
      );
      for (const cell of matching) {
        for (const e of inc.entries) if (!axisKeys.has(e.key)) cell.set(e.key, e.text);
      }
      if (matching.length === 0)
        added.push({ values: new Map(inc.entries.map((e) => [e.key, e.text])), pos: inc.pos });
    }
    return added;
  }

  /** Names the cells (keys in a fixed order: axes as written, then `include` keys as first seen). */
  private named(
    axes: { key: string }[],
    includes: { entries: Entry[] }[],
    values: Map<string, string>[],
    added: { pos: SourcePos }[],
  ): MatrixCell[] {
    const order = [
      ...new Set([...axes.map((a) => a.key), ...includes.flatMap((i) => i.entries.map((e) => e.key))]),
    ];
    const first = new Map<string, number>();
    const cells: MatrixCell[] = [];
    values.forEach((cell, n) => {
      const ordered = new Map(order.flatMap((k) => (cell.has(k) ? [[k, cell.get(k) ?? '']] : [])));
      const shown = [...ordered].map(([k, v]) => `${k}=${oneLine(v)}`);
      const label = shown.join(', ');
      const name = `${this.owner} (${label})`;
      // Cells from the axes are reported at the matrix, an extra cell at its include entry.
      const pos = added[n - (values.length - added.length)]?.pos ?? this.pos;
      if (label.length > MAX_MATRIX_LABEL_CHARS) {
        this.error(
          'limit_exceeded',
          pos,
          `the matrix of ${this.noun} "${this.owner}" at ${this.path} has a cell whose values "${label.slice(0, 40)}…" take ${label.length} characters; a cell's values (key=value, …), which its steps' names show, may take at most ${MAX_MATRIX_LABEL_CHARS} characters`,
        );
        return;
      }
      const earlier = first.get(name);
      if (earlier !== undefined) {
        this.error(
          'duplicate_name',
          pos,
          `the matrix of ${this.noun} "${this.owner}" at ${this.path} has two cells named "${name}"; each combination of values may appear once`,
        );
        return;
      }
      first.set(name, n);
      cells.push({ name, label, values: ordered });
    });
    return cells;
  }

  private tooMany(what: string): void {
    this.error(
      'limit_exceeded',
      this.pos,
      `the matrix of ${this.noun} "${this.owner}" at ${this.path} expands to ${what}; a matrix may expand to at most ${MAX_MATRIX_CELLS} cells`,
    );
  }

  private error(code: PipelineError['code'], pos: SourcePos, message: string): void {
    this.errors.push(this.src.error(code, pos, this.path, message));
  }
}

/** A value as the cell's name and variables show it: numbers as written (`1.10` stays `1.10`). */
function written(value: unknown, node: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (typeof value !== 'number' && typeof value !== 'boolean') return undefined;
  const source = isScalar(node) ? node.source : undefined;
  return typeof source === 'string' && source !== '' ? source : String(value);
}

/** `10000` → `10,000`; beyond what a number holds exactly, "more than …". */
function formatCount(n: number): string {
  if (n > Number.MAX_SAFE_INTEGER) return `more than ${Number.MAX_SAFE_INTEGER.toLocaleString('en-US')}`;
  return n.toLocaleString('en-US');
}

/** A value as a name shows it: control characters (a newline, a tab) as one space each run. */
function oneLine(text: string): string {
  let out = '';
  let gap = false;
  for (const c of text) {
    const control = c < ' ' || c === '\u007f';
    if (control && !gap) out += ' ';
    else if (!control) out += c;
    gap = control;
  }
  return out;
}

/**
 * The cells of each matrix of a plan, for `slipway validate`: a line per matrix step
 * (`test/test: 3 cells (max_parallel 2)`), then its cells indented.
 */
export function describeMatrices(plan: PipelinePlan): string[] {
  const lines: string[] = [];
  for (const stage of plan.stages) {
    const groups = new Map<string, StepPlan[]>();
    for (const step of stage.steps) {
      if (!step.matrix) continue;
      groups.set(step.matrix.step, [...(groups.get(step.matrix.step) ?? []), step]);
    }
    for (const [name, cells] of groups) {
      const limit = cells[0]?.matrix?.maxParallel;
      const most = limit === undefined ? '' : ` (max_parallel ${limit})`;
      lines.push(`${stage.name}/${name}: ${cells.length} cell${cells.length === 1 ? '' : 's'}${most}`);
      for (const cell of cells) lines.push(`  ${cell.name}`);
    }
  }
  return lines;
}
