/**
 * The published JSON Schema: well-formed draft-07, strict where keys are fixed, and in
 * agreement with the compiler on the PIPELINE.md example. Checked with a small structural
 * validator below (only the keywords the schema uses), to avoid a dependency on Ajv.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { pipelineJsonSchema } from './schema.js';

type Schema = Record<string, unknown>;

const DRAFT7_KEYWORDS = new Set([
  '$schema',
  'title',
  'description',
  'examples',
  'type',
  'properties',
  'required',
  'additionalProperties',
  'patternProperties',
  'items',
  'anyOf',
  'oneOf',
  'not',
  'const',
  'minItems',
  'minimum',
  'maximum',
  'minLength',
  'pattern',
  'format',
  'propertyNames',
]);
/** Annotations editors understand besides the standard ones (VS Code, yaml-language-server). */
const EXTENSIONS = new Set(['patternErrorMessage']);

/** Every subschema with its JSON pointer. */
function* subschemas(schema: Schema, pointer = '#'): Generator<[string, Schema]> {
  yield [pointer, schema];
  for (const key of ['properties', 'patternProperties'] as const) {
    for (const [name, sub] of Object.entries((schema[key] ?? {}) as Record<string, Schema>)) {
      yield* subschemas(sub, `${pointer}/${key}/${name}`);
    }
  }
  if (schema.items) yield* subschemas(schema.items as Schema, `${pointer}/items`);
  if (schema.propertyNames) yield* subschemas(schema.propertyNames as Schema, `${pointer}/propertyNames`);
  for (const key of ['anyOf', 'oneOf'] as const) {
    for (const [i, sub] of ((schema[key] ?? []) as Schema[]).entries())
      yield* subschemas(sub, `${pointer}/${key}/${i}`);
  }
}

function typeOf(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  if (typeof v === 'number') return Number.isInteger(v) ? 'integer' : 'number';
  return typeof v;
}

/** Errors of `value` against `schema` (empty when valid). */
function check(schema: Schema, value: unknown, at = '$'): string[] {
  const errors: string[] = [];
  const t = typeOf(value);
  if (schema.type !== undefined) {
    const ok = schema.type === t || (schema.type === 'number' && t === 'integer');
    if (!ok) return [`${at}: expected ${JSON.stringify(schema.type)}, got ${t}`];
  }
  if ('const' in schema && schema.const !== value) errors.push(`${at}: expected ${String(schema.const)}`);
  if (typeof value === 'string') {
    if (typeof schema.minLength === 'number' && value.length < schema.minLength)
      errors.push(`${at}: too short`);
    if (typeof schema.pattern === 'string' && !new RegExp(schema.pattern).test(value))
      errors.push(`${at}: pattern`);
  }
  if (typeof value === 'number') {
    if (typeof schema.minimum === 'number' && value < schema.minimum) errors.push(`${at}: minimum`);
    if (typeof schema.maximum === 'number' && value > schema.maximum) errors.push(`${at}: maximum`);
  }
  if (Array.isArray(value)) {
    if (typeof schema.minItems === 'number' && value.length < schema.minItems) errors.push(`${at}: minItems`);
    if (schema.items)
      value.forEach((v, i) => errors.push(...check(schema.items as Schema, v, `${at}[${i}]`)));
  }
  if (t === 'object') {
    const obj = value as Record<string, unknown>;
    const props = (schema.properties ?? {}) as Record<string, Schema>;
    const patterns = Object.entries((schema.patternProperties ?? {}) as Record<string, Schema>);
    for (const key of (schema.required ?? []) as string[])
      if (!(key in obj)) errors.push(`${at}: missing ${key}`);
    const names = schema.propertyNames as Schema | undefined;
    if (names) for (const key of Object.keys(obj)) errors.push(...check(names, key, `${at}{${key}}`));
    for (const [key, v] of Object.entries(obj)) {
      const byPattern = patterns.filter(([p]) => new RegExp(p).test(key));
      if (props[key]) errors.push(...check(props[key], v, `${at}.${key}`));
      for (const [, s] of byPattern) errors.push(...check(s, v, `${at}.${key}`));
      if (!props[key] && byPattern.length === 0 && schema.additionalProperties === false) {
        errors.push(`${at}: unexpected ${key}`);
      }
    }
  }
  if (
    Array.isArray(schema.anyOf) &&
    !(schema.anyOf as Schema[]).some((s) => check(s, value, at).length === 0)
  ) {
    errors.push(`${at}: matches no anyOf branch`);
  }
  if (
    Array.isArray(schema.oneOf) &&
    (schema.oneOf as Schema[]).filter((s) => check(s, value, at).length === 0).length !== 1
  ) {
    errors.push(`${at}: must match exactly one oneOf branch`);
  }
  if (schema.not !== undefined && check(schema.not as Schema, value, at).length === 0) {
    errors.push(`${at}: matches what "not" excludes`);
  }
  return errors;
}

const example = parse(
  readFileSync(join(import.meta.dirname, 'fixtures/valid/pipeline-md-example.yml'), 'utf8'),
) as unknown;

describe('pipelineJsonSchema', () => {
  const schema = pipelineJsonSchema();

  it('is plain JSON with $schema and a title', () => {
    expect(JSON.parse(JSON.stringify(schema))).toEqual(schema);
    expect(schema.$schema).toBe('http://json-schema.org/draft-07/schema#');
    expect(schema.title).toBe('Slipway pipeline');
    expect(schema.type).toBe('object');
  });

  it('returns a fresh object each call', () => {
    const a = pipelineJsonSchema();
    (a.properties as Record<string, unknown>).image = 'changed';
    expect((pipelineJsonSchema().properties as Record<string, unknown>).image).not.toBe('changed');
  });

  it('uses only draft-07 keywords (plus editor annotations), with valid patterns', () => {
    for (const [pointer, sub] of subschemas(schema)) {
      for (const key of Object.keys(sub)) {
        expect(DRAFT7_KEYWORDS.has(key) || EXTENSIONS.has(key), `${pointer}: unknown keyword ${key}`).toBe(
          true,
        );
      }
      if (typeof sub.pattern === 'string') expect(() => new RegExp(sub.pattern as string)).not.toThrow();
      if (sub.required !== undefined) expect(Array.isArray(sub.required), pointer).toBe(true);
    }
  });

  it('closes every mapping with fixed keys, and describes every property', () => {
    for (const [pointer, sub] of subschemas(schema)) {
      if (sub.type === 'object') expect(sub.additionalProperties, pointer).toBe(false);
      for (const [name, prop] of Object.entries((sub.properties ?? {}) as Record<string, Schema>)) {
        const described = typeof prop.description === 'string' || typeof prop.title === 'string';
        expect(described, `${pointer}/properties/${name} has no description`).toBe(true);
      }
    }
  });

  it('accepts the PIPELINE.md example', () => {
    expect(check(schema, example)).toEqual([]);
  });

  it('accepts the short form and secrets in env', () => {
    const doc = {
      env: { A: 1, B: true, C: 'x', D: { from_secret: 'd' } },
      steps: [{ name: 'a', commands: ['x'] }],
    };
    expect(check(schema, doc)).toEqual([]);
  });

  it('accepts include with stages, steps, or alone (the stages then come from the included files)', () => {
    const include = [{ file: 'ci/common.yml' }, { project: 'acme/ci', ref: 'v1', file: 'ci/node.yml' }];
    expect(check(schema, { include })).toEqual([]);
    expect(check(schema, { include, steps: [{ name: 'a', commands: ['x'] }] })).toEqual([]);
    expect(
      check(schema, { include, stages: [{ name: 's', steps: [{ name: 'a', commands: ['x'] }] }] }),
    ).toEqual([]);
  });

  it.each([
    [
      'include and both forms',
      { include: [{ file: 'a.yml' }], steps: [{ name: 'a', commands: ['x'] }], stages: [] },
    ],
    ['include without file', { include: [{ project: 'acme/ci', ref: 'v1' }] }],
    ['include of a bad project', { include: [{ project: 'acme', ref: 'v1', file: 'a.yml' }] }],
    ['unknown key', { steps: [{ name: 'a', comands: ['x'] }] }],
    ['both forms', { steps: [{ name: 'a', commands: ['x'] }], stages: [] }],
    ['neither form', { image: 'x' }],
    ['commands not a list', { steps: [{ name: 'a', commands: 5 }] }],
    [
      'bad event',
      { stages: [{ name: 's', when: { event: 'pr' }, steps: [{ name: 'a', commands: ['x'] }] }] },
    ],
    ['bad duration', { steps: [{ name: 'a', commands: ['x'], timeout: '5x' }] }],
    ['bad port', { services: [{ name: 'db', wait_for: 70000 }], steps: [{ name: 'a', commands: ['x'] }] }],
    ['bad env name', { env: { '1A': 'x' }, steps: [{ name: 'a', commands: ['x'] }] }],
    ['env list value', { env: { A: ['x'] }, steps: [{ name: 'a', commands: ['x'] }] }],
  ])('rejects: %s', (_, doc) => {
    expect(check(schema, doc)).not.toEqual([]);
  });
});
