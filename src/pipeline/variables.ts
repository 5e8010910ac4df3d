/**
 * Variable scopes: layers of env entries (built-ins, top-level, stage, step or service) plus
 * the `--env` overrides, and `${NAME}` resolution against them with errors located in the file.
 *
 * Precedence: overrides, then the highest layer that defines the name. An env value is
 * resolved in its own layer and the ones below: `B: ${A}` sees `A` of its own block, and
 * `PATH: ${PATH}:/x` sees the `PATH` of a lower layer (never itself). Loops are errors, and so is
 * a value longer than `MAX_VALUE_CHARS` once substituted.
 */
import { isScalar } from 'yaml';
import type { PipelineError } from './errors.js';
import { formatSize, MAX_VALUE_CHARS } from './limits.js';
import type { Loc, SourceIndex } from './located.js';
import { setOwn } from './own.js';
import type { PipelineSource } from './source.js';
import { suggest } from './suggest.js';
import { substitute, type Resolution, type TemplateProblem } from './template.js';
import type { SecretRef } from './types.js';

/** One variable of an env layer, before resolution. */
export type EnvEntry =
  /** Taken as is: built-ins, overrides, numbers and booleans as written. */
  | { kind: 'value'; value: string }
  /** A string from the file, substituted when resolved. */
  | { kind: 'template'; text: string; loc: Loc }
  | { kind: 'secret'; secret: string }
  /** Already reported by the validator; resolves to an empty string to avoid follow-up errors. */
  | { kind: 'invalid' };

/** The variables of one scope level, in file order. */
export type EnvLayer = ReadonlyMap<string, EnvEntry>;

/** Found a variable: its value, or the name of the secret that will provide it. */
type Resolved = Resolution | { kind: 'secret'; secret: string };

/**
 * The variables visible from one place (a step, a service, the top level), resolved lazily and
 * once each; reports substitution errors through `report` as it finds them.
 */
export class Scope {
  private readonly memo = new Map<string, Resolved>();
  /** Entries being resolved, innermost last, to detect loops. */
  private readonly active: { key: string; name: string }[] = [];

  constructor(
    private readonly src: PipelineSource,
    private readonly layers: readonly EnvLayer[],
    private readonly overrides: ReadonlyMap<string, string>,
    private readonly report: (e: PipelineError) => void,
  ) {}

  /** Substitutes a string value of the file (a command, an image, …) with all layers in view. */
  expand(text: string, loc: Loc | undefined): string {
    // Too long was reported; an empty value keeps the plan small while errors are collected.
    return this.substituteAt(text, loc, this.layers.length - 1) ?? '';
  }

  /** Resolves every entry of every layer, shadowed ones included, so that all their errors are reported. */
  checkAll(): void {
    this.layers.forEach((layer, j) => {
      for (const name of layer.keys()) this.entry(j, name);
    });
  }

  /** The values (and secrets) of `names` as the scope sees them; for a step's or service's environment. */
  export(names: Iterable<string>): { env: Record<string, string>; secrets: SecretRef[] } {
    const env: Record<string, string> = {};
    const secrets: SecretRef[] = [];
    for (const name of names) {
      const r = this.lookup(this.layers.length - 1, name);
      if (r.kind === 'value') setOwn(env, name, r.value);
      else if (r.kind === 'secret' && 'secret' in r) secrets.push({ env: name, secret: r.secret });
    }
    return { env, secrets };
  }

  /** Every name defined in the scope, lowest layer first, then the overrides. */
  names(): string[] {
    return [...new Set([...this.layers.flatMap((l) => [...l.keys()]), ...this.overrides.keys()])];
  }

  private lookup(layer: number, name: string): Resolved {
    const override = this.overrides.get(name);
    if (override !== undefined) return { kind: 'value', value: override };
    for (let j = layer; j >= 0; j--) {
      if (this.layers[j]?.has(name)) return this.entry(j, name);
    }
    return { kind: 'unknown' };
  }

  /** The value of the entry `name` of layer `j`. */
  private entry(j: number, name: string): Resolved {
    const key = `${j}:${name}`;
    const known = this.memo.get(key);
    if (known) return known;
    const loop = this.active.findIndex((a) => a.key === key);
    if (loop >= 0) return { kind: 'cycle', chain: [...this.active.slice(loop).map((a) => a.name), name] };
    const e = this.layers[j]?.get(name) ?? { kind: 'invalid' };
    let result: Resolved;
    if (e.kind === 'template') {
      this.active.push({ key, name });
      const value = this.substituteAt(e.text, e.loc, j, name);
      this.active.pop();
      // Too long was reported here, where the limit is crossed; what uses it need not repeat that.
      result = { kind: 'value', value: value ?? '' };
    } else {
      result = e.kind === 'invalid' ? { kind: 'value', value: '' } : e;
    }
    this.memo.set(key, result);
    return result;
  }

  /**
   * Substitutes `text` as seen from layer `j`; `self` is the variable whose value it is, if any.
   * Undefined when the result would be longer than `MAX_VALUE_CHARS`.
   */
  private substituteAt(text: string, loc: Loc | undefined, j: number, self?: string): string | undefined {
    const { value, problems } = substitute(
      text,
      (ref) => {
        if (ref !== self) return this.lookup(j, ref);
        const outer = this.lookup(j - 1, ref);
        // `C: ${C}` with no outer C to extend: a loop of one, not an unknown name.
        return outer.kind === 'unknown' ? { kind: 'cycle', chain: [ref, ref] } : outer;
      },
      MAX_VALUE_CHARS,
    );
    for (const p of problems) this.reportProblem(p, loc, j, self);
    return problems.some((p) => p.kind === 'too_long') ? undefined : value;
  }

  private reportProblem(p: TemplateProblem, loc: Loc | undefined, j: number, self?: string): void {
    const at = loc ? this.src.valuePos(loc.node, p.index) : { line: 1, col: 1 };
    const path = loc?.path ?? '';
    const ref = JSON.stringify(p.text);
    switch (p.kind) {
      case 'unknown': {
        const known = [
          ...this.layers.slice(0, j + 1).flatMap((l) => [...l.keys()]),
          ...this.overrides.keys(),
        ];
        const guess = suggest(
          p.name,
          known.filter((n) => n !== p.name),
        );
        // Only commands go through a shell; env values, images and paths are used as they are.
        const shellHint = /\.commands\[\d+\]$/.test(path)
          ? `; write "$${p.text}" to leave it to the shell`
          : '';
        const matrixHint = p.name.startsWith('matrix.')
          ? `; \${matrix.KEY} names an axis or include key of the step's matrix`
          : undefined;
        const hint = guess ? `; did you mean "\${${guess}}"?` : (matrixHint ?? shellHint);
        this.report(
          this.src.error('unknown_variable', at, path, `unknown variable ${ref} at ${path}${hint}`),
        );
        return;
      }
      case 'secret':
        this.report(
          this.src.error(
            'secret_variable',
            at,
            path,
            `variable ${ref} at ${path} comes from a secret, which is only known when the step runs; use "$${p.name}" to read it in the shell`,
          ),
        );
        return;
      case 'cycle': {
        const chain = p.chain ?? [];
        const message =
          chain.length === 2 && chain[0] === chain[1]
            ? `variable cycle: ${p.name} refers to itself at ${path}; ${ref} in the value of ${p.name} can only extend a ${p.name} defined further out (a built-in, or an env block around this one), and there is none`
            : `variable cycle: ${chain.join(' -> ')} at ${path}`;
        this.report(this.src.error('variable_cycle', at, path, message));
        return;
      }
      case 'too_long': {
        const what = self === undefined ? path : `the value of ${self} at ${path}`;
        const where = p.text === '' ? 'here' : `at ${ref}`;
        const max = formatSize(MAX_VALUE_CHARS);
        this.report(
          this.src.error(
            'limit_exceeded',
            at,
            path,
            `${what} expands to more than ${max} ${where}; a value may be at most ${max} (${MAX_VALUE_CHARS} characters) after substitution`,
          ),
        );
        return;
      }
      case 'invalid':
        this.report(
          this.src.error(
            'invalid_variable',
            at,
            path,
            `invalid variable reference ${ref} at ${path}; expected \${NAME} with letters, digits and _, or "$${p.text}" to leave it to the shell`,
          ),
        );
    }
  }
}

/**
 * The env block of a stage, step, service or the top level as a layer. Numbers and booleans
 * are taken as written (`1.10` stays `1.10`, not `1.1`).
 */
export function envLayer(
  env: Record<string, unknown> | undefined,
  index: SourceIndex,
): Map<string, EnvEntry> {
  const layer = new Map<string, EnvEntry>();
  if (!env) return layer;
  for (const key of index.keys(env)) {
    const name = String(key);
    const value = env[name];
    const loc = index.at(env, key);
    if (typeof value === 'string' && loc) {
      layer.set(name, { kind: 'template', text: value, loc });
    } else if (typeof value === 'number' || typeof value === 'boolean') {
      const written = isScalar(loc?.node) ? loc.node.source : undefined;
      layer.set(name, {
        kind: 'value',
        value: typeof written === 'string' && written !== '' ? written : String(value),
      });
    } else if (
      typeof value === 'object' &&
      value !== null &&
      'from_secret' in value &&
      typeof value.from_secret === 'string'
    ) {
      layer.set(name, { kind: 'secret', secret: value.from_secret });
    } else {
      layer.set(name, { kind: 'invalid' });
    }
  }
  return layer;
}

/** A layer of plain values (built-ins). */
export function valueLayer(values: Readonly<Record<string, string>>): Map<string, EnvEntry> {
  return new Map(Object.entries(values).map(([k, v]) => [k, { kind: 'value', value: v }]));
}
