import { useState, type FormEvent } from 'react';
import { ROLES } from '../../../src/contract/roles.js';
import type { Role, TokenCreated, TokenInfo } from '../api/types';
import { isAdmin, useApi, useSession } from '../api/session';
import { Empty, ErrorNote, Loading } from '../components/Feedback';
import { formatAgo } from '../lib/format';
import { useAction, useNow, usePoll } from '../lib/hooks';
import { useTitle } from '../lib/title';

/** API tokens (admin): who may use Slipway and with which role; a new token is shown once. */
export function TokensPage() {
  useTitle('Tokens');
  const api = useApi();
  const { me } = useSession();
  const tokens = usePoll((signal) => api.listTokens(signal), 'tokens');
  const [created, setCreated] = useState<TokenCreated | null>(null);

  return (
    <section>
      <h1>Tokens</h1>
      {!isAdmin(me) && <p className="note note-warn">Only admins manage tokens.</p>}
      <CreateToken
        onCreated={(token) => {
          setCreated(token);
          tokens.reload();
        }}
      />
      {created !== null && <NewToken token={created} onDismiss={() => setCreated(null)} />}
      <ErrorNote error={tokens.error} />
      {tokens.data === undefined ? (
        tokens.error === undefined && <Loading what="tokens" />
      ) : tokens.data.length === 0 ? (
        <Empty>No tokens.</Empty>
      ) : (
        <TokenList tokens={tokens.data} myId={me.id} onChanged={tokens.reload} />
      )}
    </section>
  );
}

function CreateToken({ onCreated }: { onCreated: (token: TokenCreated) => void }) {
  const api = useApi();
  const [name, setName] = useState('');
  const [role, setRole] = useState<Role>('member');
  const create = useAction();
  const submit = async (event: FormEvent) => {
    event.preventDefault();
    let token: TokenCreated | undefined;
    if (await create.run(async () => (token = await api.createToken({ name: name.trim(), role })))) {
      setName('');
      if (token !== undefined) onCreated(token);
    }
  };
  return (
    <form className="card form inline-form" onSubmit={(e) => void submit(e)} aria-label="Create a token">
      <div className="field">
        <label htmlFor="token-name">Name</label>
        <input
          id="token-name"
          value={name}
          required
          placeholder="ci-bot, alice…"
          onChange={(e) => setName(e.target.value)}
        />
      </div>
      <div className="field">
        <label htmlFor="token-role">Role</label>
        <select
          id="token-role"
          value={role}
          onChange={(e) => setRole(ROLES.find((r) => r === e.target.value) ?? 'viewer')}
        >
          {ROLES.map((r) => (
            <option key={r} value={r}>
              {r}
            </option>
          ))}
        </select>
      </div>
      <button type="submit" className="primary" disabled={create.busy}>
        Create token
      </button>
      <ErrorNote error={create.error} />
    </form>
  );
}

function NewToken({ token, onDismiss }: { token: TokenCreated; onDismiss: () => void }) {
  const [copied, setCopied] = useState(false);
  const copy = () =>
    void navigator.clipboard.writeText(token.token).then(
      () => setCopied(true),
      () => setCopied(false),
    );
  return (
    <div className="card new-token" role="status" aria-live="polite">
      <p>
        <strong>
          Token “{token.name}” ({token.role}) created.
        </strong>{' '}
        Copy it now: it is shown only this once.
      </p>
      <code className="secret" data-testid="new-token">
        {token.token}
      </code>
      <div className="actions">
        <button type="button" onClick={copy}>
          {copied ? 'Copied' : 'Copy'}
        </button>
        <button type="button" onClick={onDismiss}>
          Done
        </button>
      </div>
    </div>
  );
}

function TokenList({
  tokens,
  myId,
  onChanged,
}: {
  tokens: TokenInfo[];
  myId: number;
  onChanged: () => void;
}) {
  const now = useNow(false);
  return (
    <ul className="rows tokens" aria-label="Tokens">
      {tokens.map((token) => (
        <li key={token.id} className="row">
          <span className="token-name">
            {token.name}
            {token.id === myId && <span className="muted"> (this session)</span>}
          </span>
          <span className="role">{token.role}</span>
          <span className="muted">created {formatAgo(token.createdAt, now)}</span>
          <span className="muted">
            {token.lastUsedAt === null ? 'never used' : `used ${formatAgo(token.lastUsedAt, now)}`}
          </span>
          <RevokeButton token={token} onChanged={onChanged} />
        </li>
      ))}
    </ul>
  );
}

function RevokeButton({ token, onChanged }: { token: TokenInfo; onChanged: () => void }) {
  const api = useApi();
  const revoke = useAction();
  const [confirming, setConfirming] = useState(false);
  if (!confirming) {
    return (
      <button
        type="button"
        className="danger"
        onClick={() => setConfirming(true)}
        aria-label={`Revoke ${token.name}`}
      >
        Revoke
      </button>
    );
  }
  return (
    <span className="confirm">
      <button
        type="button"
        className="danger"
        disabled={revoke.busy}
        onClick={() =>
          void revoke.run(async () => {
            await api.revokeToken(token.id);
            onChanged();
          })
        }
      >
        Revoke {token.name} for good
      </button>
      <button type="button" onClick={() => setConfirming(false)}>
        Keep
      </button>
      <ErrorNote error={revoke.error} />
    </span>
  );
}
