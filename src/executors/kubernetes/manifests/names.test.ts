import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  buildAnnotations,
  buildLabels,
  DNS_LABEL,
  LABEL_VALUE,
  labelValue,
  podName,
  serviceContainerName,
  stepContainerName,
} from './index.js';

/** Anything a user can type: unicode, slashes, spaces, very long. */
const anyText = fc.oneof(
  fc.string({ unit: 'grapheme', maxLength: 300 }),
  fc.string({ unit: 'binary', maxLength: 80 }),
  fc.constantFrom(
    'feature/' + 'ÄÖ…'.repeat(100),
    'a/b',
    'build/compile & test',
    '-',
    '',
    '.',
    'A'.repeat(64),
  ),
);

function isName(name: string): boolean {
  return name.length <= 63 && DNS_LABEL.test(name);
}

describe('names and labels are valid whatever the input', () => {
  it('pod, step and service container names are DNS-1123 labels ≤ 63', () => {
    fc.assert(
      fc.property(anyText, fc.nat(10_000), (text, attempt) => {
        expect(isName(podName(text))).toBe(true);
        expect(isName(stepContainerName(text, attempt))).toBe(true);
        expect(isName(serviceContainerName(text))).toBe(true);
      }),
    );
  });

  it('label values are valid, ≤ 63, and annotations keep the full value', () => {
    fc.assert(
      fc.property(anyText, anyText, anyText, anyText, (installation, buildId, project, branch) => {
        const labels = buildLabels(installation, { buildId, project, branch });
        for (const value of Object.values(labels)) {
          expect(value.length).toBeLessThanOrEqual(63);
          expect(value).toMatch(LABEL_VALUE);
        }
        expect(buildAnnotations(installation, { buildId, project, branch })).toEqual({
          'slipway.dev/installation': installation,
          'slipway.dev/project': project,
          'slipway.dev/build': buildId,
          'slipway.dev/branch': branch,
        });
      }),
    );
  });

  it('different inputs give different names and label values (hash suffix)', () => {
    fc.assert(
      fc.property(anyText, anyText, fc.nat(50), fc.nat(50), (a, b, i, j) => {
        fc.pre(a !== b);
        expect(podName(a)).not.toBe(podName(b));
        expect(serviceContainerName(a)).not.toBe(serviceContainerName(b));
        expect(labelValue(a)).not.toBe(labelValue(b));
        expect(stepContainerName(a, i)).not.toBe(stepContainerName(b, i));
        if (i !== j) expect(stepContainerName(a, i)).not.toBe(stepContainerName(a, j));
      }),
    );
    // Inputs that sanitize alike.
    expect(podName('Build_1')).not.toBe(podName('build-1'));
    expect(stepContainerName('a/b', 1)).not.toBe(stepContainerName('a b', 1));
  });

  it('names are stable and readable', () => {
    expect(podName('01JB8ZK')).toMatch(/^slipway-01jb8zk-[0-9a-f]{8}$/);
    expect(stepContainerName('build/compile & test', 2)).toMatch(/^step-build-compile-test-[0-9a-f]{6}-2$/);
    expect(stepContainerName('build/compile & test', 2)).toBe(stepContainerName('build/compile & test', 2));
    expect(serviceContainerName('redis')).toBe('svc-redis');
    expect(labelValue('main')).toBe('main');
    expect(labelValue('feature/x')).toMatch(/^feature-x-[0-9a-f]{8}$/);
    expect(() => stepContainerName('a', -1)).toThrow('a step attempt must be a whole number ≥ 0, not -1');
  });
});
