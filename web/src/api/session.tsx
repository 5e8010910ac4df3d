import { createContext, useCallback, useContext, useMemo, useState, type ReactNode } from 'react';
import { hasRole } from '../../../src/contract/roles.js';
import { ApiClient } from './client';
import type { TokenInfo } from './types';

/** Where older versions kept the token (one tab only); cleared when found. */
const LEGACY_STORAGE_KEY = 'slipway.token';

/**
 * Who is signed in. The proof is the server's session cookie (HttpOnly, for the whole browser
 * session, every tab); the page only knows what the token is, never the token itself.
 */
export interface Session {
  api: ApiClient;
  me: TokenInfo;
  signOut: (reason?: string) => void;
}

interface SessionState {
  session: Session | null;
  /** Why the last session ended, shown on the sign-in page. */
  endedBecause: string | null;
  /** Signs in with a token (the server sets the cookie); rejects with the API's error. */
  signIn: (token: string) => Promise<void>;
}

const SessionContext = createContext<SessionState | null>(null);

/**
 * Who this browser is signed in as, asked of the server before the first render (no sign-in
 * flash): null when it is not (no cookie, or the session ended).
 */
export async function restoreSession(): Promise<TokenInfo | null> {
  try {
    sessionStorage.removeItem(LEGACY_STORAGE_KEY);
  } catch {
    // Storage may be disabled; nothing is kept there any more anyway.
  }
  try {
    return await new ApiClient().whoami();
  } catch {
    return null;
  }
}

export function SessionProvider({ initial, children }: { initial: TokenInfo | null; children: ReactNode }) {
  const [me, setMe] = useState(initial);
  const [endedBecause, setEndedBecause] = useState<string | null>(null);

  const signOut = useCallback((reason?: string) => {
    // Ends the session on the server too (a copied cookie dies with it); the page is signed
    // out whatever the answer, but only once it came: a sign-in started earlier could
    // otherwise see its new cookie dropped by this answer.
    void new ApiClient()
      .signOut()
      .catch(() => undefined)
      .then(() => {
        setMe(null);
        setEndedBecause(reason ?? null);
      });
  }, []);

  const signIn = useCallback(async (token: string) => {
    const who = await new ApiClient().signIn(token);
    setEndedBecause(null);
    setMe(who);
  }, []);

  const value = useMemo<SessionState>(() => {
    const session =
      me === null
        ? null
        : {
            api: new ApiClient(() =>
              signOut(
                'The server ended your session (signed out elsewhere, or the token was revoked). Sign in again.',
              ),
            ),
            me,
            signOut,
          };
    return { session, endedBecause, signIn };
  }, [me, endedBecause, signIn, signOut]);

  return <SessionContext.Provider value={value}>{children}</SessionContext.Provider>;
}

function useSessionState(): SessionState {
  const state = useContext(SessionContext);
  if (state === null) throw new Error('useSession outside <SessionProvider>');
  return state;
}

/** The signed-in session; only used below the sign-in gate, so it is never null there. */
export function useSession(): Session {
  const { session } = useSessionState();
  if (session === null) throw new Error('useSession while signed out');
  return session;
}

export function useSignIn(): Pick<SessionState, 'signIn' | 'endedBecause' | 'session'> {
  return useSessionState();
}

export function useApi(): ApiClient {
  return useSession().api;
}

export function isAdmin(me: TokenInfo): boolean {
  return hasRole(me.role, 'admin');
}
