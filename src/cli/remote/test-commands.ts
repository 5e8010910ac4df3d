import { Option, type Command } from 'commander';
import { formatDuration } from '../../contract/duration.js';
import type { BuildTests, ProjectTests } from '../../contract/tests.js';
import { testLabel } from '../../contract/tests-api.js';
import { EXIT, UsageError } from '../errors.js';
import { apiAction, client, plainTable, remote, type CommandIo } from './command-kit.js';
import { parseBuildNumber, parseSlug } from './commands.js';

interface Flags {
  server?: string;
  token?: string;
  output?: string;
  builds?: string;
  limit?: string;
  full?: boolean;
}

/**
 * `slipway tests <owner/name> <number>`: a build's test totals and its failed, errored and
 * flaky tests with their messages (`--full`: with their output). Without a number: the
 * project's tests that failed or were flaky in its last builds. Exit 0 when it printed.
 */
export function registerTestCommands(
  program: Command,
  exit: (code: number) => void,
  io: CommandIo = { stdout: process.stdout, stderr: process.stderr },
): void {
  const action = apiAction(exit, io.stderr);
  remote(
    program
      .command('tests')
      .description("a build's test report (totals and failures), or a project's most-failing tests")
      .argument('<owner/name>')
      .argument('[number]', 'build number; without it, the tests that failed in the last builds')
      .option('--full', "print each failed test's output too")
      .option('--builds <n>', 'without a number: how many of the latest builds to look at (default 20)')
      .option('--limit <n>', 'rows at most (default 50)')
      .addOption(
        new Option('-o, --output <format>', 'output format').choices(['text', 'json']).default('text'),
      ),
  ).action(
    action(async (slugArg: string, numberArg: string | undefined, flags: Flags) => {
      const slug = parseSlug(slugArg);
      const api = client(flags);
      const limit = flags.limit === undefined ? undefined : positive('--limit', flags.limit);
      if (numberArg === undefined) {
        const builds = flags.builds === undefined ? undefined : positive('--builds', flags.builds);
        const tests = await api.projectTests(slug, {
          ...(builds !== undefined ? { builds } : {}),
          ...(limit !== undefined ? { limit } : {}),
        });
        io.stdout.write(
          flags.output === 'json' ? JSON.stringify(tests, null, 2) + '\n' : projectText(slug, tests),
        );
        return EXIT.ok;
      }
      const build = await api.getProjectBuild(slug, parseBuildNumber(numberArg));
      const tests = await api.buildTests(build.id, limit);
      if (flags.output === 'json') io.stdout.write(JSON.stringify(tests, null, 2) + '\n');
      else io.stdout.write(buildText(`${slug} #${build.number}`, tests, flags.full === true));
      return EXIT.ok;
    }),
  );
}

function positive(flag: string, text: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1)
    throw new UsageError(`${flag} "${text}": expected a whole number of at least 1`);
  return n;
}

/** `12 tests, 1 failed, 1 error, 2 skipped, 1 flaky in 3.2s`. */
export function totalsLine(t: BuildTests['totals']): string {
  const parts = [`${t.tests} ${t.tests === 1 ? 'test' : 'tests'}`, `${t.failures} failed`];
  if (t.errors > 0) parts.push(`${t.errors} ${t.errors === 1 ? 'error' : 'errors'}`);
  if (t.skipped > 0) parts.push(`${t.skipped} skipped`);
  if (t.flaky > 0) parts.push(`${t.flaky} flaky`);
  return `${parts.join(', ')} in ${formatDuration(t.timeMs)}`;
}

export function buildText(title: string, tests: BuildTests, full: boolean): string {
  if (tests.steps.length === 0) return `${title}: no test reports\n`;
  const lines = [`${title}: ${totalsLine(tests.totals)}`];
  for (const s of tests.steps) {
    lines.push(`  ${s.step}: ${totalsLine(s)}${s.attempt > 1 ? ` (attempt ${s.attempt})` : ''}`);
    for (const p of s.problems) lines.push(`    ! ${p}`);
  }
  for (const c of tests.failed) {
    const mark = c.flaky ? 'FLAKY' : c.status === 'error' ? 'ERROR' : 'FAIL';
    lines.push('', `${mark}  ${testLabel(c)}  [${c.step}]${c.file ? `  ${c.file}` : ''}`);
    if (c.message) lines.push(...c.message.split('\n').map((l) => `      ${l}`));
    if (full && c.output) lines.push(...c.output.split('\n').map((l) => `    | ${l}`));
  }
  if (tests.more) lines.push('', `(more failed tests than listed: --limit or -o json for more)`);
  return lines.join('\n') + '\n';
}

function projectText(slug: string, tests: ProjectTests): string {
  if (tests.tests.length === 0) return `${slug}: no test failed in the last ${tests.builds} builds\n`;
  const rows = [['FAILED', 'FLAKY', 'RUNS', 'LAST', 'TEST']];
  for (const t of tests.tests) {
    const name = [t.suite, t.classname, t.name]
      .filter((s, i, all) => s !== '' && all.indexOf(s) === i)
      .join(' › ');
    rows.push([String(t.failures), String(t.flaky), String(t.runs), `#${t.lastBuild}`, name]);
  }
  return `${slug}: tests that failed in the last ${tests.builds} builds\n` + plainTable(rows);
}
