import type { ReactNode } from 'react';
import { describeError } from '../api/client';
import { useSession } from '../api/session';

/** An error next to what caused it, in words a person can act on (401/403 spelt out). */
export function ErrorNote({ error }: { error: unknown }) {
  const { me } = useSession();
  if (error === undefined || error === null) return null;
  return (
    <p className="note note-error" role="alert">
      {describeError(error, me.role)}
    </p>
  );
}

export function Loading({ what }: { what: string }) {
  return (
    <p className="note muted" aria-live="polite">
      Loading {what}…
    </p>
  );
}

export function Empty({ children }: { children: ReactNode }) {
  return <p className="note muted">{children}</p>;
}
