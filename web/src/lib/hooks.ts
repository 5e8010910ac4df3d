import { useCallback, useEffect, useLayoutEffect, useRef, useState } from 'react';

export interface Loaded<T> {
  data: T | undefined;
  error: unknown;
  loading: boolean;
  /** Loads again now (after an action changed what is shown). */
  reload: () => void;
}

/** How often to load again: a fixed period, or one chosen from the last answer (undefined: stop). */
export type PollInterval<T> = number | ((data: T) => number | undefined);

/** Retry period after a failed load when the period depends on the answer. */
const RETRY_MS = 5000;

/**
 * Loads `load()` and, while `intervalMs` says so, again after that period — but only while
 * the tab is visible, never two requests at once, and never after unmount. `key` names the
 * query: when it changes, only the new query's answer is shown, never a stale one.
 */
export function usePoll<T>(
  load: (signal: AbortSignal) => Promise<T>,
  key: string,
  intervalMs?: PollInterval<T>,
): Loaded<T> {
  const [state, setState] = useState<{ key: string; data: T | undefined; error: unknown }>({
    key,
    data: undefined,
    error: undefined,
  });
  const [tick, setTick] = useState(0);
  const latest = useRef({ load, intervalMs });
  useLayoutEffect(() => {
    latest.current = { load, intervalMs };
  });

  useEffect(() => {
    const controller = new AbortController();
    let timer: ReturnType<typeof setTimeout> | undefined;
    let stopped = false;
    let first = true;
    const run = async () => {
      let next: number | undefined;
      const { load: loadNow, intervalMs: period } = latest.current;
      if (first || document.visibilityState === 'visible') {
        first = false;
        try {
          const data = await loadNow(controller.signal);
          if (stopped) return;
          setState({ key, data, error: undefined });
          next = typeof period === 'function' ? period(data) : period;
        } catch (error) {
          if (stopped) return;
          setState((previous) => ({ key, data: previous.key === key ? previous.data : undefined, error }));
          next = typeof period === 'function' ? RETRY_MS : period;
        }
      } else {
        next = typeof period === 'function' ? RETRY_MS : period;
      }
      if (!stopped && next !== undefined) timer = setTimeout(() => void run(), next);
    };
    void run();
    return () => {
      stopped = true;
      controller.abort();
      if (timer !== undefined) clearTimeout(timer);
    };
  }, [key, tick]);

  const reload = useCallback(() => setTick((t) => t + 1), []);
  const current = state.key === key;
  return {
    data: current ? state.data : undefined,
    error: current ? state.error : undefined,
    loading: !current || (state.data === undefined && state.error === undefined),
    reload,
  };
}

/** The current time, refreshed every `intervalMs` while `active` (for running durations). */
export function useNow(active: boolean, intervalMs = 1000): number {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    if (!active) return;
    const timer = setInterval(() => setNow(Date.now()), intervalMs);
    return () => clearInterval(timer);
  }, [active, intervalMs]);
  return now;
}

/** Runs an action (a button's), tracking `busy` and the error to show next to it. */
export function useAction(): {
  busy: boolean;
  error: unknown;
  run: (action: () => Promise<unknown>) => Promise<boolean>;
  clear: () => void;
} {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(undefined);
  const run = useCallback(async (action: () => Promise<unknown>) => {
    setBusy(true);
    setError(undefined);
    try {
      await action();
      return true;
    } catch (e) {
      setError(e);
      return false;
    } finally {
      setBusy(false);
    }
  }, []);
  const clear = useCallback(() => setError(undefined), []);
  return { busy, error, run, clear };
}
