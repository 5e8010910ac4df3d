import { useEffect, useState, type FormEvent } from 'react';
import { ApiError } from '../api/client';
import { useSignIn } from '../api/session';
import { ssoHref, ssoMethod, type SsoMethod } from '../api/sso';
import { Logo } from '../components/Logo';
import { useTitle } from '../lib/title';

/**
 * Asks for an API token and trades it for a session cookie (`POST /session`): the browser
 * stays signed in, in every tab, until it is closed or signs out.
 */
export function SignInPage() {
  useTitle('Sign in');
  const { signIn, endedBecause } = useSignIn();
  const [token, setToken] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [sso, setSso] = useState<SsoMethod | null>(null);

  useEffect(() => {
    const abort = new AbortController();
    void ssoMethod(abort.signal).then(setSso);
    return () => abort.abort();
  }, []);

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    const value = token.trim();
    if (value === '') {
      setError('Paste a token first.');
      return;
    }
    setBusy(true);
    setError(null);
    try {
      await signIn(value);
    } catch (e) {
      if (e instanceof ApiError && e.status === 401) {
        setError('That token is not valid: it is wrong, revoked, or incomplete. Check it and try again.');
      } else if (e instanceof ApiError) {
        setError(`The server refused to sign you in: ${e.message}`);
      } else {
        setError(
          e instanceof Error ? `Could not reach the server: ${e.message}` : 'Could not reach the server.',
        );
      }
    } finally {
      setBusy(false);
    }
  };

  return (
    <main id="main" className="sign-in">
      <form onSubmit={(e) => void submit(e)} className="card" aria-labelledby="sign-in-title">
        <h1 id="sign-in-title">
          <Logo /> Slipway
        </h1>
        {sso !== null && (
          <>
            <a className="button primary sso" href={ssoHref(sso, window.location)}>
              Sign in with single sign-on
            </a>
            <p className="hint">With your account at {sso.issuer}, or with an API token below.</p>
          </>
        )}
        <p className="muted">
          Sign in with an API token. You stay signed in until you close the browser or sign out.
        </p>
        {endedBecause !== null && error === null && (
          <p className="note note-warn" role="status">
            {endedBecause}
          </p>
        )}
        <label htmlFor="token">Token</label>
        <input
          id="token"
          name="token"
          type="password"
          autoComplete="off"
          spellCheck={false}
          value={token}
          onChange={(e) => setToken(e.target.value)}
          aria-invalid={error !== null}
          aria-describedby={error !== null ? 'token-error' : 'token-help'}
          autoFocus
        />
        <p id="token-help" className="hint">
          The server prints the first admin token when it starts; admins create more under Tokens.
        </p>
        {error !== null && (
          <p id="token-error" className="note note-error" role="alert">
            {error}
          </p>
        )}
        <button type="submit" className="primary" disabled={busy}>
          {busy ? 'Checking…' : 'Sign in'}
        </button>
      </form>
    </main>
  );
}
