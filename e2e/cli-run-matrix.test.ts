import { describe, expect, it } from 'vitest';
import { runCli, workdir } from './cli-helpers.js';

/** A 2×2 matrix with one cell excluded, and a step that needs all of it. */
const PIPELINE = [
  'steps:',
  '  - name: test',
  '    matrix:',
  '      os: [alpine, debian]',
  '      db: [pg, mysql]',
  '      exclude: [{ os: alpine, db: mysql }]',
  '    commands: ["echo cell ${matrix.os} with $MATRIX_DB in $SLIPWAY_STEP"]',
  '  - name: report',
  '    needs: [test]',
  '    commands: ["echo all cells done"]',
  '',
].join('\n');

const CELLS = ['test (os=alpine, db=pg)', 'test (os=debian, db=pg)', 'test (os=debian, db=mysql)'];

describe('slipway run: a matrix step', () => {
  it('runs each cell with its values on the local executor, then what needs them', async () => {
    const dir = await workdir({ '.slipway.yml': PIPELINE });
    const result = await runCli(
      ['run', '--executor', 'local', '--branch', 'main', '--commit', 'abc123', '--project', 'acme/web'],
      { cwd: dir },
    );
    // (stderr has a notice that the directory is not a git work tree)
    expect(result.stderr).not.toMatch(/warning|error/i);
    for (const cell of CELLS) {
      const [, os, db] = /os=(\w+), db=(\w+)/.exec(cell) ?? [];
      expect(result.stdout).toContain(`[default/${cell}] cell ${os} with ${db} in ${cell}`);
    }
    expect(result.stdout).not.toContain('os=alpine, db=mysql');
    const lines = result.stdout.split('\n');
    const report = lines.findIndex((l) => l.includes('all cells done'));
    for (const cell of CELLS) {
      expect(lines.findIndex((l) => l.includes(`[default/${cell}] cell`))).toBeLessThan(report);
    }
    expect(result.code).toBe(0);
  });

  it('slipway validate lists the cells', async () => {
    const dir = await workdir({ '.slipway.yml': PIPELINE });
    const result = await runCli(['validate'], { cwd: dir });
    expect(result.stdout).toBe(['ok', 'default/test: 3 cells', ...CELLS.map((c) => `  ${c}`), ''].join('\n'));
    expect(result.code).toBe(0);
  });

  it('slipway validate refuses a matrix of 10,000 cells at its line and column', async () => {
    const axis = `[${Array.from({ length: 100 }, (_, i) => i).join(', ')}]`;
    const dir = await workdir({
      '.slipway.yml': `steps:\n  - name: test\n    matrix: { a: ${axis}, b: ${axis} }\n    commands: [echo]\n`,
    });
    const result = await runCli(['validate'], { cwd: dir });
    expect(result.stderr).toBe(
      '.slipway.yml:3:13: the matrix of step "test" at steps[0].matrix expands to 10,000 cells; a matrix may expand to at most 256 cells\n',
    );
    expect(result.code).toBe(2);
  });
});
