import { describe, expect, it } from 'vitest';
import { substitute, type Resolution } from './template.js';

const vars: Record<string, string> = { A: 'alpha', B: 'beta', EMPTY: '' };
const lookup = (name: string): Resolution =>
  name in vars
    ? { kind: 'value', value: vars[name] ?? '' }
    : name === 'SECRET'
      ? { kind: 'secret' }
      : { kind: 'unknown' };

describe('substitute', () => {
  it.each([
    ['${A}', 'alpha'],
    ['x${A}y${B}z', 'xalphaybetaz'],
    ['${EMPTY}', ''],
    ['no variables', 'no variables'],
    ['$${A}', '${A}'],
    ['echo $${A} and ${A}', 'echo ${A} and alpha'],
    ['$A $HOME', '$A $HOME'],
    ['echo $$', 'echo $$'],
    ['$$$${A}', '$$${A}'],
    ['$$${A}', '$$alpha'],
    ["awk '{print $1}'", "awk '{print $1}'"],
    ['price: 5$', 'price: 5$'],
    ['{${A}}', '{alpha}'],
  ])('%s → %s', (input, expected) => {
    expect(substitute(input, lookup)).toEqual({ value: expected, problems: [] });
  });

  it('reports unknown names with their index and leaves them as written', () => {
    expect(substitute('a ${NOPE} b ${A} ${NOPE2}', lookup)).toEqual({
      value: 'a ${NOPE} b alpha ${NOPE2}',
      problems: [
        { kind: 'unknown', index: 2, text: '${NOPE}', name: 'NOPE' },
        { kind: 'unknown', index: 17, text: '${NOPE2}', name: 'NOPE2' },
      ],
    });
  });

  it.each([['${A:-x}'], ['${}'], ['${1A}'], ['${A B}'], ['${A']])('%s is an invalid reference', (input) => {
    const { problems } = substitute(input, lookup);
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatchObject({ kind: 'invalid', index: 0 });
  });

  it('reports secrets and cycles as the lookup says', () => {
    expect(substitute('${SECRET}', lookup).problems[0]?.kind).toBe('secret');
    const cyclic = substitute('${X}', () => ({ kind: 'cycle', chain: ['X', 'Y', 'X'] }));
    expect(cyclic.problems[0]).toMatchObject({ kind: 'cycle', chain: ['X', 'Y', 'X'] });
  });

  it('does not call the lookup for escaped references', () => {
    const seen: string[] = [];
    substitute('$${A} ${B}', (name) => (seen.push(name), { kind: 'value', value: '' }));
    expect(seen).toEqual(['B']);
  });
});
