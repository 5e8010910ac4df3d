import type { TSchema } from '@sinclair/typebox';
import { TypeCompiler, ValueErrorType } from '@sinclair/typebox/compiler';
import type { TypeCheck, ValueError } from '@sinclair/typebox/compiler';
import { Value } from '@sinclair/typebox/value';
import type { FastifySchemaCompiler, FastifySchemaValidationError } from 'fastify';

/** One rejected value: where (a JSON pointer into the request part) and what is wrong. */
export interface SchemaViolation extends FastifySchemaValidationError {
  message: string;
}

/** More would only bury the first mistakes; a request this wrong is rarely fixed one field at a time. */
const MAX_VIOLATIONS = 20;

/**
 * Validates requests with TypeBox's compiled checks. Bodies are checked as sent: no type
 * coercion, unknown fields rejected by the schemas' `additionalProperties: false`, so a
 * typo is an error, not a silently ignored setting. Query strings, path parameters and
 * headers arrive as text and are converted to the schema's types first (`"20"` → 20).
 *
 * A missing body is taken as `{}` when the body schema has no required fields, so the action
 * routes (cancel, approve, rerun) also work with a bare `POST`.
 */
export const validatorCompiler: FastifySchemaCompiler<TSchema> = ({ schema, httpPart }) => {
  const check = TypeCompiler.Compile(schema);
  const isBody = httpPart === 'body';
  const emptyBodyAllowed = isBody && allowsEmptyObject(schema);
  return (input: unknown) => {
    // Fastify hands a missing part over as null.
    let value = input;
    if (!isBody) value = Value.Convert(schema, input);
    else if (input === null && emptyBodyAllowed) value = {};
    if (check.Check(value)) return { value };
    return { error: violations(check, value) };
  };
};

function violations(check: TypeCheck<TSchema>, value: unknown): SchemaViolation[] {
  const out: SchemaViolation[] = [];
  const seen = new Set<string>();
  for (const error of check.Errors(value)) {
    // One message per field: the first is the most specific one TypeBox reports.
    if (seen.has(error.path)) continue;
    seen.add(error.path);
    out.push({
      keyword: ValueErrorType[error.type] ?? 'invalid',
      instancePath: error.path,
      schemaPath: '',
      params: {},
      message: describe(error),
    });
    if (out.length >= MAX_VIOLATIONS) break;
  }
  return out;
}

function describe(error: ValueError): string {
  if (error.type === ValueErrorType.ObjectAdditionalProperties) return 'is not a known field';
  if (error.type === ValueErrorType.ObjectRequiredProperty) return 'is required';
  const custom = (error.schema as { errorMessage?: unknown }).errorMessage;
  if (typeof custom === 'string') return custom;
  if (error.type === ValueErrorType.Union) {
    // A value of the right type that breaks a member's constraint (a too short string for
    // `string | null`) gets that member's message, which says more than the list of types.
    const members = (error.schema.anyOf ?? []) as TSchema[];
    const index = members.findIndex((m) => m.const === undefined && m.type === jsonType(error.value));
    const inner = index < 0 ? undefined : error.errors[index]?.First();
    return inner === undefined ? `must be ${describeUnion(error.schema)}` : describe(inner);
  }
  return error.message.charAt(0).toLowerCase() + error.message.slice(1);
}

function describeUnion(schema: TSchema): string {
  const members = (schema.anyOf ?? []) as TSchema[];
  const consts = members.filter((m) => m.const !== undefined).map((m) => JSON.stringify(m.const));
  const types = members
    .filter((m) => m.const === undefined)
    .map((m) =>
      m.type === 'null'
        ? 'null'
        : `a${m.type === 'integer' || m.type === 'object' || m.type === 'array' ? 'n' : ''} ${String(m.type)}`,
    );
  const parts = [...(consts.length > 0 ? [`one of ${consts.join(', ')}`] : []), ...types];
  return parts.join(' or ') || 'one of the allowed values';
}

function jsonType(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  if (typeof value === 'number') return Number.isInteger(value) ? 'integer' : 'number';
  return typeof value;
}

function allowsEmptyObject(schema: TSchema): boolean {
  return (
    schema.type === 'object' && (schema.required === undefined || (schema.required as unknown[]).length === 0)
  );
}
