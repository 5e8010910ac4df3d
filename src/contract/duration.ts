/**
 * How long something took, for people. Two spellings, one function:
 * - `compact` (the default; CLI, messages, build reasons): `350ms`, `4s`, `1m30s`, `1h5s`;
 * - `wide` (the web UI, notifications): `350ms`, `4.2s`, `3m 07s`, `1h 02m` — short and of a
 *   stable width in a column.
 * Negative values count as 0.
 */
export function formatDuration(ms: number, style: 'compact' | 'wide' = 'compact'): string {
  const value = Math.max(0, ms);
  if (value < 1000) return `${Math.round(value)}ms`;
  if (style === 'wide' && value < 10_000) return `${(value / 1000).toFixed(1)}s`;
  const total = Math.round(value / 1000);
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = total % 60;
  if (style === 'wide') {
    if (h > 0) return `${h}h ${String(m).padStart(2, '0')}m`;
    if (m > 0) return `${m}m ${String(s).padStart(2, '0')}s`;
    return `${s}s`;
  }
  return [h ? `${h}h` : '', m ? `${m}m` : '', s ? `${s}s` : ''].join('') || '0s';
}
