/** Replacement shown instead of a secret value. */
export const MASK = '********';

/**
 * Secrets shorter than this are not masked: masking a 1–2 character value would blank out
 * ordinary text everywhere and reveal the value by its pattern anyway.
 */
export const MIN_MASKED_LENGTH = 3;

/**
 * Builds a function that masks every secret value in a log line. Output is masked per line
 * (after line splitting), so a value split across two output chunks is still caught, and a
 * multi-line value is masked line by line.
 */
export function createMasker(secretValues: Iterable<string>): (text: string) => string {
  const needles = new Set<string>();
  for (const value of secretValues) {
    for (const part of value.split(/\r?\n/)) {
      const trimmed = part.trim();
      if (trimmed.length >= MIN_MASKED_LENGTH) needles.add(trimmed);
    }
  }
  if (needles.size === 0) return (text) => text;
  // Longest first so a value that contains another is masked whole.
  const ordered = [...needles].sort((a, b) => b.length - a.length);
  return (text) => {
    let out = text;
    for (const needle of ordered) {
      if (out.includes(needle)) out = out.split(needle).join(MASK);
    }
    return out;
  };
}
