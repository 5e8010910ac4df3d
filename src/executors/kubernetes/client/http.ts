/**
 * Raw HTTP requests to the API server with the KubeConfig's credentials. We do not use
 * client-node's generated `CoreV1Api`: it deserializes into model classes (timestamps become
 * `Date`s, fields newer than its models are dropped) and the {@link KubeApi} contract wants the
 * JSON exactly as served; re-serializing with `ObjectSerializer` would round-trip through the
 * same lossy models. Its `ApiException` also loses the Status body for most codes, and its
 * requests have no timeout. So every call is one `http(s).request` with the agent (CA, client
 * certificate, proxy, TLS options) and headers (bearer token, exec plugins, impersonation) that
 * `KubeConfig.applyToHTTPSOptions` produces, a timeout, and the Status body mapped to
 * {@link KubeApiError}.
 */
import http from 'node:http';
import https from 'node:https';
import type { KubeConfig } from '@kubernetes/client-node';
import { KubeApiError } from '../kube-api.js';

export type Query = Record<string, string | number | boolean | undefined>;

export interface RequestOptions {
  query?: Query;
  /** Serialized as JSON. */
  body?: unknown;
  /** Content-Type of `body` (default `application/json`). */
  contentType?: string;
  signal?: AbortSignal;
}

/** Reasons of Status objects by HTTP status, for answers that carry no Status body. */
const REASONS: Record<number, string> = {
  400: 'BadRequest',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'NotFound',
  405: 'MethodNotAllowed',
  409: 'Conflict',
  410: 'Gone',
  415: 'UnsupportedMediaType',
  422: 'Invalid',
  429: 'TooManyRequests',
  500: 'InternalError',
  503: 'ServiceUnavailable',
  504: 'Timeout',
};

export class Transport {
  constructor(
    private readonly kc: KubeConfig,
    readonly server: string,
    private readonly requestTimeoutMs: number,
  ) {}

  /** One request answered with JSON; rejects with {@link KubeApiError} unless 2xx. */
  async json<T>(method: string, path: string, options: RequestOptions = {}): Promise<T> {
    const response = await this.open(method, path, {
      ...options,
      timeoutMs: this.requestTimeoutMs,
      wholeBody: true,
    });
    const text = response.body.toString('utf8');
    if (text === '') return undefined as T;
    try {
      return JSON.parse(text) as T;
    } catch (error) {
      throw new KubeApiError(
        response.status,
        'InvalidResponse',
        `${method} ${path}: the answer is not JSON`,
        {
          cause: error,
        },
      );
    }
  }

  /**
   * Sends a request and resolves with the response once its headers arrive (`stream`: the body
   * is left to the caller) or its body is read (`wholeBody`). A non-2xx answer rejects with
   * {@link KubeApiError} carrying the Status reason and message. `timeoutMs` bounds the time
   * to the headers, and with `wholeBody` to the end of the body.
   */
  async open(
    method: string,
    path: string,
    options: RequestOptions & { timeoutMs: number; wholeBody: true },
  ): Promise<{ status: number; body: Buffer }>;
  async open(
    method: string,
    path: string,
    options: RequestOptions & { timeoutMs: number; wholeBody?: false },
  ): Promise<{ status: number; stream: http.IncomingMessage; request: http.ClientRequest }>;
  async open(
    method: string,
    path: string,
    options: RequestOptions & { timeoutMs: number; wholeBody?: boolean },
  ): Promise<{ status: number; body?: Buffer; stream?: http.IncomingMessage; request?: http.ClientRequest }> {
    const where = `${method} ${path}`;
    const url = new URL(this.server + path);
    for (const [key, value] of Object.entries(options.query ?? {})) {
      if (value !== undefined) url.searchParams.set(key, String(value));
    }
    const tls: https.RequestOptions = {};
    try {
      await this.kc.applyToHTTPSOptions(tls);
    } catch (error) {
      // A credential plugin that fails, a CA or key file that cannot be read: no request is sent.
      throw new KubeApiError(0, 'ClientConfig', `${where}: credentials: ${messageOf(error)}`, {
        cause: error,
      });
    }
    const headers: http.OutgoingHttpHeaders = {
      ...(tls.headers as http.OutgoingHttpHeaders | undefined),
      Accept: 'application/json',
      'User-Agent': 'slipway',
    };
    let payload: Buffer | undefined;
    if (options.body !== undefined) {
      payload = Buffer.from(JSON.stringify(options.body));
      headers['Content-Type'] = options.contentType ?? 'application/json';
      headers['Content-Length'] = payload.length;
    }
    const signal = options.signal;
    if (signal?.aborted) throw aborted(where);
    const send = url.protocol === 'http:' ? http.request : https.request;
    return new Promise((resolve, reject) => {
      let settled = false;
      const fail = (error: KubeApiError): void => {
        if (settled) return;
        settled = true;
        cleanup();
        request.destroy();
        reject(error);
      };
      const timer = setTimeout(
        () =>
          fail(new KubeApiError(0, 'Timeout', `${where}: no answer within ${options.timeoutMs / 1000} s`)),
        options.timeoutMs,
      );
      const onAbort = (): void => fail(aborted(where));
      const cleanup = (): void => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      const request = send(url, { method, headers, agent: tls.agent, auth: tls.auth }, (response) => {
        const status = response.statusCode ?? 0;
        const ok = status >= 200 && status < 300;
        if (ok && !options.wholeBody) {
          settled = true;
          cleanup();
          resolve({ status, stream: response, request });
          return;
        }
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('error', (error) =>
          fail(new KubeApiError(0, 'ConnectionFailed', `${where}: ${error.message}`, { cause: error })),
        );
        response.on('end', () => {
          if (settled) return;
          const body = Buffer.concat(chunks);
          if (ok) {
            settled = true;
            cleanup();
            resolve({ status, body });
          } else {
            fail(statusError(where, status, body));
          }
        });
      });
      request.on('error', (error) =>
        fail(new KubeApiError(0, 'ConnectionFailed', `${where}: ${error.message}`, { cause: error })),
      );
      request.end(payload);
    });
  }
}

/** The error for a non-2xx answer: the Status object's reason and message when the body is one. */
export function statusError(where: string, status: number, body: Buffer): KubeApiError {
  const text = body.toString('utf8');
  let reason = REASONS[status] ?? `HTTP${status}`;
  let message = `${where}: HTTP ${status}${text.trim() ? `: ${text.trim().slice(0, 500)}` : ''}`;
  try {
    const parsed = JSON.parse(text) as { kind?: unknown; reason?: unknown; message?: unknown };
    if (parsed && typeof parsed === 'object') {
      if (typeof parsed.reason === 'string' && parsed.reason) reason = parsed.reason;
      if (typeof parsed.message === 'string' && parsed.message) message = parsed.message;
    }
  } catch {
    // Not a Status (a proxy's HTML page, plain text): the raw text is the message.
  }
  return new KubeApiError(status, reason, message);
}

function aborted(where: string): KubeApiError {
  return new KubeApiError(0, 'Aborted', `${where}: aborted`);
}

export function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
