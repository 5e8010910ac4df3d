/**
 * Rules the schema cannot express, checked on the validated document: unique names, `needs`
 * (known steps of the same stage, no cycles), timeout bounds and the number of steps.
 */
import { formatDuration } from '../contract/duration.js';
import { MAX_TIMEOUT_MS, parseDuration } from './duration.js';
import type { PipelineError } from './errors.js';
import { MAX_STEPS, MAX_STEPS_PER_STAGE } from './limits.js';
import type { SourceIndex } from './located.js';
import type { Loose } from './loose.js';
import { expandMatrix } from './matrix.js';
import type { PipelineFile, StageFile, StepFile } from './schema.js';
import type { FilePos, PipelineSource } from './source.js';
import { suggest } from './suggest.js';

type Named = { name?: string | undefined } | undefined;

/** A stage as the checks see it: the short form's steps are a stage without a name of its own. */
export interface StageView {
  name: string;
  steps: Loose<StepFile>[] | undefined;
  /** A stage's own matrix: its steps run once per cell. */
  matrix?: Loose<StageFile>['matrix'];
}

/** The stages of the file; the short form's steps are one stage named `default`. */
export function stagesOf(file: Loose<PipelineFile>): StageView[] {
  if (file.stages) {
    return file.stages.map((s) => ({
      name: s?.name ?? '',
      steps: s?.steps?.filter(isDefined),
      ...(s?.matrix ? { matrix: s.matrix } : {}),
    }));
  }
  if (file.steps) return [{ name: 'default', steps: file.steps.filter(isDefined) }];
  return [];
}

/** For `filter`: drops the holes the validator leaves for invalid list items. */
export function isDefined<T>(v: T | undefined): v is T {
  return v !== undefined;
}

/** Every violation of the rules above, located. */
export function checkPipeline(
  src: PipelineSource,
  file: Loose<PipelineFile>,
  index: SourceIndex,
): PipelineError[] {
  const errors: PipelineError[] = [];
  const stages = stagesOf(file);
  checkStepCounts(src, index, stages, errors);
  if (file.stages) checkUnique(src, index, file.stages, 'stage', errors);
  if (file.services) checkUnique(src, index, file.services, 'service', errors);
  for (const stage of stages) {
    const steps = stage.steps ?? [];
    checkUnique(src, index, steps, 'step', errors);
    checkNeeds(src, index, stage, stages, errors);
    for (const step of steps) checkTimeout(src, index, step, errors);
    checkMatrixNames(src, index, steps, errors);
    checkStageMatrix(src, index, stage, errors);
  }
  return errors;
}

/** A stage's matrix: its own errors, and steps with a matrix of their own (one or the other). */
function checkStageMatrix(
  src: PipelineSource,
  index: SourceIndex,
  stage: StageView,
  errors: PipelineError[],
): void {
  const expansion = expandMatrix(src, index, stage, 'stage');
  if (!expansion) return;
  errors.push(...expansion.errors);
  for (const step of stage.steps ?? []) {
    const loc = step.matrix && index.self(step.matrix);
    if (!loc) continue;
    const message = `step "${step.name ?? ''}" at ${loc.path} has a matrix, and so has its stage "${stage.name}"; put every axis in one of them`;
    errors.push(src.error('invalid_value', loc.pos, loc.path, message));
  }
}

/** A matrix's own errors, and a cell named like another step of the stage (or another cell). */
function checkMatrixNames(
  src: PipelineSource,
  index: SourceIndex,
  steps: Loose<StepFile>[],
  errors: PipelineError[],
): void {
  const owners = new Map<string, string>();
  for (const step of steps) if (step.name !== undefined && !step.matrix) owners.set(step.name, step.name);
  for (const step of steps) {
    const expansion = expandMatrix(src, index, step);
    if (!expansion) continue;
    errors.push(...expansion.errors);
    const loc = index.self(step.matrix ?? step);
    for (const cell of expansion.cells) {
      const other = owners.get(cell.name);
      if (other !== undefined && loc) {
        const message = `cell "${cell.name}" of the matrix of step "${step.name ?? ''}" at ${loc.path} has the name of ${other === cell.name ? 'another step' : `a cell of step "${other}"`}; step names must be unique within their stage`;
        errors.push(src.error('duplicate_name', loc.pos, loc.path, message));
      }
      owners.set(cell.name, step.name ?? '');
    }
  }
}

/** How many steps a step of the file stands for: its cells, for a matrix within its bound. */
function weight(
  src: PipelineSource,
  index: SourceIndex,
  owner: StageView | Loose<StepFile> | undefined,
  noun: 'step' | 'stage' = 'step',
): number {
  const cells = owner && expandMatrix(src, index, owner, noun)?.cells.length;
  return cells === undefined || cells === 0 ? 1 : cells;
}

/**
 * Bounds the steps per stage and per pipeline: every step is a record and a container, and
 * thousands of them once ended in "too many SQL variables". Reported at the first step over.
 */
function checkStepCounts(
  src: PipelineSource,
  index: SourceIndex,
  stages: StageView[],
  errors: PipelineError[],
): void {
  let total = 0;
  for (const stage of stages) {
    const steps = stage.steps ?? [];
    // A matrix step counts as its cells; the step that crosses a bound is the one reported.
    const copies = weight(src, index, stage, 'stage');
    const weights = steps.map((s) => weight(src, index, s) * copies);
    const count = weights.reduce((a, b) => a + b, 0);
    const over = steps[firstOver(weights, 0, MAX_STEPS_PER_STAGE)];
    const loc = over && index.self(over);
    if (loc) {
      const message = `stage "${stage.name}" has ${count} steps, more than ${MAX_STEPS_PER_STAGE}, at ${loc.path}; a stage may have at most ${MAX_STEPS_PER_STAGE} steps`;
      errors.push(src.error('limit_exceeded', loc.pos, loc.path, message));
    }
    const first = total;
    total += count;
    if (first <= MAX_STEPS && total > MAX_STEPS) {
      const step = steps[firstOver(weights, first, MAX_STEPS)];
      const at = step && index.self(step);
      if (at) {
        const message = `the pipeline has more than ${MAX_STEPS} steps at ${at.path}; a pipeline may have at most ${MAX_STEPS} steps, all stages together`;
        errors.push(src.error('limit_exceeded', at.pos, at.path, message));
      }
    }
  }
}

/** The index of the first step that takes `start` plus the weights before it past `max`, or -1. */
function firstOver(weights: number[], start: number, max: number): number {
  let sum = start;
  return weights.findIndex((w) => (sum += w) > max);
}

function checkUnique(
  src: PipelineSource,
  index: SourceIndex,
  items: Named[],
  what: string,
  errors: PipelineError[],
): void {
  const first = new Map<string, { path: string; pos: FilePos | undefined }>();
  for (const item of items) {
    if (item?.name === undefined) continue;
    const loc = index.at(item, 'name');
    const self = index.self(item);
    const earlier = first.get(item.name);
    if (earlier === undefined) {
      first.set(item.name, { path: self?.path ?? '', pos: self?.pos });
    } else if (loc) {
      // Names are unique across included files too: then both files' positions are named.
      const here: FilePos = loc.pos;
      const there = earlier.pos;
      const where =
        there && there.file !== here.file ? ` in ${there.file ?? src.file}:${there.line}:${there.col}` : '';
      errors.push(
        src.error(
          'duplicate_name',
          loc.pos,
          loc.path,
          `duplicate ${what} name "${item.name}" at ${loc.path}; also used by ${earlier.path}${where}`,
        ),
      );
    }
  }
}

function checkNeeds(
  src: PipelineSource,
  index: SourceIndex,
  stage: StageView,
  stages: StageView[],
  errors: PipelineError[],
): void {
  const steps = stage.steps ?? [];
  const names = steps.map((s) => s.name).filter(isDefined);
  // A step whose name is invalid was already reported; it may be the one that is "unknown".
  const allNamed = names.length === steps.length;
  for (const step of steps) {
    if (step.name === undefined || !step.needs) continue;
    step.needs.forEach((need, k) => {
      const loc = step.needs && index.at(step.needs, k);
      if (need === undefined || !loc || names.includes(need) || !allNamed) return;
      const elsewhere = stages.find((s) => s !== stage && s.steps?.some((t) => t.name === need));
      const guess = suggest(need, names);
      const hint = elsewhere
        ? `; "${need}" is a step of stage "${elsewhere.name}", and needs only names steps of the same stage`
        : guess !== undefined
          ? `; did you mean "${guess}"?`
          : '';
      errors.push(
        src.error(
          'needs_unknown',
          loc.pos,
          loc.path,
          `step "${step.name}" needs unknown step "${need}" at ${loc.path}${hint}`,
        ),
      );
    });
  }
  for (const cycle of findCycles(steps)) {
    const start = steps.find((s) => s.name === cycle[0]);
    const loc = start?.needs && index.self(start.needs);
    if (loc)
      errors.push(
        src.error('needs_cycle', loc.pos, loc.path, `needs cycle: ${cycle.join(' -> ')} at ${loc.path}`),
      );
  }
}

/**
 * One cycle per loop of `needs`, each as names from its first step (in file order) back to it:
 * `[a, b, a]`. Depth-first search in file order, so the result is deterministic.
 */
export function findCycles(
  steps: readonly { name?: string | undefined; needs?: (string | undefined)[] | undefined }[],
): string[][] {
  const order = steps.map((s) => s.name).filter(isDefined);
  const edges = new Map(
    steps.filter((s) => s.name !== undefined).map((s) => [s.name ?? '', (s.needs ?? []).filter(isDefined)]),
  );
  const state = new Map<string, 'active' | 'done'>();
  const stack: string[] = [];
  const cycles: string[][] = [];
  const seen = new Set<string>();
  const visit = (name: string): void => {
    state.set(name, 'active');
    stack.push(name);
    for (const next of edges.get(name) ?? []) {
      if (!edges.has(next)) continue;
      if (state.get(next) === 'active') {
        const loop = stack.slice(stack.indexOf(next));
        const first = loop.reduce((a, b) => (order.indexOf(b) < order.indexOf(a) ? b : a));
        const at = loop.indexOf(first);
        const rotated = [...loop.slice(at), ...loop.slice(0, at)];
        const key = [...loop].sort().join('\0');
        if (!seen.has(key)) {
          seen.add(key);
          cycles.push([...rotated, first]);
        }
      } else if (state.get(next) === undefined) {
        visit(next);
      }
    }
    stack.pop();
    state.set(name, 'done');
  };
  for (const name of order) if (state.get(name) === undefined) visit(name);
  return cycles;
}

function checkTimeout(
  src: PipelineSource,
  index: SourceIndex,
  step: Loose<StepFile>,
  errors: PipelineError[],
): void {
  if (step.timeout === undefined) return;
  const loc = index.at(step, 'timeout');
  const ms = parseDuration(step.timeout);
  if (!loc || ms === undefined) return;
  const written = JSON.stringify(String(step.timeout));
  if (ms === 0) {
    errors.push(
      src.error(
        'invalid_value',
        loc.pos,
        loc.path,
        `invalid duration ${written} at ${loc.path}; expected more than zero`,
      ),
    );
  } else if (ms > MAX_TIMEOUT_MS) {
    errors.push(
      src.error(
        'invalid_value',
        loc.pos,
        loc.path,
        `invalid duration ${written} at ${loc.path}; expected at most ${formatDuration(MAX_TIMEOUT_MS)}`,
      ),
    );
  }
}
