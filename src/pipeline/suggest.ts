/**
 * "Did you mean …?" for unknown keys and step names: typos (edit distance), truncations
 * (prefixes), and the words other CI systems use for the same thing.
 */

/** Keys of GitLab CI, GitHub Actions and Woodpecker that mean one of ours. */
const ALIASES: ReadonlyMap<string, string> = new Map(
  Object.entries({
    script: 'commands',
    run: 'commands',
    cmd: 'commands',
    depends_on: 'needs',
    dependencies: 'needs',
    environment: 'env',
    variables: 'env',
    continue_on_error: 'allow_failure',
    retry: 'retries',
    timeout_minutes: 'timeout',
    jobs: 'steps',
    if: 'when',
    rules: 'when',
    only: 'when',
    manual: 'approval',
    port: 'wait_for',
  }),
);

/**
 * Optimal string alignment distance (Damerau–Levenshtein with adjacent transpositions, each
 * substring edited once): `comands`→`commands` is 1, `nedes`→`needs` is 1.
 */
export function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) =>
    Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)),
  );
  const at = (i: number, j: number): number => d[i]?.[j] ?? Infinity;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let best = Math.min(at(i - 1, j) + 1, at(i, j - 1) + 1, at(i - 1, j - 1) + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1])
        best = Math.min(best, at(i - 2, j - 2) + 1);
      const row = d[i];
      if (row) row[j] = best;
    }
  }
  return at(a.length, b.length);
}

/**
 * The candidate `word` most likely stands for, if any: a known alias, else the closest
 * candidate within distance 2 (and shorter than the word, so "ab" does not become "env"),
 * else a candidate that the word is a prefix of, or that is a prefix of it (at least 3 letters).
 */
export function suggest(word: string, candidates: readonly string[]): string | undefined {
  const w = word.toLowerCase().replaceAll('-', '_');
  const alias = ALIASES.get(w);
  if (alias !== undefined && candidates.includes(alias)) return alias;
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const c of candidates) {
    const dist = editDistance(w, c.toLowerCase());
    if (dist < bestDistance && dist <= 2 && dist < w.length) {
      best = c;
      bestDistance = dist;
    }
  }
  if (best !== undefined) return best;
  if (w.length < 3) return undefined;
  return candidates.find((c) => c.toLowerCase().startsWith(w) || w.startsWith(c.toLowerCase()));
}
