/**
 * Words for messages: what a schema expects ("a list of steps") and what a YAML node is
 * ("a number"). Derived from the schema's structure and `title`, so messages follow the schema.
 */
import { KindGuard, type TLiteral, type TSchema, type TUnion } from '@sinclair/typebox';
import { isMap, isScalar, isSeq, type Node } from 'yaml';

/** The kinds a YAML node can have, as the validator distinguishes them. */
export type NodeKind = 'null' | 'string' | 'integer' | 'number' | 'boolean' | 'mapping' | 'list' | 'other';

/** The kind of a (resolved) YAML node; a missing node is `null`, as in `key:` without value. */
export function nodeKind(node: Node | null | undefined): NodeKind {
  if (node === null || node === undefined) return 'null';
  if (isMap(node)) return 'mapping';
  if (isSeq(node)) return 'list';
  if (!isScalar(node)) return 'other';
  const v = node.value;
  if (v === null || v === undefined) return 'null';
  if (typeof v === 'string') return 'string';
  if (typeof v === 'boolean') return 'boolean';
  if (typeof v === 'number' || typeof v === 'bigint')
    return Number.isInteger(Number(v)) ? 'integer' : 'number';
  return 'other';
}

/** The node as the "got …" part of a message. Numbers show their value where a number was expected. */
export function gotPhrase(node: Node | null | undefined, showNumber: boolean): string {
  const kind = nodeKind(node);
  if ((kind === 'integer' || kind === 'number') && showNumber && isScalar(node))
    return String(node.source ?? node.value);
  switch (kind) {
    case 'null':
      return isScalar(node) && node.source === '' ? 'nothing' : 'null';
    case 'string':
      return isScalar(node) && node.value === '' ? 'an empty string' : 'a string';
    case 'integer':
    case 'number':
      return 'a number';
    case 'boolean':
      return 'a boolean';
    case 'mapping':
      return 'a mapping';
    case 'list':
      return 'a list';
    default:
      return 'an unsupported value';
  }
}

/** `a step`, `an event`. */
export function withArticle(noun: string): string {
  return `${/^[aeiou]/i.test(noun) ? 'an' : 'a'} ${noun}`;
}

/** `step` → `steps`, `status` → `statuses`: enough English for the schema's titles. */
export function plural(noun: string): string {
  if (noun.endsWith('s')) return `${noun}es`;
  if (/[^aeiou]y$/.test(noun)) return `${noun.slice(0, -1)}ies`;
  return `${noun}s`;
}

/** A string-valued keyword of a schema (`title`, `patternErrorMessage`, …), if set. */
export function annotation(schema: unknown, keyword: string): string | undefined {
  const value: unknown =
    typeof schema === 'object' && schema !== null ? Reflect.get(schema, keyword) : undefined;
  return typeof value === 'string' ? value : undefined;
}

function title(schema: TSchema): string | undefined {
  return annotation(schema, 'title');
}

/** True when every branch of a union is a literal: an enumeration such as the events. */
export function isEnum(schema: TSchema): schema is TUnion<TLiteral[]> {
  return KindGuard.IsUnion(schema) && schema.anyOf.every((s) => KindGuard.IsLiteral(s));
}

/** The allowed values of an enumeration, in schema order (for "expected one of …"). */
export function enumValues(schema: TSchema): string[] {
  return isEnum(schema) ? schema.anyOf.map((s) => String(s.const)) : [];
}

function range(schema: TSchema): string {
  const { minimum, maximum } = schema as { minimum?: number; maximum?: number };
  if (minimum !== undefined && maximum !== undefined) return ` (${minimum}-${maximum})`;
  return '';
}

/**
 * What a value must be, e.g. "a list of strings", "a duration (e.g. 90s, 5m, 1h)", "true or
 * false". `inList` is for alternatives joined with "or", where "true or false" would read badly.
 */
export function describe(schema: TSchema, inList = false): string {
  const t = title(schema);
  if (KindGuard.IsLiteral(schema)) return JSON.stringify(schema.const);
  if (isEnum(schema)) return t ? withArticle(t) : `one of ${enumValues(schema).join(', ')}`;
  if (KindGuard.IsUnion(schema)) {
    if (t) return withArticle(t) + examplesOf(schema);
    return joinList(schema.anyOf.map((s) => describe(s, true)));
  }
  if (KindGuard.IsArray(schema)) return `a list of ${pluralNoun(schema.items)}`;
  if (KindGuard.IsObject(schema)) return t ? withArticle(t) + examplesOf(schema) : 'a mapping';
  if (KindGuard.IsRecord(schema)) return 'a mapping';
  if (KindGuard.IsString(schema)) return 'a string';
  if (KindGuard.IsInteger(schema)) {
    if (t) return withArticle(t) + range(schema);
    if (schema.minimum === 0 && schema.maximum === undefined) return 'a non-negative integer';
    if (schema.minimum === 1 && schema.maximum === undefined) return 'a positive integer';
    return `an integer${range(schema)}`;
  }
  if (KindGuard.IsNumber(schema)) return 'a number';
  if (KindGuard.IsBoolean(schema)) return inList ? 'a boolean' : 'true or false';
  return 'a valid value';
}

/** ` (e.g. 90s, 5m)` from the schema's `examples`, written as YAML flow values. */
function examplesOf(schema: TSchema): string {
  const examples: unknown = schema.examples;
  if (!Array.isArray(examples) || examples.length === 0) return '';
  return ` (e.g. ${examples.map(flow).join(', ')})`;
}

function flow(value: unknown): string {
  if (typeof value === 'object' && value !== null) {
    return `{${Object.entries(value)
      .map(([k, v]) => `${k}: ${flow(v)}`)
      .join(', ')}}`;
  }
  return String(value);
}

function pluralNoun(items: TSchema): string {
  const t = title(items);
  if (t) return plural(t);
  if (KindGuard.IsString(items)) return 'strings';
  if (KindGuard.IsInteger(items) || KindGuard.IsNumber(items)) return 'numbers';
  if (KindGuard.IsObject(items) || KindGuard.IsRecord(items)) return 'mappings';
  return 'values';
}

/** `a, b or c` (or `a, b and c`). */
export function joinList(parts: string[], conjunction: 'or' | 'and' = 'or'): string {
  if (parts.length <= 1) return parts.join('');
  return `${parts.slice(0, -1).join(', ')} ${conjunction} ${parts[parts.length - 1] ?? ''}`;
}
