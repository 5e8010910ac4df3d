import { describe, expect, it } from 'vitest';
import { UsageError } from './errors.js';
import { kubernetesSettings } from './kubernetes-options.js';

describe('kubernetesSettings', () => {
  it('takes the seed and cache restore bounds in bytes', () => {
    expect(kubernetesSettings({ maxSeedBytes: '1048576', maxCacheRestoreBytes: '268435456' })).toMatchObject({
      maxSeedBytes: 1048576,
      maxCacheRestoreBytes: 268435456,
    });
    expect(kubernetesSettings({})).not.toHaveProperty('maxSeedBytes');
  });

  it('refuses a bound that is not a whole number of bytes, naming the flag', () => {
    for (const value of ['64MiB', '0', '-1', '1.5', '']) {
      expect(() => kubernetesSettings({ maxCacheRestoreBytes: value })).toThrow(UsageError);
      expect(() => kubernetesSettings({ maxSeedBytes: value })).toThrow(
        `--max-seed-bytes "${value}": expected a whole number of bytes, 1 or more`,
      );
    }
  });
});
