import { isRole, type Role } from './roles.js';

/**
 * The `code` of every error answer of the REST API (`{error:{code,message,details}}`), one per
 * kind of failure a client may branch on.
 */
export const API_ERROR_CODES = [
  /** A field, query parameter or path parameter is missing, unknown or of the wrong shape. */
  'invalid_request',
  /** The body is not JSON (or is empty) although the content type says it is. */
  'invalid_json',
  'payload_too_large',
  /** Only `application/json` bodies are accepted. */
  'unsupported_media_type',
  /** No such route, project, build, step or token. */
  'not_found',
  'unauthorized',
  'forbidden',
  /** The request clashes with the current state (duplicate slug, build already finished). */
  'conflict',
  /** A dependency (the database) does not answer; retrying later may work. */
  'unavailable',
  /**
   * A bug or an unexpected failure: the message is `internal error (id …)`, and the server log
   * has that `errorId` with the stack; nothing else about it is in the answer.
   */
  'internal',
] as const;
export type ApiErrorCode = (typeof API_ERROR_CODES)[number];

/** Codes of webhook error answers beyond the REST ones (the same words where they mean the same). */
export const HOOK_ERROR_CODES = [
  /** A branch, tag or commit that is not a plain git name (shell metacharacters, `..`, …). */
  'invalid_ref',
  /** A build-scripts repository's `project.json` or `build.sh` is missing or invalid. */
  'invalid_descriptor',
  /** The build-scripts repository could not be fetched. */
  'scripts_unavailable',
] as const;
export type HookErrorCode =
  | Exclude<ApiErrorCode, 'forbidden' | 'unsupported_media_type' | 'unavailable'>
  | (typeof HOOK_ERROR_CODES)[number];

/**
 * Codes a client gives a failure that did not come as an API error answer: no answer at all
 * (`unreachable`, `timeout`), an answer that is not what the API sends (`bad_response`), or an
 * error status without the API's error body (`http`, e.g. from a proxy).
 */
export type ClientErrorCode = 'unreachable' | 'timeout' | 'bad_response' | 'http';

export function isApiErrorCode(value: unknown): value is ApiErrorCode {
  return (API_ERROR_CODES as readonly unknown[]).includes(value);
}

/** An error answer, decoded: see {@link decodeApiError}. */
export interface DecodedApiError {
  status: number;
  code: ApiErrorCode | 'http';
  /** The server's message, or one that says what came instead. */
  message: string;
  details?: unknown;
}

/** The code an error status means when the body does not say (a newer server, a proxy). */
export function codeForStatus(status: number): ApiErrorCode | 'http' {
  switch (status) {
    case 400:
    case 422:
      return 'invalid_request';
    case 401:
      return 'unauthorized';
    case 403:
      return 'forbidden';
    case 404:
      return 'not_found';
    case 409:
      return 'conflict';
    case 413:
      return 'payload_too_large';
    case 415:
      return 'unsupported_media_type';
    case 503:
      return 'unavailable';
    default:
      return status >= 500 ? 'internal' : 'http';
  }
}

/**
 * Decodes an error answer: `body` is its text (or already parsed JSON). The API's own body
 * gives code, message and details; a code this client does not know is replaced by the one
 * the status means, and the server's message is kept. Anything else (an HTML page of a proxy)
 * is code `http` with a message naming the status.
 */
export function decodeApiError(status: number, statusText: string, body: unknown): DecodedApiError {
  const error = errorObject(body);
  if (error !== undefined) {
    const code = isApiErrorCode(error.code) ? error.code : codeForStatus(status);
    return {
      status,
      code,
      message: error.message,
      ...('details' in error ? { details: error.details } : {}),
    };
  }
  return {
    status,
    code: 'http',
    message: `the server answered HTTP ${status}${statusText ? ` ${statusText}` : ''}`,
  };
}

function errorObject(body: unknown): { code: string; message: string; details?: unknown } | undefined {
  let value = body;
  if (typeof body === 'string') {
    try {
      value = JSON.parse(body) as unknown;
    } catch {
      return undefined;
    }
  }
  if (typeof value !== 'object' || value === null || !('error' in value)) return undefined;
  const error = value.error;
  if (typeof error !== 'object' || error === null) return undefined;
  const code = 'code' in error && typeof error.code === 'string' ? error.code : undefined;
  const message = 'message' in error && typeof error.message === 'string' ? error.message : undefined;
  if (code === undefined || message === undefined) return undefined;
  return { code, message, ...('details' in error ? { details: error.details } : {}) };
}

/** The role a 403 answer says the call needs (`details.requiredRole`), if it says. */
export function requiredRole(details: unknown): Role | undefined {
  if (typeof details !== 'object' || details === null || !('requiredRole' in details)) return undefined;
  return isRole(details.requiredRole) ? details.requiredRole : undefined;
}
