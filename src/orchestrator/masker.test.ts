import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LineSplitter, MAX_LINE_LENGTH } from '../executors/lines.js';
import { LocalExecutor } from '../executors/local/local-executor.js';
import type { OutputStream } from '../executors/types.js';
import { compilePipeline } from '../pipeline/index.js';
import { MASK, createMasker, maskingSink } from './masker.js';
import { runPipeline } from './run-pipeline.js';
import type { LogLine } from './types.js';

const TOK = 'tokValue-9c1e77a0b3';
// eslint-disable-next-line no-control-regex -- escape sequences are what it matches
const ESCAPES = /(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-Z\\-_]/g;
const stripEscapes = (text: string) => text.replace(ESCAPES, '');

/** Output bytes through the real splitter and the masking sink: the stored lines of stdout. */
function stored(secrets: string[], chunks: Buffer[], maxLineLength = MAX_LINE_LENGTH): string[] {
  const lines: string[] = [];
  const sink = maskingSink(createMasker(secrets), (_stream, text) => lines.push(text));
  const splitter = new LineSplitter((text, continues) => sink.line('stdout', text, continues), {
    maxLineLength,
  });
  for (const chunk of chunks) splitter.write(chunk);
  splitter.flush();
  sink.end();
  return lines;
}

describe('masking', () => {
  it('masks a secret cut in two by the 64 KiB piece cap', () => {
    const lines = stored([TOK], [Buffer.from(`${'x'.repeat(65_530)}${TOK}\n`)]);
    expect(lines.join('')).toBe(`${'x'.repeat(65_530)}${MASK}`);
    expect(lines.every((l) => l.length <= MAX_LINE_LENGTH)).toBe(true);
  });

  it('masks a secret with colour codes inside it, escapes and all', () => {
    // What `echo "$TOK" | grep --color=always Value` prints.
    const coloured = TOK.replace('Value', '\x1b[01;31m\x1b[KValue\x1b[m\x1b[K');
    expect(createMasker([TOK])(`got ${coloured}!`)).toBe(`got ${MASK}!`);
    expect(createMasker([TOK])(`\x1b[32m${TOK}\x1b[0m`)).toBe(`\x1b[32m${MASK}\x1b[0m`);
    expect(createMasker([TOK])(`\x1b]8;;http://x\x07tok\x1b]8;;\x07Value-9c1e77a0b3`)).toBe(
      `\x1b]8;;http://x\x07${MASK}`,
    );
  });

  it('masks overlapping values as one span', () => {
    expect(createMasker(['abcdef', 'defghi'])('<abcdefghi>')).toBe(`<${MASK}>`);
    expect(createMasker(['abcdef', 'defghi'])('<abc\x1b[1mdefghi>')).toBe(`<${MASK}>`);
  });

  it('property: the stored text, escapes removed, never contains the secret however it is split and coloured', () => {
    const alphabet = fc.constantFrom(...'abcxyz019-_ .*é🚀'.match(/./gu)!);
    const escape = fc.constantFrom(
      '\x1b[31m',
      '\x1b[01;31m\x1b[K',
      '\x1b[m',
      '\x1b]8;;u\x07',
      '\x9b1m',
      '\x1bM',
    );
    const text = (max: number) => fc.array(alphabet, { maxLength: max }).map((cs) => cs.join(''));
    fc.assert(
      fc.property(
        text(12).filter((s) => s.trim().length >= 3 && s.replace(/\*/g, '') !== '' && s === s.trim()),
        text(40),
        text(40),
        fc.array(fc.tuple(fc.nat(), escape), { maxLength: 4 }),
        fc.array(fc.integer({ min: 1, max: 9 }), { minLength: 1, maxLength: 5 }),
        fc.integer({ min: 2, max: 12 }),
        (secret, before, after, escapes, chunkSizes, cap) => {
          // The secret with escapes put between its characters (never inside a character).
          const chars = [...secret];
          for (const [at, esc] of escapes) chars.splice(at % (chars.length + 1), 0, esc);
          const output = Buffer.from(`${before}${chars.join('')}${after}\n${secret}\n`);
          const chunks: Buffer[] = [];
          for (let i = 0, k = 0; i < output.length; k++) {
            const n = chunkSizes[k % chunkSizes.length]!;
            chunks.push(output.subarray(i, i + n));
            i += n;
          }
          const lines = stored([secret], chunks, cap);
          // Pieces of one line joined, lines apart: as a reader of the log sees them. A mask is
          // asterisks, like some secrets' ends: it counts as a mask, never as part of a value
          // (`ba` + mask is not the secret `ba*` shown).
          expect(stripEscapes(lines.join('')).replaceAll(MASK, '\0')).not.toContain(secret);
        },
      ),
      { numRuns: 500, interruptAfterTimeLimit: 20_000 },
    );
  });
});

describe('masking through the real local executor', () => {
  let tmpRoot: string;
  beforeAll(async () => {
    tmpRoot = await mkdtemp(join(tmpdir(), 'slipway-mask-cut-'));
  });
  afterAll(async () => {
    await rm(tmpRoot, { recursive: true, force: true });
  });

  it('masks a secret split by the line cap and one coloured by grep', async () => {
    const source = `
steps:
  - name: leak
    env:
      TOK: { from_secret: TOK }
    commands:
      - head -c 65530 /dev/zero | tr '\\0' x; printf '%s\\n' "$TOK"
      - echo "$TOK" | grep --color=always Value
`;
    const compiled = compilePipeline({
      file: '.slipway.yml',
      source,
      context: {
        buildId: 'mask-cut',
        buildNumber: 1,
        project: 'acme/mask',
        branch: 'main',
        commit: 'abc',
        event: 'push',
        workspace: tmpRoot,
      },
    });
    if (!compiled.ok) throw new Error(JSON.stringify(compiled.errors));
    const executor = new LocalExecutor({ tmpRoot });
    const lines: LogLine[] = [];
    const result = await runPipeline(
      compiled.plan,
      {
        buildId: `mask-cut-${Date.now()}`,
        buildNumber: 1,
        project: 'acme/mask',
        branch: 'main',
        commit: 'abc',
        event: 'push',
        workspace: executor.workspacePath('x'),
      },
      executor,
      {
        secrets: { get: (name) => Promise.resolve(name === 'TOK' ? TOK : undefined) },
        observer: { stepLog: (_stage, _step, line) => lines.push(line) },
      },
    );
    expect(result.status, JSON.stringify(result)).toBe('success');
    const out = (stream: OutputStream) => lines.filter((l) => l.stream === stream).map((l) => l.text);
    const all = out('stdout').join('\n');
    expect(stripEscapes(all)).not.toContain(TOK);
    for (const half of [TOK.slice(0, 6), TOK.slice(-6)]) expect(all).not.toContain(half);
    expect(out('stdout').at(-1)).toBe(MASK);
    expect(out('stdout').slice(0, -1).join('')).toBe(`${'x'.repeat(65_530)}${MASK}`);
  });
});
