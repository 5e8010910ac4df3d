import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { parseJUnit } from './junit.js';
import { ReportParser } from './parse-pool.js';

// The built worker (the sources have none): `npx tsc -p tsconfig.build.json` first.
const workerUrl = new URL('../../dist/reports/parse-worker.js', import.meta.url);

/** `n` cases, one in ten failed, names with a character of two bytes (é) and of four (𝄞). */
function report(n: number): string {
  const cases = Array.from({ length: n }, (_, i) =>
    i % 10 === 0
      ? `<testcase classname="c" name="té𝄞st ${i}"><failure message="m${i}">trace ${i}</failure></testcase>`
      : `<testcase classname="c" name="té𝄞st ${i}" time="0.001"/>`,
  );
  return `<testsuite name="s">${cases.join('')}</testsuite>`;
}

/** The bytes in pieces of `size`, each a buffer of its own (characters split between them). */
function pieces(bytes: Uint8Array, size: number): Uint8Array[] {
  const parts: Uint8Array[] = [];
  for (let at = 0; at < bytes.length; at += size) parts.push(bytes.slice(at, at + size));
  return parts;
}

describe('ReportParser in its worker thread', () => {
  const parser = new ReportParser({ workerUrl });
  afterAll(() => parser.close());

  it('takes a file in pieces and gives every kept case of a big report, in order', async () => {
    expect(existsSync(fileURLToPath(workerUrl)), 'build first: npx tsc -p tsconfig.build.json').toBe(true);
    expect(parser.offThread).toBe(true);
    const text = report(1_234);
    const parts = pieces(new TextEncoder().encode(text), 4_099);
    const parsed = await parser.parse(parts, {
      maxCases: 1_201,
      maxMessageChars: 100,
      maxOutputChars: 100,
      maxNameChars: 100,
    });
    // Given up to the worker: nothing was copied into one buffer on this thread.
    expect(parts.every((p) => p.byteLength === 0)).toBe(true);
    const inThread = parseJUnit(text, {
      maxCases: 1_201,
      maxMessageChars: 100,
      maxOutputChars: 100,
      maxNameChars: 100,
    });
    expect(parsed).toEqual(inThread);
    expect(parsed.cases).toHaveLength(1_201);
    expect(parsed.cases.at(-1)?.name).toBe('té𝄞st 1200');
    expect(parsed.totals.tests).toBe(1_234);
    // A next parse goes on in the same worker.
    expect((await parser.parse(new TextEncoder().encode(report(3)))).cases).toHaveLength(3);
  });

  it('copies a view on part of a buffer: the rest of the buffer stays with its owner', async () => {
    const bytes = new TextEncoder().encode(`${report(2)}REST`);
    expect((await parser.parse(bytes.subarray(0, bytes.length - 4))).cases).toHaveLength(2);
    expect(new TextDecoder().decode(bytes.subarray(-4))).toBe('REST');
  });
});
