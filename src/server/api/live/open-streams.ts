/** Who a live stream was opened by: the token, and the browser session if it came by cookie. */
export interface StreamOwner {
  tokenId: number;
  /** The session id (cookie) the stream was authenticated with, if any. */
  sessionId?: string;
}

/**
 * The live streams (SSE connections) open in this process, by the credential that opened
 * them. A stream is authenticated once, when it starts; without this it would outlive the
 * revocation of its token or the end of its session for as long as the build runs. Revoking
 * a token or ending a session closes its streams at once; a client that reconnects is asked
 * for its credential again and refused.
 */
export class OpenStreams {
  private readonly byToken = new Map<number, Set<() => void>>();
  private readonly bySession = new Map<string, Set<() => void>>();

  /** Registers a stream; `close` ends it. Returns the function that unregisters it (call on close). */
  add(owner: StreamOwner, close: () => void): () => void {
    const remove: (() => void)[] = [addTo(this.byToken, owner.tokenId, close)];
    if (owner.sessionId !== undefined) remove.push(addTo(this.bySession, owner.sessionId, close));
    return () => {
      for (const r of remove) r();
    };
  }

  /** Closes every stream opened with the token, or with a session it opened. Returns how many. */
  closeToken(tokenId: number): number {
    return closeAll(this.byToken, tokenId);
  }

  /** Closes every stream opened with the session. Returns how many. */
  closeSession(sessionId: string): number {
    return closeAll(this.bySession, sessionId);
  }

  /** Streams open right now (diagnostics, tests). */
  get size(): number {
    let n = 0;
    for (const set of this.byToken.values()) n += set.size;
    return n;
  }
}

function addTo<K>(map: Map<K, Set<() => void>>, key: K, close: () => void): () => void {
  let set = map.get(key);
  if (set === undefined) {
    set = new Set();
    map.set(key, set);
  }
  set.add(close);
  const owned = set;
  return () => {
    owned.delete(close);
    if (owned.size === 0 && map.get(key) === owned) map.delete(key);
  };
}

function closeAll<K>(map: Map<K, Set<() => void>>, key: K): number {
  const set = map.get(key);
  if (set === undefined) return 0;
  map.delete(key);
  for (const close of [...set]) close();
  return set.size;
}
