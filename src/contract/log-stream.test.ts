import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { fromLogBatch, toLogBatch, type BatchableLine } from './log-stream.js';

const line = fc.record({
  gap: fc.integer({ min: 1, max: 3 }),
  stage: fc.constantFrom('', 'test'),
  step: fc.constantFrom('unit', 'lint', 'service:db'),
  stream: fc.constantFrom('stdout' as const, 'stderr' as const, 'system' as const),
  n: fc.integer({ min: 1, max: 5 }),
  dt: fc.integer({ min: -5, max: 2000 }),
  text: fc.string(),
});

describe('LogBatch (the `lines` event)', () => {
  it('property: a batch decodes to exactly the lines it was made of, whatever they are', () => {
    fc.assert(
      fc.property(fc.array(line, { maxLength: 60 }), (drafts) => {
        let seq = 0;
        let time = 1_700_000_000_000;
        const lines: BatchableLine[] = drafts.map((d) => {
          seq += d.gap;
          time += d.dt;
          return { seq, stage: d.stage, step: d.step, stream: d.stream, n: d.n, time, text: d.text };
        });
        const decoded = fromLogBatch(JSON.parse(JSON.stringify(toLogBatch(lines))));
        expect(decoded).toEqual(lines.map((l) => ({ ...l, time: new Date(l.time).toISOString() })));
      }),
    );
  });

  it('writes the columns of consecutive lines of one step and stream once', () => {
    const lines = [1, 2, 3].map((seq) => ({
      seq,
      stage: 's',
      step: 't',
      stream: 'stdout' as const,
      n: seq,
      time: 1000 + seq,
      text: `line ${seq}`,
    }));
    expect(toLogBatch(lines)).toEqual({
      runs: [
        {
          seq: 1,
          stage: 's',
          step: 't',
          stream: 'stdout',
          n: 1,
          time: 1001,
          dt: [0, 1, 1],
          text: ['line 1', 'line 2', 'line 3'],
        },
      ],
    });
  });

  it('rejects data that is not a batch with a plain message', () => {
    expect(() => fromLogBatch(null)).toThrow('malformed `lines` event: no runs');
    expect(() => fromLogBatch({ runs: [{ seq: 1, text: ['a'] }] })).toThrow(
      'malformed `lines` event: a run lacks a field',
    );
  });
});
