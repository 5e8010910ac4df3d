import { STATUS_CODES as HTTP_STATUS } from 'node:http';
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { BlobError } from '../../blobs/errors.js';
import { isStoreError } from '../../store/index.js';
import { AuthError } from '../auth/errors.js';
import { HookError, type HookErrorCode } from '../hooks/errors.js';
import { internalErrorMessage, newErrorId } from '../internal-error.js';
import { ControlError } from '../scheduler/types.js';
import { SecretError } from '../secrets/errors.js';
import type { ApiErrorCode } from '../../contract/api-errors.js';
import type { ApiError } from './dto.js';
import type { SchemaViolation } from './validation.js';

/** The `code` of every error answer: the shared words of src/contract/api-errors.ts. */
export type { ApiErrorCode };

/** Every `code` an error answer may have: the API's, and the webhooks' own (`HookErrorCode`). */
export type ErrorCode = ApiErrorCode | HookErrorCode;

/** An error a route raises on purpose, with its HTTP status. */
export class HttpError extends Error {
  override readonly name = 'HttpError';

  constructor(
    readonly statusCode: number,
    readonly code: ApiErrorCode,
    message: string,
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
  }
}

/** 404 for a named thing that does not exist. */
export function notFound(what: string): HttpError {
  return new HttpError(404, 'not_found', `${what} not found`);
}

/** How an error is answered, and whether it is worth an entry in the server's error log. */
export interface ErrorReply {
  statusCode: number;
  body: ApiError;
  headers?: Record<string, string>;
  /** True for failures that are the server's fault (5xx): logged with their stack. */
  serverFault: boolean;
  /** For an internal error: the id its answer names and its log entry carries. */
  errorId?: string;
}

/**
 * The one place where every error becomes an HTTP answer `{error:{code,message,details}}`:
 * errors of routes, of the store, of the build machinery, of authentication, of webhooks, of
 * secrets, of blob storage and of Fastify itself (validation, body parsing). Anything else
 * is a 500 `internal error (id …)`: the id is in `details.errorId`, and its stack in the
 * server log only (see {@link answerError}).
 */
export function toErrorReply(error: unknown, requestId: string): ErrorReply {
  if (error instanceof HttpError) return reply(error.statusCode, error.code, error.message, error.details);
  if (error instanceof HookError) return reply(error.statusCode, error.code, error.message, error.details);
  if (error instanceof SecretError && error.code === 'invalid') {
    return reply(400, 'invalid_request', error.message);
  }
  if (error instanceof BlobError) {
    switch (error.code) {
      case 'invalid_key':
      case 'size_mismatch':
        return reply(400, 'invalid_request', error.message);
      case 'storage':
        // The storage's words may name buckets and paths: for the log, not for the caller.
        return {
          ...reply(503, 'unavailable', 'the blob storage is not available; try again'),
          serverFault: true,
        };
      default:
        break;
    }
  }
  if (error instanceof AuthError) {
    if (error.code === 'unauthorized') {
      return {
        ...reply(401, 'unauthorized', error.message),
        headers: { 'www-authenticate': 'Bearer realm="slipway"' },
      };
    }
    return reply(
      403,
      'forbidden',
      error.message,
      error.needed === undefined ? undefined : { requiredRole: error.needed },
    );
  }
  if (error instanceof ControlError) {
    const status = { not_found: 404, conflict: 409, invalid: 400 }[error.code];
    return reply(status, error.code === 'invalid' ? 'invalid_request' : error.code, error.message);
  }
  if (isStoreError(error)) {
    switch (error.code) {
      case 'not_found':
        return reply(404, 'not_found', error.message, error.details);
      case 'conflict':
        return reply(409, 'conflict', error.message, error.details);
      case 'invalid': {
        // The store names the field in camelCase, the same name the request body uses.
        const field = typeof error.details.field === 'string' ? `body.${error.details.field}` : undefined;
        if (field === undefined) return reply(400, 'invalid_request', error.message, error.details);
        return reply(400, 'invalid_request', `${field}: ${error.message}`, {
          fields: [{ path: field, message: error.message }],
        });
      }
      case 'unavailable':
        return { ...reply(503, 'unavailable', 'the database is not available'), serverFault: true };
      default:
        break;
    }
  }
  if (isFastifyError(error)) {
    if (error.validation !== undefined) return validationReply(error);
    switch (error.code) {
      case 'FST_ERR_CTP_INVALID_JSON_BODY':
        return reply(400, 'invalid_json', 'the request body is not valid JSON');
      case 'FST_ERR_CTP_EMPTY_JSON_BODY':
        return reply(
          400,
          'invalid_json',
          'the request body is empty but its content type is application/json',
        );
      case 'FST_ERR_CTP_BODY_TOO_LARGE':
        return reply(413, 'payload_too_large', 'the request body is larger than the server accepts');
      case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
        return reply(415, 'unsupported_media_type', 'send the request body as application/json');
      case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
        return reply(400, 'invalid_request', 'the request body does not match its Content-Length');
      case 'FST_ERR_BAD_URL':
        return reply(400, 'invalid_request', 'the URL path is not valid percent-encoding');
      case 'FST_ERR_MAX_PARAM_LENGTH':
        // No valid name gets near the router's limit (see MAX_PARAM_LENGTH), so nothing is there.
        return reply(404, 'not_found', 'no such resource: a path segment is longer than any name can be');
      default:
        break;
    }
  }
  const status = error instanceof Error ? clientStatus(error) : undefined;
  if (status !== undefined) {
    return reply(status, CODE_OF_STATUS[status] ?? 'invalid_request', clientMessage(error as Error, status));
  }
  if (isTransientDatabaseError(error)) {
    return {
      ...reply(503, 'unavailable', 'the database is busy or not reachable; try again'),
      serverFault: true,
    };
  }
  // Secrets that do not open, a misconfigured blob store, bugs: nothing a caller can act on.
  const errorId = newErrorId();
  return {
    ...reply(500, 'internal', internalErrorMessage(errorId), { errorId, requestId }),
    serverFault: true,
    errorId,
  };
}

/**
 * The one error handler, of the API and of the webhooks alike: every error, of a route, of
 * Fastify or of its router, becomes its answer through {@link toErrorReply}. Only the
 * server's own faults are logged, with their stack (and an internal error's `errorId`); a
 * refused request is already in the request log with its status.
 */
export function answerError(
  error: unknown,
  request: FastifyRequest,
  reply: FastifyReply,
): FastifyReply | undefined {
  const answer = toErrorReply(error, request.id);
  if (answer.serverFault) {
    request.log.error(
      answer.errorId === undefined ? { err: error } : { err: error, errorId: answer.errorId },
      'request failed',
    );
  }
  if (reply.sent) return undefined;
  return reply
    .code(answer.statusCode)
    .headers(answer.headers ?? {})
    .send(answer.body);
}

/**
 * The answer to bytes that are not HTTP at all (a malformed request line, a body where the
 * parser expected the next request, headers over the size limit, a request too slow to
 * arrive): there is no request to hand to the error handler, only the connection, which is
 * closed after this answer.
 */
export function toConnectionErrorReply(errorCode: string | undefined): ErrorReply {
  if (errorCode === 'ERR_HTTP_REQUEST_TIMEOUT') {
    return reply(408, 'invalid_request', 'the request did not arrive in time');
  }
  if (errorCode === 'HPE_HEADER_OVERFLOW') {
    return reply(431, 'invalid_request', 'the request headers are larger than the server accepts');
  }
  return reply(400, 'invalid_request', 'the request is not well-formed HTTP');
}

/** The `code` of a 4xx answer whose error has no more specific mapping above. */
const CODE_OF_STATUS: Partial<Record<number, ApiErrorCode>> = {
  401: 'unauthorized',
  403: 'forbidden',
  404: 'not_found',
  409: 'conflict',
  413: 'payload_too_large',
  415: 'unsupported_media_type',
};

/**
 * The 4xx status an error of a library carries (Fastify's own `FST_ERR_*`, `@fastify/send`'s
 * `http-errors` for a `%00` or `..` in a static path, …): the library refused the request, so
 * the answer is that refusal, not a 500 with a stack in the log.
 */
function clientStatus(error: Error): number | undefined {
  const { statusCode, status } = error as { statusCode?: unknown; status?: unknown };
  const value = typeof statusCode === 'number' ? statusCode : status;
  return typeof value === 'number' && Number.isInteger(value) && value >= 400 && value < 500
    ? value
    : undefined;
}

/**
 * Fastify's messages are written for clients; other libraries' may name server internals, so
 * they are shown only when the error says it may be (`expose`, as `http-errors` sets it).
 */
function clientMessage(error: Error, status: number): string {
  const code = (error as { code?: unknown }).code;
  const exposed =
    (error as { expose?: unknown }).expose === true || (typeof code === 'string' && code.startsWith('FST_'));
  const plain = exposed && error.message.length <= 300 && !error.message.includes('\n');
  // "Bad Request" says nothing the status does not.
  const text = plain && error.message !== HTTP_STATUS[status] ? error.message : undefined;
  const base =
    status === 404 ? 'not found' : status === 403 ? 'this path is not allowed' : 'the request is not valid';
  return text === undefined ? base : `${base}: ${text}`;
}

/** Where Fastify found the invalid value, as the prefix of a field path. */
const PART: Record<string, string> = {
  body: 'body',
  querystring: 'query',
  params: 'path',
  headers: 'header',
};

function validationReply(error: FastifyError): ErrorReply {
  const part = PART[error.validationContext ?? 'body'] ?? 'body';
  const fields = (error.validation as unknown as SchemaViolation[]).map((v) => ({
    path: fieldPath(part, v.instancePath),
    message: v.message,
  }));
  const message = fields.map((f) => `${f.path} ${f.message}`).join('; ');
  return reply(400, 'invalid_request', message || `invalid ${part}`, { fields });
}

/** `body` + `/steps/0/name` → `body.steps[0].name` (JSON pointer unescaped). */
function fieldPath(part: string, pointer: string): string {
  let path = part;
  for (const raw of pointer.split('/').slice(1)) {
    const key = raw.replaceAll('~1', '/').replaceAll('~0', '~');
    path += /^\d+$/.test(key) ? `[${key}]` : `.${key}`;
  }
  return path;
}

function reply(
  statusCode: number,
  code: ErrorCode,
  message: string,
  details?: Record<string, unknown>,
): ErrorReply {
  return {
    statusCode,
    body: { error: { code, message, details: details ?? {} } },
    serverFault: false,
  };
}

/** Driver errors that say "not now" rather than "wrong": lock timeouts, lost connections. */
const TRANSIENT_CODES = new Set(['SQLITE_BUSY', 'ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', '57P01', '53300']);

function isTransientDatabaseError(error: unknown): boolean {
  const code = error instanceof Error ? (error as { code?: unknown }).code : undefined;
  return typeof code === 'string' && TRANSIENT_CODES.has(code);
}

function isFastifyError(error: unknown): error is FastifyError {
  return error instanceof Error && typeof (error as Partial<FastifyError>).code === 'string';
}
