/**
 * Errors as the Kubernetes API server sends them: a `Status` object with `status: Failure`, the
 * `reason`, the HTTP `code`, a message worded like the real server's, and `details`.
 */

export interface StatusCause {
  reason: string;
  message: string;
  field?: string;
}

export interface StatusDetails {
  name?: string;
  group?: string;
  kind?: string;
  uid?: string;
  causes?: StatusCause[];
}

export class ApiError extends Error {
  constructor(
    readonly code: number,
    readonly reason: string,
    message: string,
    readonly details?: StatusDetails,
  ) {
    super(message);
    this.name = 'ApiError';
  }

  toStatus(): Record<string, unknown> {
    return {
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Failure',
      message: this.message,
      reason: this.reason,
      ...(this.details ? { details: this.details } : {}),
      code: this.code,
    };
  }
}

export function notFound(resource: string, name: string): ApiError {
  return new ApiError(404, 'NotFound', `${resource} "${name}" not found`, { name, kind: resource });
}

export function pathNotFound(): ApiError {
  return new ApiError(404, 'NotFound', 'the server could not find the requested resource', {});
}

export function alreadyExists(resource: string, name: string): ApiError {
  return new ApiError(409, 'AlreadyExists', `${resource} "${name}" already exists`, {
    name,
    kind: resource,
  });
}

export function conflict(resource: string, name: string): ApiError {
  return new ApiError(
    409,
    'Conflict',
    `Operation cannot be fulfilled on ${resource} "${name}": the object has been modified; please apply your changes to the latest version and try again`,
    { name, kind: resource },
  );
}

export function badRequest(message: string): ApiError {
  return new ApiError(400, 'BadRequest', message);
}

export function methodNotAllowed(): ApiError {
  return new ApiError(
    405,
    'MethodNotAllowed',
    'the server does not allow this method on the requested resource',
    {},
  );
}

export function unsupportedMediaType(): ApiError {
  return new ApiError(
    415,
    'UnsupportedMediaType',
    'the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json',
  );
}

export function forbidden(verb: string, resource: string, namespace: string, group = ''): ApiError {
  return new ApiError(
    403,
    'Forbidden',
    `${resource} is forbidden: User "system:serviceaccount:slipway:slipway" cannot ${verb} resource "${resource}" in API group "${group}" in the namespace "${namespace}"`,
    { kind: resource },
  );
}

/** Field errors as `path: Type: detail` (as `kubeSchemaErrors` and the validators word them). */
export function invalid(kind: string, name: string, errors: string[]): ApiError {
  const causes = errors.map((e): StatusCause => {
    const at = e.indexOf(': ');
    const field = at < 0 ? '' : e.slice(0, at);
    const message = at < 0 ? e : e.slice(at + 2);
    return { reason: causeReason(message), message, ...(field ? { field } : {}) };
  });
  const text = errors.length === 1 ? errors[0] : `[${errors.join(', ')}]`;
  return new ApiError(422, 'Invalid', `${kind} "${name}" is invalid: ${text}`, {
    name,
    kind,
    causes,
  });
}

function causeReason(message: string): string {
  if (message.startsWith('Forbidden')) return 'FieldValueForbidden';
  if (message.startsWith('Required value')) return 'FieldValueRequired';
  if (message.startsWith('Duplicate value')) return 'FieldValueDuplicate';
  if (message.startsWith('Not found')) return 'FieldValueNotFound';
  if (message.startsWith('Too long')) return 'FieldValueTooLong';
  if (message.startsWith('Unsupported value')) return 'FieldValueNotSupported';
  return 'FieldValueInvalid';
}
