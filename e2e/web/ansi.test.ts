import { describe, expect, it } from 'vitest';
import { findAll, markRanges, parseAnsi, stripAnsi } from '../../web/src/log/ansi.js';

// The log viewer's SGR parser (pure code of the web UI, run here under Node).
describe('web log viewer: ANSI parser', () => {
  const seg = (text: string, fg: number | null = null, bg: number | null = null, bold = false) => ({
    text,
    fg,
    bg,
    bold,
  });

  it('splits colours, bright colours, backgrounds, bold and reset', () => {
    expect(parseAnsi('\x1b[32mok\x1b[0m plain \x1b[1;91mBAD\x1b[22m thin\x1b[m')).toEqual([
      seg('ok', 2),
      seg(' plain '),
      seg('BAD', 9, null, true),
      seg(' thin', 9),
    ]);
    expect(parseAnsi('\x1b[41;37mbanner\x1b[49m\x1b[39mx')).toEqual([seg('banner', 7, 1), seg('x')]);
    expect(parseAnsi('\x1b[38;5;3m256\x1b[38;2;1;2;3mtrue')).toEqual([seg('256', 3), seg('true', 3)]);
  });

  it('drops other escapes and resolves carriage-return redraws', () => {
    expect(parseAnsi('\x1b[2K\x1b]0;title\x07done')).toEqual([seg('done')]);
    expect(stripAnsi('10%\r50%\r100%\r')).toBe('100%');
    expect(stripAnsi('\x1b[31m<b>&amp;</b>\x1b[0m')).toBe('<b>&amp;</b>');
    expect(parseAnsi('')).toEqual([]);
  });

  it('marks search hits across coloured segments', () => {
    const line = '\x1b[32mfoo\x1b[0mbar foobar';
    const plain = stripAnsi(line);
    expect(findAll(plain, 'ob')).toEqual([2, 9]);
    expect(markRanges(parseAnsi(line), findAll(plain, 'ob'), 2)).toEqual([
      seg('fo', 2),
      { ...seg('o', 2), mark: true },
      { ...seg('b'), mark: true },
      seg('ar fo'),
      { ...seg('ob'), mark: true },
      seg('ar'),
    ]);
  });
});
