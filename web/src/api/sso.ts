import { API_PREFIX } from '../../../src/contract/api.js';

/** Single sign-on with the company's identity provider, when the server has it configured. */
export interface SsoMethod {
  /** Where the browser goes to sign in (`/auth/oidc/login`); the server takes it from there. */
  loginPath: string;
  /** The identity provider's origin, shown on the button. */
  issuer: string;
}

/**
 * How this server signs people in besides tokens: null when it has no single sign-on (or is
 * an older server without the route). Asked without credentials: the route is public.
 */
export async function ssoMethod(signal?: AbortSignal): Promise<SsoMethod | null> {
  try {
    const response = await fetch(`${API_PREFIX}/auth/methods`, {
      headers: { accept: 'application/json' },
      ...(signal !== undefined ? { signal } : {}),
    });
    if (!response.ok) return null;
    const body = (await response.json()) as { oidc?: SsoMethod | null };
    return body.oidc ?? null;
  } catch {
    return null;
  }
}

/** The sign-in link, bringing the browser back to the page it is on. */
export function ssoHref(method: SsoMethod, location: { pathname: string; search: string }): string {
  return `${method.loginPath}?return_to=${encodeURIComponent(location.pathname + location.search)}`;
}
