import { describe, expect, it } from 'vitest';
import { editDistance, suggest } from './suggest.js';

const STEP_KEYS = [
  'name',
  'image',
  'commands',
  'env',
  'timeout',
  'retries',
  'allow_failure',
  'needs',
  'artifacts',
];

describe('editDistance', () => {
  it.each([
    ['', '', 0],
    ['abc', '', 3],
    ['commands', 'commands', 0],
    ['comands', 'commands', 1],
    ['commnads', 'commands', 1], // transposition counts once
    ['nedes', 'needs', 1],
    ['kitten', 'sitting', 3],
  ])('%s ↔ %s = %i', (a, b, d) => {
    expect(editDistance(a, b)).toBe(d);
    expect(editDistance(b, a)).toBe(d);
  });
});

describe('suggest', () => {
  it.each([
    ['comands', 'commands'],
    ['Commands', 'commands'],
    ['commnads', 'commands'],
    ['imgae', 'image'],
    ['img', 'image'],
    ['retry', 'retries'],
    ['allow-failure', 'allow_failure'],
    ['allow_fail', 'allow_failure'],
    ['artifact', 'artifacts'],
    ['need', 'needs'],
    ['script', 'commands'],
    ['depends_on', 'needs'],
    ['environment', 'env'],
    ['variables', 'env'],
    ['timeout-minutes', 'timeout'],
  ])('%s → %s', (word, expected) => {
    expect(suggest(word, STEP_KEYS)).toBe(expected);
  });

  it.each([['color'], ['x'], ['ab'], ['services'], ['constructor'], ['toString']])('%s → nothing', (word) => {
    expect(suggest(word, STEP_KEYS)).toBeUndefined();
  });

  it('suggests an alias only where its target is allowed', () => {
    expect(suggest('script', ['name', 'image'])).toBeUndefined();
  });
});
