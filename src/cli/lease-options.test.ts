import { describe, expect, it } from 'vitest';
import { UsageError } from './errors.js';
import { leaseSettingsFrom } from './lease-options.js';

describe('leaseSettingsFrom', () => {
  it('defaults to a 30 s lease and a 15 s interval, or half a shorter lease', () => {
    expect(leaseSettingsFrom({}, {})).toEqual({ leaseMs: 30_000, reconcileMs: 15_000 });
    expect(leaseSettingsFrom({ lease: '4s' }, {})).toEqual({ leaseMs: 4_000, reconcileMs: 2_000 });
    expect(leaseSettingsFrom({ lease: '5m' }, {})).toEqual({ leaseMs: 300_000, reconcileMs: 15_000 });
  });

  it('takes the options over the environment', () => {
    const env = { SLIPWAY_LEASE: '1m', SLIPWAY_RECONCILE_INTERVAL: '20s' };
    expect(leaseSettingsFrom({}, env)).toEqual({ leaseMs: 60_000, reconcileMs: 20_000 });
    expect(leaseSettingsFrom({ lease: '4s', reconcileInterval: '1s' }, env)).toEqual({
      leaseMs: 4_000,
      reconcileMs: 1_000,
    });
    expect(leaseSettingsFrom({}, { SLIPWAY_LEASE: ' ', SLIPWAY_RECONCILE_INTERVAL: '' })).toEqual({
      leaseMs: 30_000,
      reconcileMs: 15_000,
    });
  });

  it('refuses what is not a duration, a lease under 2 s, and an interval under 1 s or not under the lease', () => {
    const refused = (options: { lease?: string; reconcileInterval?: string }, env = {}) => {
      try {
        leaseSettingsFrom(options, env);
      } catch (error) {
        expect(error).toBeInstanceOf(UsageError);
        return (error as Error).message;
      }
      throw new Error(`accepted ${JSON.stringify(options)}`);
    };
    expect(refused({ lease: 'soon' })).toBe(
      '--lease "soon": expected a duration such as 30s, 2m or 1m30s (at most 168h)',
    );
    expect(refused({}, { SLIPWAY_RECONCILE_INTERVAL: '-1' })).toBe(
      'SLIPWAY_RECONCILE_INTERVAL "-1": expected a duration such as 30s, 2m or 1m30s (at most 168h)',
    );
    expect(refused({ lease: '1s' })).toBe('--lease "1s": the lease must be at least 2s');
    expect(refused({ lease: '169h' })).toMatch(/^--lease "169h": expected a duration/);
    expect(refused({ reconcileInterval: '0s' })).toBe(
      '--reconcile-interval "0s": the interval must be at least 1s',
    );
    expect(refused({ lease: '4s', reconcileInterval: '4s' })).toBe(
      '--reconcile-interval "4s": the interval must be shorter than the lease (--lease "4s")',
    );
    expect(refused({ reconcileInterval: '30s' })).toBe(
      '--reconcile-interval "30s": the interval must be shorter than the lease (default 30s)',
    );
  });
});
