import type { IncomingHttpHeaders } from 'node:http';

export type ForgeName = 'github' | 'gitlab' | 'gitea' | 'generic';

/** What a delivery asks of Slipway, once the forge's payload is understood. */
export type HookAction =
  | { kind: 'ping' }
  | { kind: 'ignore'; why: string }
  | {
      kind: 'build';
      event: 'push' | 'tag' | 'pull_request';
      /** The branch (for a tag: the tag; for a pull request: its head branch). */
      branch: string;
      tag?: string;
      commit?: string;
      /** Pull requests: whether the head repository is not the project's repository. */
      fork?: boolean;
      /** Who caused it, as the forge names them. */
      sender?: string;
    };

/** Result of checking a delivery's signature or token against a secret. */
export type Verdict = 'ok' | 'missing' | 'bad';

/**
 * One forge's webhook dialect: where the event name, delivery id and signature travel, which
 * repository a payload is about, and what it asks for. `parse` throws `HookError` (400) for
 * payloads that lack what the event must carry.
 */
export interface ForgeAdapter {
  readonly name: ForgeName;
  eventName(headers: IncomingHttpHeaders, payload: unknown): string | undefined;
  deliveryId(headers: IncomingHttpHeaders): string | undefined;
  /** Clone/web URLs of the repository the delivery is about; empty if the payload names none. */
  repoUrls(payload: unknown): string[];
  verify(headers: IncomingHttpHeaders, raw: Buffer, secret: string): Promise<Verdict>;
  parse(event: string, payload: unknown): HookAction;
}
