import { describe, expect, it } from 'vitest';
import {
  artifactPathProblem,
  compileArtifactPatterns,
  normalizePattern,
  resolveLinkTarget,
} from './workspace-files.js';

const matches = (patterns: string[], path: string) =>
  compileArtifactPatterns(patterns).set.match(path) !== -1;

describe('artifact patterns', () => {
  it('match like shell globs, with ** across directories', () => {
    expect(matches(['*.tgz'], 'app.tgz')).toBe(true);
    expect(matches(['*.tgz'], 'dist/app.tgz')).toBe(false);
    expect(matches(['**/*.tgz'], 'dist/app.tgz')).toBe(true);
    expect(matches(['**/*.tgz'], 'app.tgz')).toBe(true);
    expect(matches(['reports/**/*.xml'], 'reports/a.xml')).toBe(true);
    expect(matches(['reports/**/*.xml'], 'reports/x/y/a.xml')).toBe(true);
    expect(matches(['reports/**/*.xml'], 'other/reports/a.xml')).toBe(false);
    expect(matches(['file?.txt'], 'file1.txt')).toBe(true);
    expect(matches(['file?.txt'], 'file10.txt')).toBe(false);
    expect(matches(['[ab].txt'], 'b.txt')).toBe(true);
    expect(matches(['[!ab].txt'], 'b.txt')).toBe(false);
    expect(matches(['[!ab].txt'], 'c.txt')).toBe(true);
    expect(matches(['{dist,build}/*.js'], 'build/x.js')).toBe(true);
    expect(matches(['{dist,build}/*.js'], 'src/x.js')).toBe(false);
    expect(matches(['a\\*b'], 'a*b')).toBe(true);
    expect(matches(['a\\*b'], 'axb')).toBe(false);
    expect(matches(['with space/*'], 'with space/f')).toBe(true);
    expect(matches(['*.(js)'], 'a.(js)')).toBe(true);
    expect(matches(['ünï/*.txt'], 'ünï/ç.txt')).toBe(true);
  });

  it('match a backtracking-bait glob against a long name in linear time (ReDoS)', () => {
    // With JavaScript's RegExp this held the event loop for over 20 s; RE2 answers at once.
    // The bound is generous (a busy CI machine), the attack's cost was exponential.
    const name = 'a'.repeat(60);
    const started = performance.now();
    expect(matches(['*a*a*a*a*a*a*a*a*b'], name)).toBe(false);
    expect(matches(['**/*a*a*a*a*a*a*a*a*b'], `x/${name}`)).toBe(false);
    expect(matches(['*a*a*a*a*a*a*a*a*b'], `${name}b`)).toBe(true);
    expect(performance.now() - started).toBeLessThan(2_000);
  });

  it('take everything below a directory a pattern names', () => {
    expect(matches(['dist'], 'dist/js/main.js')).toBe(true);
    expect(matches(['dist'], 'distribution/x')).toBe(false);
    expect(matches(['dist/*'], 'dist/js/main.js')).toBe(true);
    // Paths that are not workspace paths end the walk up instead of looping at "/".
    expect(matches(['dist'], '/etc/passwd')).toBe(false);
    expect(matches(['dist'], '../x')).toBe(false);
  });

  it('report the top-level entries they can reach, or undefined for a leading wildcard', () => {
    expect(compileArtifactPatterns(['dist/**', 'reports/*.xml', 'app.tgz']).set.topLevel).toEqual([
      'app.tgz',
      'dist',
      'reports',
    ]);
    expect(compileArtifactPatterns(['dist/**', '*.log']).set.topLevel).toBeUndefined();
    expect(compileArtifactPatterns(['{a,b}/x']).set.topLevel).toEqual(['a', 'b']);
  });

  it('know which patterns run through a path', () => {
    const { set } = compileArtifactPatterns(['out/passwd', 'out/deep/*.txt', 'other']);
    expect(set.through('out')).toEqual([0, 1]);
    expect(set.through('out/deep')).toEqual([1]);
    expect(set.through('other')).toEqual([]);
  });

  it('refuse absolute paths and .., saying why', () => {
    const { problems } = compileArtifactPatterns([
      '/etc/passwd',
      '../x',
      'a/../../b',
      'C:\\win',
      '',
      './',
      'ok/*.txt',
      '{a,../b}',
    ]);
    expect(problems.map((p) => p.pattern)).toEqual([
      '/etc/passwd',
      '../x',
      'a/../../b',
      'C:\\win',
      '',
      './',
      '{a,../b}',
    ]);
    expect(problems[0]!.reason).toMatch(/absolute/);
    expect(problems[1]!.reason).toMatch(/\.\./);
    expect(problems[6]!.reason).toMatch(/\.\./);
    expect(normalizePattern('./dist//app.tgz/')).toEqual({ pattern: 'dist/app.tgz' });
  });

  it('check artifact paths found in a workspace', () => {
    expect(artifactPathProblem('dist/app.tgz')).toBeUndefined();
    expect(artifactPathProblem('a\\b')).toMatch(/backslash/);
    expect(artifactPathProblem('a/../b')).toMatch(/segment/);
    expect(artifactPathProblem('/x')).toMatch(/absolute/);
  });

  it('resolve symlink targets lexically, refusing what leaves the workspace', () => {
    expect(resolveLinkTarget('dist/link', 'app.tgz', '/workspace')).toBe('dist/app.tgz');
    expect(resolveLinkTarget('dist/link', '../root.txt', '/workspace')).toBe('root.txt');
    expect(resolveLinkTarget('dist/link', '../../etc/passwd', '/workspace')).toBeUndefined();
    expect(resolveLinkTarget('dist/link', '/etc/passwd', '/workspace')).toBeUndefined();
    expect(resolveLinkTarget('dist/link', '/workspace/dist/a', '/workspace')).toBe('dist/a');
    expect(resolveLinkTarget('dist/link', '/workspace-other/a', '/workspace')).toBeUndefined();
    expect(resolveLinkTarget('link', '.', '/workspace')).toBe('');
  });
});
