import { createContext, useCallback, useContext, useMemo, useState, type ReactNode } from 'react';
import { ApiClient } from './client';
import type { TokenInfo } from './types';

const STORAGE_KEY = 'slipway.token';

/** Who is signed in: the token (kept in sessionStorage: gone with the tab) and what it is. */
export interface Session {
  api: ApiClient;
  me: TokenInfo;
  signOut: (reason?: string) => void;
}

interface SessionState {
  session: Session | null;
  /** Why the last session ended, shown on the sign-in page. */
  endedBecause: string | null;
  signIn: (token: string, me: TokenInfo) => void;
}

const SessionContext = createContext<SessionState | null>(null);

export function storedToken(): string | null {
  try {
    return sessionStorage.getItem(STORAGE_KEY);
  } catch {
    return null;
  }
}

export function SessionProvider({
  initial,
  children,
}: {
  initial: { token: string; me: TokenInfo } | null;
  children: ReactNode;
}) {
  const [signedIn, setSignedIn] = useState(initial);
  const [endedBecause, setEndedBecause] = useState<string | null>(null);

  const signOut = useCallback((reason?: string) => {
    sessionStorage.removeItem(STORAGE_KEY);
    setSignedIn(null);
    setEndedBecause(reason ?? null);
  }, []);

  const signIn = useCallback((token: string, me: TokenInfo) => {
    sessionStorage.setItem(STORAGE_KEY, token);
    setEndedBecause(null);
    setSignedIn({ token, me });
  }, []);

  const value = useMemo<SessionState>(() => {
    const session =
      signedIn === null
        ? null
        : {
            api: new ApiClient(signedIn.token, () =>
              signOut('The server no longer accepts your token (revoked?). Sign in again.'),
            ),
            me: signedIn.me,
            signOut,
          };
    return { session, endedBecause, signIn };
  }, [signedIn, endedBecause, signIn, signOut]);

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
  return me.role === 'admin';
}
