/**
 * Checks a YAML document against a TypeBox schema by walking the YAML nodes, so that every
 * error carries the line and column of the offending key or value, and all of them are found
 * in one pass. Understands the subset of JSON Schema that `schema.ts` uses: objects with fixed
 * keys, records (env), arrays, unions (incl. enumerations of literals), strings (`minLength`,
 * `pattern`, `format: regex`), integers and numbers (`minimum`, `maximum`), booleans, and
 * `oneOf` of `required` lists ("exactly one of these keys").
 *
 * Returns plain values built from the nodes, leaving out whatever is invalid, with a
 * `SourceIndex` that remembers where each value came from.
 */
import {
  KindGuard,
  type TArray,
  type TObject,
  type TRecord,
  type TSchema,
  type TUnion,
} from '@sinclair/typebox';
import { isAlias, isMap, isScalar, isSeq, type Document, type Node, type Pair, type YAMLMap } from 'yaml';
import { describePath, type PipelineError, type PipelineErrorCode } from './errors.js';
import {
  annotation,
  describe,
  enumValues,
  gotPhrase,
  isEnum,
  joinList,
  nodeKind,
  type NodeKind,
} from './describe.js';
import { childPath, SourceIndex, type Loc } from './located.js';
import type { PipelineSource } from './source.js';
import { setOwn } from './own.js';
import { suggest } from './suggest.js';
import type { SourcePos } from './types.js';
import { userRegexProblem } from './user-regex.js';

/** The result of walking a document against a schema. */
export interface Validated {
  /** The document's value, without the parts that failed validation. */
  value: unknown;
  index: SourceIndex;
  errors: PipelineError[];
}

/**
 * Most nodes a document may expand to. Aliases can make a small file describe a huge tree
 * ("billion laughs"); the server compiles files from untrusted repositories.
 */
export const NODE_BUDGET = 100_000;

/**
 * What the documents of one compile share (a file and those it includes): one index of where
 * values came from, and one budget of values, so that 100 included files cannot each take it.
 */
export interface ValidateShared {
  index: SourceIndex;
  budget: { left: number };
}

/** Validates `node` (the document's root) against `schema`. */
export function validateNode(
  src: PipelineSource,
  doc: Document,
  node: Node,
  schema: TSchema,
  shared: ValidateShared = { index: new SourceIndex(), budget: { left: NODE_BUDGET } },
): Validated {
  const walker = new Walker(src, doc, shared);
  const value = walker.walk(node, schema, '', src.nodePos(node));
  return { value, index: walker.index, errors: walker.errors };
}

/** One entry of a mapping after merge keys (`<<`) are applied. */
interface Entry {
  key: string;
  keyNode: Node | null;
  value: Node | null;
}

class Walker {
  readonly index: SourceIndex;
  readonly errors: PipelineError[] = [];
  private readonly budget: { left: number };
  /** Whether an alias was expanded: then the values counted are not all written in the file. */
  private aliasesFollowed = false;
  private readonly patterns = new Map<string, RegExp>();

  constructor(
    private readonly src: PipelineSource,
    private readonly doc: Document,
    shared: ValidateShared,
  ) {
    this.index = shared.index;
    this.budget = shared.budget;
  }

  /** The value of `raw` if valid against `schema`, else undefined (after reporting why). */
  walk(raw: Node | null, schema: TSchema, path: string, pos: SourcePos): unknown {
    if (--this.budget.left === 0) {
      const why = this.aliasesFollowed
        ? `the document, with what its aliases repeat, has more than ${NODE_BUDGET} values`
        : `the file has more than ${NODE_BUDGET} values`;
      this.report('limit_exceeded', pos, path, `too many values at ${describePath(path)}: ${why}`);
    }
    if (this.budget.left <= 0) return undefined;
    const node = this.resolveOrReport(raw, pos, path);
    if (isEnum(schema)) return this.walkEnum(node, schema, path, pos);
    if (KindGuard.IsUnion(schema)) return this.walkUnion(node, schema, path, pos);
    if (KindGuard.IsObject(schema)) return this.walkObject(node, schema, path, pos);
    if (KindGuard.IsRecord(schema)) return this.walkRecord(node, schema, path, pos);
    if (KindGuard.IsArray(schema)) return this.walkArray(node, schema, path, pos);
    return this.walkScalar(node, schema, path, pos);
  }

  /** Like `resolve`, but an alias without anchor is an error (the yaml package leaves it to toJS). */
  private resolveOrReport(node: Node | null, pos: SourcePos, path: string): Node | null {
    const resolved = this.resolve(node);
    if (isAlias(node) && resolved === null) {
      this.report(
        'yaml_syntax',
        pos,
        path,
        `unknown alias "*${node.source}": no anchor "&${node.source}" before it`,
      );
    }
    return resolved;
  }

  private resolve(node: Node | null): Node | null {
    // Aliases of aliases are resolved by the yaml package; an unknown anchor is already a syntax error.
    if (!isAlias(node)) return node;
    this.aliasesFollowed = true;
    return (node.resolve(this.doc) as Node | undefined) ?? null;
  }

  private walkObject(node: Node | null, schema: TObject, path: string, pos: SourcePos): unknown {
    if (!isMap(node)) return this.typeError(node, schema, path, pos);
    const out: Record<string, unknown> = {};
    this.index.setSelf(out, { path, node, pos });
    const allowed = Object.keys(schema.properties);
    // Keys that an unknown key probably meant: not reported missing as well.
    const guessed = new Set<string>();
    for (const { key, keyNode, value } of this.entries(node)) {
      const propSchema = Object.hasOwn(schema.properties, key) ? schema.properties[key] : undefined;
      const patternSchema = propSchema === undefined ? this.patternProperty(schema, key) : undefined;
      // A pattern's plain `{}` (the top level's `x-…`) is not checked; a TypeBox schema is.
      if (patternSchema !== undefined && KindGuard.IsSchema(patternSchema)) {
        this.child(out, key, keyNode, value, patternSchema, path);
        continue;
      }
      if (patternSchema !== undefined) continue;
      if (propSchema === undefined) {
        const guess = suggest(key, allowed);
        if (guess !== undefined) guessed.add(guess);
        const hint =
          guess !== undefined ? `did you mean "${guess}"?` : `expected one of ${allowed.join(', ')}`;
        this.report(
          'unknown_key',
          this.src.nodePos(keyNode),
          path,
          `unknown key "${key}" at ${describePath(path)}; ${hint}`,
        );
        continue;
      }
      this.child(out, key, keyNode, value, propSchema, path);
    }
    for (const key of schema.required ?? []) {
      if (this.index.at(out, key) === undefined && !guessed.has(key)) {
        this.report('required', pos, path, `missing required key "${key}" at ${describePath(path)}`);
      }
    }
    this.checkOneOfRequired(out, schema, path, pos);
    return out;
  }

  /**
   * The schema of a key an object admits besides its properties (`x-…` at the top level, a
   * matrix's axes), if it matches a pattern of `patternProperties`.
   */
  private patternProperty(schema: TObject, key: string): unknown {
    const patterns: unknown = schema.patternProperties;
    if (typeof patterns !== 'object' || patterns === null) return undefined;
    const match = Object.keys(patterns).find((p) => this.regex(p).test(key));
    return match === undefined ? undefined : (Reflect.get(patterns, match) as unknown);
  }

  /** `oneOf: [{required: [a]}, {required: [b]}]`: exactly one of the keys a, b. */
  private checkOneOfRequired(out: object, schema: TObject, path: string, pos: SourcePos): void {
    const oneOf: unknown = schema.oneOf;
    if (!Array.isArray(oneOf)) return;
    const keys = oneOf.flatMap((s: { required?: string[] }) => s.required ?? []);
    const given = keys.filter((k) => this.index.at(out, k) !== undefined);
    const quoted = keys.map((k) => `"${k}"`);
    if (given.length === 0) {
      this.report('required', pos, path, `missing required key ${joinList(quoted)} at ${describePath(path)}`);
    } else if (given.length > 1) {
      const second = this.index.at(out, given[1] ?? '');
      this.report(
        'conflicting_keys',
        second?.keyPos ?? pos,
        path,
        `keys ${joinList(
          given.map((k) => `"${k}"`),
          'and',
        )} cannot be used together at ${describePath(path)}; use exactly one of them`,
      );
    }
  }

  private walkRecord(node: Node | null, schema: TRecord, path: string, pos: SourcePos): unknown {
    if (!isMap(node)) return this.typeError(node, schema, path, pos);
    const out: Record<string, unknown> = {};
    this.index.setSelf(out, { path, node, pos });
    const [pattern, valueSchema] = Object.entries(schema.patternProperties)[0] ?? ['', schema];
    for (const { key, keyNode, value } of this.entries(node)) {
      if (!this.regex(pattern).test(key)) {
        const names: unknown = schema.propertyNames;
        const noun = annotation(names, 'title') ?? 'key';
        const why = annotation(names, 'patternErrorMessage') ?? `expected ${pattern}`;
        this.report(
          'invalid_value',
          this.src.nodePos(keyNode),
          path,
          `invalid ${noun} "${key}" at ${describePath(path)}; ${why}`,
        );
        continue;
      }
      this.child(out, key, keyNode, value, valueSchema, path);
    }
    return out;
  }

  private walkArray(node: Node | null, schema: TArray, path: string, pos: SourcePos): unknown {
    if (!isSeq(node)) return this.typeError(node, schema, path, pos);
    const out: unknown[] = [];
    this.index.setSelf(out, { path, node, pos });
    if (schema.minItems !== undefined && node.items.length < schema.minItems) {
      this.report(
        'invalid_value',
        pos,
        path,
        `expected a non-empty ${describe(schema).slice(2)} at ${path}, got an empty list`,
      );
    }
    node.items.forEach((item, i) => {
      const itemPath = childPath(path, i);
      const itemPos = this.src.nodePos(item as Node);
      this.index.setChild(out, i, { path: itemPath, node: this.resolve(item as Node), pos: itemPos });
      out.push(this.walk(item as Node, schema.items, itemPath, itemPos));
    });
    return out;
  }

  /** Picks the branch that fits the node's kind; reports against the union as a whole if none does. */
  private walkUnion(node: Node | null, schema: TUnion, path: string, pos: SourcePos): unknown {
    const kind = nodeKind(node);
    const branch = schema.anyOf.find((s) => accepts(s, kind));
    if (branch === undefined) return this.typeError(node, schema, path, pos);
    return this.walk(node, branch, path, pos);
  }

  private walkEnum(node: Node | null, schema: TUnion, path: string, pos: SourcePos): unknown {
    const allowed = enumValues(schema);
    if (nodeKind(node) !== 'string' || !isScalar(node)) return this.typeError(node, schema, path, pos);
    const value = String(node.value);
    if (allowed.includes(value)) return value;
    const noun = annotation(schema, 'title') ?? 'value';
    this.report(
      'invalid_value',
      pos,
      path,
      `invalid ${noun} "${value}" at ${path}; expected one of ${allowed.join(', ')}`,
    );
    return undefined;
  }

  private walkScalar(node: Node | null, schema: TSchema, path: string, pos: SourcePos): unknown {
    const kind = nodeKind(node);
    if (!isScalar(node) || !accepts(schema, kind)) return this.typeError(node, schema, path, pos);
    const value: unknown = node.value;
    if (typeof value === 'string') {
      const problem = this.stringProblem(value, schema, path);
      if (problem === undefined) return value;
      this.report('invalid_value', pos, path, problem);
      return undefined;
    }
    if (KindGuard.IsInteger(schema) || KindGuard.IsNumber(schema)) {
      const n = Number(value);
      const tooSmall = schema.minimum !== undefined && n < schema.minimum;
      const tooBig = schema.maximum !== undefined && n > schema.maximum;
      if (KindGuard.IsInteger(schema) && kind !== 'integer') return this.typeError(node, schema, path, pos);
      if (tooSmall || tooBig) {
        this.report(
          'invalid_value',
          pos,
          path,
          `expected ${describe(schema)} at ${path}, got ${gotPhrase(node, true)}`,
        );
        return undefined;
      }
      return n;
    }
    return value;
  }

  /** Why a string fails its schema, or undefined if it does not. */
  private stringProblem(value: string, schema: TSchema, path: string): string | undefined {
    const noun = annotation(schema, 'title') ?? 'value';
    if (typeof schema.minLength === 'number' && value.length < schema.minLength) {
      return `expected a non-empty string at ${path}, got an empty string`;
    }
    if (typeof schema.pattern === 'string' && !this.regex(schema.pattern).test(value)) {
      const why = annotation(schema, 'patternErrorMessage') ?? `expected ${schema.pattern}`;
      return `invalid ${noun} ${JSON.stringify(value)} at ${path}; ${why}`;
    }
    if (schema.format === 'regex') {
      // Checked as it will run (RE2, anchored), so that what RE2 cannot run fails here, at its line.
      const reason = userRegexProblem(value);
      if (reason !== undefined) {
        return `invalid ${noun} ${JSON.stringify(value)} at ${path}; not a valid regular expression: ${reason}`;
      }
    }
    return undefined;
  }

  /** Validates one entry of a mapping and records it in the index under `key`. */
  private child(
    out: Record<string, unknown>,
    key: string,
    keyNode: Node | null,
    value: Node | null,
    schema: TSchema,
    path: string,
  ): void {
    const p = childPath(path, key);
    const pos = value?.range ? this.src.nodePos(value) : this.src.nodePos(keyNode);
    const loc: Loc = { path: p, node: this.resolve(value), pos, keyPos: this.src.nodePos(keyNode) };
    this.index.setChild(out, key, loc);
    const v = this.walk(value, schema, p, pos);
    if (v !== undefined) setOwn(out, key, v);
  }

  /** The entries of a mapping with merge keys applied: own keys win, then earlier merged mappings. */
  private entries(map: YAMLMap): Entry[] {
    const own: Entry[] = [];
    const merged: Entry[] = [];
    for (const pair of map.items as Pair<Node | null, Node | null>[]) {
      const keyNode = pair.key;
      if (isScalar(keyNode) && typeof keyNode.value === 'symbol') {
        const at = this.src.nodePos(pair.value);
        merged.push(...this.mergeSources(pair.value, at).flatMap((m) => this.entries(m)));
        continue;
      }
      const key = isScalar(keyNode)
        ? String(keyNode.value)
        : this.src.text.slice(keyNode?.range?.[0] ?? 0, keyNode?.range?.[1] ?? 0);
      own.push({ key, keyNode, value: pair.value });
    }
    const seen = new Set(own.map((e) => e.key));
    const result = [...own];
    for (const e of merged) {
      if (seen.has(e.key)) continue;
      seen.add(e.key);
      result.push(e);
    }
    return result;
  }

  /** `<<: *a` or `<<: [*a, *b]`: the mappings to merge (the yaml package reports anything else). */
  private mergeSources(value: Node | null, pos: SourcePos): YAMLMap[] {
    const node = this.resolveOrReport(value, pos, '');
    const items = isSeq(node)
      ? (node.items as Node[]).map((n) => this.resolveOrReport(n, this.src.nodePos(n), ''))
      : [node];
    return items.filter((n): n is YAMLMap => isMap(n));
  }

  private typeError(node: Node | null, schema: TSchema, path: string, pos: SourcePos): undefined {
    const numeric = KindGuard.IsInteger(schema) || KindGuard.IsNumber(schema);
    const expected = describe(schema);
    let message = `expected ${expected} at ${describePath(path)}, got ${gotPhrase(node, numeric)}`;
    if (KindGuard.IsString(schema) && isMap(node) && node.items.length === 1 && !node.flow) {
      message += ' (a ": " in an unquoted value starts a mapping; put the value in quotes)';
    }
    if (
      KindGuard.IsBoolean(schema) &&
      isScalar(node) &&
      typeof node.value === 'string' &&
      /^(yes|no|on|off|y|n)$/i.test(node.value)
    ) {
      message += ` ("${node.value}"; YAML 1.2 reads it as a string, write true or false)`;
    }
    this.report('type', pos, path, message);
    return undefined;
  }

  private report(code: PipelineErrorCode, pos: SourcePos, path: string, message: string): void {
    this.errors.push(this.src.error(code, pos, path, message));
  }

  private regex(pattern: string): RegExp {
    let re = this.patterns.get(pattern);
    if (!re) {
      re = new RegExp(pattern);
      this.patterns.set(pattern, re);
    }
    return re;
  }
}

/** Whether a node of this kind could be valid against the schema (used to pick a union branch). */
function accepts(schema: TSchema, kind: NodeKind): boolean {
  if (KindGuard.IsUnion(schema)) return schema.anyOf.some((s) => accepts(s, kind));
  if (KindGuard.IsLiteral(schema)) return kind === typeof schema.const;
  if (KindGuard.IsString(schema)) return kind === 'string';
  // An integer schema takes 1.5 too, so that the message is "expected an integer, got 1.5".
  if (KindGuard.IsInteger(schema) || KindGuard.IsNumber(schema))
    return kind === 'integer' || kind === 'number';
  if (KindGuard.IsBoolean(schema)) return kind === 'boolean';
  if (KindGuard.IsObject(schema) || KindGuard.IsRecord(schema)) return kind === 'mapping';
  if (KindGuard.IsArray(schema)) return kind === 'list';
  return false;
}
