import { describe, expect, it } from 'vitest';
import { estimate, workingTime } from '../../web/src/pages/build/eta.js';

// The build page's ETA (pure code of the web UI, run here under Node).
describe('web build page: ETA leaves out time spent waiting for approval', () => {
  const t = (s: number) => new Date(Date.UTC(2024, 0, 1, 12, 0, s)).toISOString();
  const at = (s: number) => Date.parse(t(s));
  const approval = (requested: number, resumed: number | null) => ({
    stage: 'deploy',
    decision: 'approved' as const,
    by: 'alice',
    at: t(requested + 1),
    comment: null,
    requestedAt: t(requested),
    resumedAt: resumed === null ? null : t(resumed),
  });

  it('counts only the time at work: 10 s, a 170 s wait for a person and a slot, then 18 s', () => {
    const build = { startedAt: t(0), finishedAt: null, approvals: [approval(10, 180)] };
    expect(workingTime(build, at(198))).toBe(28_000);
    // Average 30 s of work: 2 s left, not "3 min left" (nor "longer than usual").
    expect(estimate(28_000, 30_000)).toEqual({ fraction: 28 / 30, leftMs: 2_000 });
  });

  it('stops the clock while the build still waits, and counts every approval stage', () => {
    const waiting = { startedAt: t(0), finishedAt: null, approvals: [approval(5, 50), approval(60, null)] };
    expect(workingTime(waiting, at(500))).toBe(15_000);
    const done = { startedAt: t(0), finishedAt: t(100), approvals: [approval(5, 50)] };
    expect(workingTime(done, at(999))).toBe(55_000);
  });

  it('without approvals it is the time since the start; before the start, nothing', () => {
    expect(workingTime({ startedAt: t(0), finishedAt: null }, at(42))).toBe(42_000);
    expect(workingTime({ startedAt: null, finishedAt: null, approvals: [] }, at(42))).toBeNull();
    expect(estimate(45_000, 30_000)).toEqual({ fraction: 0.99, leftMs: -15_000 });
  });
});
