import { describe, expect, it } from 'vitest';
import { engineTimeoutFrom, parseEngineTimeout } from './engine-timeout.js';
import { UsageError } from './errors.js';

describe('parseEngineTimeout', () => {
  it('reads plain digits as milliseconds and units as durations', () => {
    expect(parseEngineTimeout('2500')).toBe(2_500);
    expect(parseEngineTimeout('2500ms')).toBe(2_500);
    expect(parseEngineTimeout('30s')).toBe(30_000);
    expect(parseEngineTimeout('2m')).toBe(120_000);
    expect(parseEngineTimeout('1m30s')).toBe(90_000);
    expect(parseEngineTimeout(' 45s ')).toBe(45_000);
  });

  it('rejects nonsense, zero and more than an hour', () => {
    for (const bad of ['', 'soon', '0', '0s', '-5', '1.5s', '2h', '30 s', 's'])
      expect(parseEngineTimeout(bad), bad).toBeUndefined();
    expect(parseEngineTimeout('1h')).toBe(3_600_000);
  });
});

describe('engineTimeoutFrom', () => {
  it('takes the option over the environment, and nothing when neither is set', () => {
    expect(engineTimeoutFrom('5s', { SLIPWAY_ENGINE_TIMEOUT: '1000' })).toEqual({ engineTimeoutMs: 5_000 });
    expect(engineTimeoutFrom(undefined, { SLIPWAY_ENGINE_TIMEOUT: '1000' })).toEqual({
      engineTimeoutMs: 1_000,
    });
    expect(engineTimeoutFrom(undefined, {})).toEqual({});
    expect(engineTimeoutFrom(undefined, { SLIPWAY_ENGINE_TIMEOUT: '' })).toEqual({});
  });

  it('names the source of a bad value', () => {
    expect(() => engineTimeoutFrom('later', {})).toThrow(UsageError);
    expect(() => engineTimeoutFrom('later', {})).toThrow('--engine-timeout "later": expected milliseconds');
    expect(() => engineTimeoutFrom(undefined, { SLIPWAY_ENGINE_TIMEOUT: 'x' })).toThrow(
      'SLIPWAY_ENGINE_TIMEOUT "x": expected milliseconds',
    );
  });
});
