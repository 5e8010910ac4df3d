import { describe, expect, it } from 'vitest';
import { whyStageSkipped } from './when.js';

describe('whyStageSkipped: when.branch', () => {
  const push = (branch: string) => ({ branch, event: 'push' as const });

  it('matches the whole branch name', () => {
    expect(whyStageSkipped({ branch: 'main|release/.*' }, push('release/2'), 'success')).toBeUndefined();
    expect(whyStageSkipped({ branch: 'main|release/.*' }, push('mainline'), 'success')).toEqual({
      code: 'when',
      message: 'skipped: branch "mainline" does not match "main|release/.*"',
    });
  });

  it('(a+)+ against thirty a and a b: skipped at once (RegExp backtracked for over a minute)', () => {
    const started = performance.now();
    const why = whyStageSkipped({ branch: '(a+)+' }, push(`${'a'.repeat(30)}b`), 'success');
    expect(why?.message).toBe(`skipped: branch "${'a'.repeat(30)}b" does not match "(a+)+"`);
    // Generous for a machine at load 8; before the fix this call did not return for a minute.
    expect(performance.now() - started).toBeLessThan(2_000);
  });

  it('a branch longer than the matcher takes is skipped, saying why', () => {
    const long = 'a'.repeat(300);
    expect(whyStageSkipped({ branch: 'a+' }, push(long), 'success')).toEqual({
      code: 'when',
      message: `skipped: branch "${long}" not matched against "a+": 300 characters is longer than the 255 a pattern is matched against`,
    });
  });
});
