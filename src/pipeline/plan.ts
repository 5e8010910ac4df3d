/**
 * Validated document → `PipelinePlan`: applies the short form, defaults, durations and
 * variable substitution. Reports substitution errors; everything else was checked before.
 */
import { builtinVariables, isBuiltin } from './builtins.js';
import { isDefined } from './checks.js';
import { parseDuration } from './duration.js';
import type { PipelineError } from './errors.js';
import { formatSize, MAX_PLAN_CHARS } from './limits.js';
import type { SourceIndex } from './located.js';
import type { Loose } from './loose.js';
import type { PipelineFile, ServiceFile, StageFile, StepFile } from './schema.js';
import type { PipelineSource } from './source.js';
import type {
  BuildContext,
  CachePlan,
  MatrixCellPlan,
  PipelinePlan,
  ServicePlan,
  SourcePos,
  StagePlan,
  StepPlan,
  WhenPlan,
} from './types.js';
import { Scope, envLayer, valueLayer, type EnvLayer } from './variables.js';
import { expandMatrix, matrixLayer } from './matrix.js';
import { MAX_CACHE_PATHS, parseCacheKey, pathProblem, restoreKeyProblem } from './cache.js';

/** What the plan is built from: the validated file, where its values came from, and the build. */
export interface PlanInput {
  src: PipelineSource;
  file: Loose<PipelineFile>;
  index: SourceIndex;
  context: BuildContext;
  /** `--env` values: win over every layer and are exported to every step. */
  overrides: ReadonlyMap<string, string>;
}

/** Receives errors and warnings as they are found. */
export interface Reporter {
  error(e: PipelineError): void;
  warning(e: PipelineError): void;
}

/** Builds the plan; the result is only meaningful if nothing was reported as an error. */
export function buildPlan(input: PlanInput, reporter: Reporter): PipelinePlan {
  return new PlanBuilder(input, reporter).build();
}

class PlanBuilder {
  private readonly topLayer: EnvLayer;
  private readonly buildBuiltins: EnvLayer;
  /** Characters of expanded text in the plan so far (see `MAX_PLAN_CHARS`). */
  private planChars = 0;
  /** Once the plan is over its limit the rest is not expanded: the result is an error anyway. */
  private overLimit = false;

  constructor(
    private readonly input: PlanInput,
    private readonly reporter: Reporter,
  ) {
    this.buildBuiltins = valueLayer(builtinVariables(input.context));
    this.topLayer = this.userLayer(input.file.env);
  }

  build(): PipelinePlan {
    const { file, index } = this.input;
    const scope = this.scope([this.buildBuiltins, this.topLayer]);
    scope.checkAll();
    const image = file.image === undefined ? undefined : scope.expand(file.image, index.at(file, 'image'));
    const env = scope.export([...this.topLayer.keys(), ...this.input.overrides.keys()]).env;
    this.count([image, ...Object.values(env)], file);
    return {
      file: this.input.src.file,
      ...(image === undefined ? {} : { image }),
      env,
      services: (file.services ?? []).filter(isDefined).map((s) => this.service(s)),
      stages: this.stages(image),
    };
  }

  /**
   * Adds the expanded text of one part of the plan (the top level, a step, a service) to the
   * total, and reports the part that takes it over `MAX_PLAN_CHARS`.
   */
  private count(texts: (string | undefined)[], owner: object): void {
    if (this.overLimit) return;
    for (const t of texts) this.planChars += t?.length ?? 0;
    if (this.planChars <= MAX_PLAN_CHARS) return;
    this.overLimit = true;
    const loc = this.input.index.self(owner);
    const path = loc?.path ?? '';
    const max = formatSize(MAX_PLAN_CHARS);
    const what = path === '' ? 'the top level' : path;
    this.reporter.error(
      this.input.src.error(
        'limit_exceeded',
        loc?.pos ?? { line: 1, col: 1 },
        path,
        `${what} takes the pipeline past ${max} of expanded text (commands, images, artifact paths and env values of every step and service, the top-level env once per step); a pipeline may expand to at most ${max} (${MAX_PLAN_CHARS} characters)`,
      ),
    );
  }

  private stages(image: string | undefined): StagePlan[] {
    const { file, index } = this.input;
    if (file.stages) return file.stages.filter(isDefined).map((s) => this.stage(s, this.posOf(s), image));
    if (file.steps) {
      // Short form: the top-level `steps:` key stands for the stage's mapping.
      const at = index.at(file, 'steps');
      return [
        this.stage(
          { name: 'default', steps: file.steps },
          at?.keyPos ?? at?.pos ?? { line: 1, col: 1 },
          image,
        ),
      ];
    }
    return [];
  }

  private stage(stage: Loose<StageFile>, pos: SourcePos, image: string | undefined): StagePlan {
    const name = stage.name ?? '';
    const stageLayer = this.userLayer(stage.env);
    const when = stage.when && whenPlan(stage.when);
    const steps = (stage.steps ?? []).filter(isDefined);
    // `needs: [test]` of a matrix step `test` waits for every cell of it.
    const cellsOf = new Map<string, string[]>();
    for (const s of steps) {
      const cells = expandMatrix(this.input.src, this.input.index, s)?.cells ?? [];
      const cellNames = cells.map((c) => c.name);
      if (cellNames.length > 0 && s.name !== undefined) cellsOf.set(s.name, cellNames);
    }
    return {
      name,
      ...(when ? { when } : {}),
      approval: stage.approval ?? false,
      steps: this.hasMatrix(stage)
        ? this.stageCells(stage, stageLayer, image)
        : steps.flatMap((s) => this.cells(s, name, stageLayer, image, cellsOf)),
      pos,
    };
  }

  /** Whether the stage has a `matrix`, valid or not. */
  private hasMatrix(stage: Loose<StageFile>): boolean {
    return this.input.index.at(stage, 'matrix') !== undefined;
  }

  /**
   * The steps of a stage with a matrix: all of them once per cell, cell after cell, each
   * named `<step> (<values>)`; `needs` names the step of the same cell. None while the matrix
   * has errors (they are reported).
   */
  private stageCells(stage: Loose<StageFile>, stageLayer: EnvLayer, image: string | undefined): StepPlan[] {
    const name = stage.name ?? '';
    const expansion = expandMatrix(this.input.src, this.input.index, stage, 'stage');
    const steps = (stage.steps ?? []).filter(isDefined);
    return (expansion?.cells ?? []).flatMap((cell, n) => {
      const named = (step: string) => `${step} (${cell.label})`;
      const sameCell = new Map(
        steps.flatMap((s) => (s.name === undefined ? [] : [[s.name, [named(s.name)]]])),
      );
      return steps.map((s) =>
        this.step(s, name, stageLayer, image, sameCell, {
          step: s.name ?? '',
          values: Object.fromEntries(cell.values),
          ...(expansion?.maxParallel === undefined ? {} : { maxParallel: expansion.maxParallel }),
          stageCell: n,
          name: named(s.name ?? ''),
          layer: matrixLayer(cell),
        }),
      );
    });
  }

  /** A step, or the cells of its matrix, each a step (none when the matrix has errors: they are reported). */
  private cells(
    step: Loose<StepFile>,
    stageName: string,
    stageLayer: EnvLayer,
    defaultImage: string | undefined,
    cellsOf: ReadonlyMap<string, string[]>,
  ): StepPlan[] {
    if (this.input.index.at(step, 'matrix') !== undefined && step.matrix === undefined) return [];
    const expansion = expandMatrix(this.input.src, this.input.index, step);
    if (!expansion) return [this.step(step, stageName, stageLayer, defaultImage, cellsOf)];
    return expansion.cells.map((cell) =>
      this.step(step, stageName, stageLayer, defaultImage, cellsOf, {
        step: step.name ?? '',
        values: Object.fromEntries(cell.values),
        ...(expansion.maxParallel === undefined ? {} : { maxParallel: expansion.maxParallel }),
        name: cell.name,
        layer: matrixLayer(cell),
      }),
    );
  }

  private step(
    step: Loose<StepFile>,
    stageName: string,
    stageLayer: EnvLayer,
    defaultImage: string | undefined,
    cellsOf: ReadonlyMap<string, string[]>,
    cell?: MatrixCellPlan & { name: string; layer: EnvLayer },
  ): StepPlan {
    const { index } = this.input;
    const name = cell?.name ?? step.name ?? '';
    if (this.overLimit) return this.skipped(name, step);
    const builtins = valueLayer(builtinVariables(this.input.context, stageName, name));
    // A cell's values sit just above the built-ins: every env block may use `${matrix.KEY}`.
    const matrix = cell ? [cell.layer] : [];
    const scope = this.scope([builtins, ...matrix, this.topLayer, stageLayer, this.userLayer(step.env)]);
    scope.checkAll();
    // `matrix.KEY` is for substitution only; its `MATRIX_KEY` twin is exported.
    const { env, secrets } = scope.export(scope.names().filter((n) => !n.startsWith('matrix.')));
    const image = step.image === undefined ? defaultImage : scope.expand(step.image, index.at(step, 'image'));
    const timeoutMs = step.timeout === undefined ? undefined : parseDuration(step.timeout);
    const cache = step.cache && this.cache(scope, step.cache);
    const commands = this.expandAll(scope, step.commands);
    const artifacts = this.expandAll(scope, step.artifacts);
    const junit = this.reportGlobs(scope, step.reports);
    this.count([image, ...commands, ...artifacts, ...junit, ...Object.values(env)], step);
    return {
      name,
      ...(image === undefined ? {} : { image }),
      commands,
      env,
      secrets,
      ...(timeoutMs === undefined ? {} : { timeoutMs }),
      ...(cache ? { cache } : {}),
      retries: step.retries ?? 0,
      allowFailure: step.allow_failure ?? false,
      needs: [...new Set((step.needs ?? []).filter(isDefined).flatMap((n) => cellsOf.get(n) ?? [n]))],
      artifacts,
      ...(junit.length > 0 ? { reports: { junit } } : {}),
      ...(cell
        ? {
            matrix: {
              step: cell.step,
              values: cell.values,
              ...(cell.maxParallel === undefined ? {} : { maxParallel: cell.maxParallel }),
              ...(cell.stageCell === undefined ? {} : { stageCell: cell.stageCell }),
            },
          }
        : {}),
      pos: this.posOf(step),
    };
  }

  /** A step left unexpanded after the plan went over its limit (the compile fails anyway). */
  private skipped(name: string, step: Loose<StepFile>): StepPlan {
    const base = { commands: [], env: {}, secrets: [], retries: 0, allowFailure: false, needs: [] };
    return { name, ...base, artifacts: [], pos: this.posOf(step) };
  }

  private service(service: Loose<ServiceFile>): ServicePlan {
    const { index } = this.input;
    const ownLayer = this.userLayer(service.env);
    if (this.overLimit) return { name: service.name ?? '', env: {}, secrets: [] };
    const scope = this.scope([this.buildBuiltins, this.topLayer, ownLayer]);
    scope.checkAll();
    // A service gets its own env only: the top-level env is "exported to every step".
    const { env, secrets } = scope.export(ownLayer.keys());
    const image =
      service.image === undefined ? undefined : scope.expand(service.image, index.at(service, 'image'));
    const commands = service.commands === undefined ? undefined : this.expandAll(scope, service.commands);
    this.count([image, ...(commands ?? []), ...Object.values(env)], service);
    return {
      name: service.name ?? '',
      ...(image === undefined ? {} : { image }),
      env,
      secrets,
      ...(commands === undefined ? {} : { commands }),
      ...(service.wait_for === undefined ? {} : { waitFor: service.wait_for }),
    };
  }

  private expandAll(scope: Scope, list: (string | undefined)[] | undefined): string[] {
    if (!list) return [];
    return list.flatMap((text, i) =>
      text === undefined ? [] : [scope.expand(text, this.input.index.at(list, i))],
    );
  }

  /** `reports.junit`, one glob or a list, substituted as artifact paths are. */
  private reportGlobs(scope: Scope, reports: Loose<StepFile>['reports']): string[] {
    const junit = reports?.junit;
    if (reports === undefined || junit === undefined) return [];
    if (Array.isArray(junit)) return this.expandAll(scope, junit);
    return [scope.expand(junit, this.input.index.at(reports, 'junit'))];
  }

  /** A step's `cache:`, substituted and checked (problems reported at their line:col). */
  private cache(scope: Scope, cache: NonNullable<Loose<StepFile>['cache']>): CachePlan | undefined {
    const { src, index } = this.input;
    if (cache.key === undefined || cache.paths === undefined) return undefined;
    const report = (e: PipelineError) => this.reporter.error(e);
    const keyLoc = index.at(cache, 'key');
    const key = parseCacheKey(src, cache.key, keyLoc, (t) => scope.expand(t, keyLoc), report);
    const problem = (list: object, i: number, text: string) => {
      const loc = index.at(list, i);
      report(
        src.error(
          'invalid_value',
          loc?.pos ?? this.posOf(cache),
          loc?.path ?? '',
          `${loc?.path ?? 'cache'}: ${text}`,
        ),
      );
    };
    const restoreKeys: string[] = [];
    (cache.restore_keys ?? []).forEach((raw, i) => {
      if (raw === undefined) return;
      // A function call is reported as such, not as a malformed variable.
      const fn = /\$\{\s*[A-Za-z_]\w*\s*\(/.test(raw) ? restoreKeyProblem(raw) : undefined;
      const prefix = fn ? raw : scope.expand(raw, index.at(cache.restore_keys!, i));
      const why = fn ?? restoreKeyProblem(prefix);
      if (why) problem(cache.restore_keys!, i, why);
      else restoreKeys.push(prefix);
    });
    const paths: string[] = [];
    const list = cache.paths;
    if (list.length > MAX_CACHE_PATHS)
      problem(list, MAX_CACHE_PATHS, `a cache may have at most ${MAX_CACHE_PATHS} paths`);
    list.forEach((raw, i) => {
      if (raw === undefined) return;
      const path = scope.expand(raw, index.at(list, i)).replace(/\/+$/, '').replace(/^\.\//, '');
      const why =
        pathProblem(path, true) ??
        (path === '' || path === '.'
          ? 'a cache path must name a file or directory below the workspace, not the workspace itself'
          : undefined);
      if (why) problem(list, i, why);
      else paths.push(path);
    });
    return { key, restoreKeys, paths };
  }

  private scope(layers: EnvLayer[]): Scope {
    return new Scope(this.input.src, layers, this.input.overrides, (e) => this.reporter.error(e));
  }

  /** An env block of the file as a layer; warns where it replaces a built-in. */
  private userLayer(env: Loose<PipelineFile>['env']): EnvLayer {
    const { src, index } = this.input;
    const layer = envLayer(env, index);
    for (const name of layer.keys()) {
      const loc = env && index.at(env, name);
      if (!isBuiltin(name) || !loc) continue;
      this.reporter.warning(
        src.error(
          'shadows_builtin',
          loc.keyPos ?? loc.pos,
          loc.path,
          `variable "${name}" at ${loc.path} replaces the built-in of the same name`,
        ),
      );
    }
    return layer;
  }

  private posOf(value: object): SourcePos {
    return this.input.index.self(value)?.pos ?? { line: 1, col: 1 };
  }
}

function whenPlan(when: NonNullable<Loose<StageFile>['when']>): WhenPlan | undefined {
  const plan: WhenPlan = {};
  if (when.branch !== undefined) plan.branch = when.branch;
  if (when.event !== undefined) plan.event = toList(when.event);
  if (when.status !== undefined) plan.status = toList(when.status);
  return Object.keys(plan).length > 0 ? plan : undefined;
}

function toList<T>(value: T | (T | undefined)[]): T[] {
  return Array.isArray(value) ? value.filter(isDefined) : [value];
}
