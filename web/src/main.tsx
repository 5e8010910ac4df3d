import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { ApiClient } from './api/client';
import { SessionProvider, storedToken } from './api/session';
import type { TokenInfo } from './api/types';
import { App } from './App';
import './styles.css';

/** Checks a token kept from earlier in this tab before the first render (no sign-in flash). */
async function restore(): Promise<{ token: string; me: TokenInfo } | null> {
  const token = storedToken();
  if (token === null) return null;
  try {
    return { token, me: await new ApiClient(token).whoami() };
  } catch {
    sessionStorage.removeItem('slipway.token');
    return null;
  }
}

const root = createRoot(document.getElementById('root')!);
void restore().then((initial) =>
  root.render(
    <StrictMode>
      <SessionProvider initial={initial}>
        <App />
      </SessionProvider>
    </StrictMode>,
  ),
);
