import type { FastifyRequest } from 'fastify';

/** Name of the web UI's session cookie. */
export const SESSION_COOKIE = 'slipway_session';

/**
 * The value of cookie `name` in a `Cookie` request header (RFC 6265 §5.4: pairs separated by
 * `;`, the name up to the first `=`, optional double quotes around the value), or undefined.
 * The first of several same-named cookies wins, as browsers send the most specific path first.
 * Written here rather than taken from `cookie`/`@fastify/cookie`, whose current majors need
 * Node 22.
 */
export function readCookie(header: string | undefined, name: string): string | undefined {
  if (header === undefined) return undefined;
  for (const pair of header.split(';')) {
    const eq = pair.indexOf('=');
    if (eq < 0 || pair.slice(0, eq).trim() !== name) continue;
    let value = pair.slice(eq + 1).trim();
    if (value.length >= 2 && value.startsWith('"') && value.endsWith('"')) value = value.slice(1, -1);
    return value;
  }
  return undefined;
}

/**
 * `Set-Cookie` for a session: HttpOnly (page scripts never see it), SameSite=Strict (no other
 * site's page can make the browser send it), Path=/ (the UI's pages and the API), and neither
 * Max-Age nor Expires, so it ends with the browser session. `Secure` when the browser talks
 * https to us or to the proxy in front.
 */
export function sessionCookie(value: string, secure: boolean): string {
  return `${SESSION_COOKIE}=${value}; Path=/; HttpOnly; SameSite=Strict${secure ? '; Secure' : ''}`;
}

/** `Set-Cookie` that makes the browser drop the session cookie (sign-out). */
export function clearedSessionCookie(secure: boolean): string {
  return `${SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0${secure ? '; Secure' : ''}`;
}

/** The session id a request carries in its cookie, if any. */
export function sessionIdOf(request: FastifyRequest): string | undefined {
  const value = readCookie(request.headers.cookie, SESSION_COOKIE);
  return value === undefined || value === '' ? undefined : value;
}

/**
 * Whether the browser reached us over https: directly, or through a proxy that says so
 * (`X-Forwarded-Proto`, `Forwarded: proto=`). Trusting the proxy header without knowing the
 * proxy is safe here: it can only add `Secure`, which narrows where the cookie is sent.
 */
export function cameOverHttps(request: FastifyRequest): boolean {
  if (request.protocol === 'https') return true;
  const xfp = request.headers['x-forwarded-proto'];
  const first = (Array.isArray(xfp) ? xfp[0] : xfp)?.split(',')[0]?.trim().toLowerCase();
  if (first === 'https') return true;
  const forwarded = request.headers.forwarded;
  return (
    forwarded !== undefined && /(^|[;,\s])proto="?https"?(\s*[;,]|$)/i.test(forwarded.split(',')[0] ?? '')
  );
}
