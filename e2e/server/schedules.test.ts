import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Schedule } from '../../src/contract/schedules.js';
import type { BuildDetail } from '../../src/server/api/dto.js';
import { openDatabase } from '../../src/store/index.js';
import { TestRepo } from '../../src/server/testing/git-repo.js';
import { runCli } from '../cli-helpers.js';
import { launchBrowser, signIn } from '../web/harness.js';
import { buildFinished, cleanup, ServerProcess, waitFor, type Api } from './server-harness.js';

const PIPELINE = `stages:
  - name: nightly
    when: { event: [cron] }
    steps: [{ name: soak, commands: ["echo event=$SLIPWAY_EVENT"] }]
  - name: on-push
    when: { event: [push] }
    steps: [{ name: ship, commands: ["echo pushed"] }]
`;

/**
 * Schedules through a real `slipway server` process (local executor, SQLite): added and
 * listed with the CLI, a bad expression refused naming its field; then the server is stopped,
 * ten ticks of an every-minute schedule are "missed" (its next tick moved ten minutes into the
 * past in the database, as a server down for ten minutes leaves it), and the restarted server
 * starts exactly one build for them, event `cron`, whose cron stage runs and push stage is
 * skipped. `--schedule-interval 1h`: only the start-up pass runs during the test, so the count
 * cannot be blurred by a real minute passing.
 */
describe('slipway server: schedules', () => {
  let server: ServerProcess;
  let api: Api;
  let repo: TestRepo;
  const cli = (...args: string[]) =>
    runCli(['schedules', ...args], {
      cwd: tmpdir(),
      env: { SLIPWAY_SERVER: server.url, SLIPWAY_TOKEN: server.token },
    });

  beforeAll(async () => {
    repo = await TestRepo.create({ '.slipway.yml': PIPELINE });
    server = await ServerProcess.start({ executor: 'local', args: ['--schedule-interval', '1h'] });
    api = server.api();
    await api.ok('POST', '/projects', { slug: 'acme/web', repoUrl: repo.url });
  });
  afterAll(async () => {
    await cleanup();
    if (repo !== undefined) await rm(repo.dir, { recursive: true, force: true });
  });

  it('CLI: add, list, refuse a bad expression naming the field', async () => {
    const added = await cli('add', 'acme/web', '*', '*', '*', '*', '*', '--name', 'minutely');
    expect(added, added.stderr).toMatchObject({ code: 0 });
    expect(added.stdout).toMatch(
      /^schedule 1 of acme\/web added: "\* \* \* \* \*" \(UTC\) on main, next \d{4}-\d\d-\d\d \d\d:\d\d UTC\n$/,
    );
    const bad = await cli('add', 'acme/web', '0 25 * * *');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('body.cron: field 2 (hour) "25" at column 3: out of range; allowed: 0-23');
    expect(bad.stderr).not.toMatch(/\n\s+at /);
    const list = await cli('list', 'acme/web');
    expect(list, list.stderr).toMatchObject({ code: 0 });
    expect(list.stdout).toMatch(
      /^ID\s+NAME\s+BRANCH\s+CRON\s+TIME ZONE\s+ENABLED\s+NEXT \(UTC\)\s+LAST BUILD\n1\s+minutely\s+main\s+\* \* \* \* \*\s+UTC\s+yes\s+\S+ \S+\s+-\n$/,
    );
  });

  it('ticks missed while the server was down start one build at start-up, event cron', async () => {
    await server.stop();
    const missedSince = Math.floor(Date.now() / 60_000) * 60_000 - 10 * 60_000;
    const db = openDatabase(`sqlite:${join(server.options.dataDir, 'slipway.db')}`);
    try {
      await db.updateTable('schedules').set({ next_run_at: missedSince }).where('id', '=', 1).execute();
    } finally {
      await db.destroy();
    }
    server = await server.restart();
    api = server.api();
    const [build] = await waitFor('the schedule to start a build', async () => {
      const builds = await api.allBuilds('acme/web');
      return builds.length > 0 ? builds : undefined;
    });
    expect(build).toMatchObject({
      event: 'cron',
      trigger: 'schedule',
      triggeredBy: 'schedule #1 "minutely"',
    });
    const done = await buildFinished(api, build!.id);
    expect(done.status).toBe('success');
    const detail: BuildDetail = await api.build(build!.id);
    expect(detail.stages.map((s) => [s.name, s.status])).toEqual([
      ['nightly', 'success'],
      ['on-push', 'skipped'],
    ]);
    expect((await api.storedLog(build!.id)).map((l) => l.text)).toContain('event=cron');
    // One build for the ten missed ticks; the next tick counts from the start-up.
    expect(await api.allBuilds('acme/web')).toHaveLength(1);
    const [schedule] = await api.ok<Schedule[]>('GET', '/projects/acme/web/schedules');
    expect(schedule).toMatchObject({
      lastRunAt: new Date(missedSince).toISOString(),
      lastBuild: { id: build!.id, number: build!.number, status: 'success' },
    });
    expect(Date.parse(schedule!.nextRunAt!)).toBeGreaterThan(missedSince + 10 * 60_000);

    const off = await cli('disable', 'acme/web', '1');
    expect(off, off.stderr).toMatchObject({
      code: 0,
      stdout: 'schedule 1 of acme/web disabled: "* * * * *" (UTC) on main, disabled\n',
    });
    const removed = await cli('rm', 'acme/web', '1');
    expect(removed.stdout).toBe('schedule 1 of acme/web removed\n');
  });

  it("web UI: the project page lists schedules, shows a bad expression in the server's words, adds one", async () => {
    const browser = await launchBrowser();
    try {
      const { page } = browser;
      await page.goto(`${server.url}/projects/acme/web`);
      await signIn(page, server.token);
      const section = page.getByRole('region', { name: 'Schedules' });
      await section.getByText('No schedules.').waitFor();
      await section.getByRole('button', { name: 'Add schedule' }).click();
      await section.getByLabel(/^Cron/).fill('0 3 * 13 *');
      await section.getByLabel('Time zone').fill('Europe/Berlin');
      await section.getByRole('button', { name: 'Add', exact: true }).click();
      await section
        .getByText('body.cron: field 4 (month) "13" at column 7: out of range; allowed: 1-12 or JAN-DEC')
        .waitFor();
      await section.getByLabel(/^Cron/).fill('0 3 * 12 *');
      await section.getByLabel('Name (optional)').fill('december');
      await section.getByRole('button', { name: 'Add', exact: true }).click();
      const row = section.getByRole('listitem').filter({ hasText: 'december' });
      await row.getByText('(Europe/Berlin) on main').waitFor();
      await row.getByRole('button', { name: 'Disable' }).click();
      await row.getByText('disabled').waitFor();
      const [schedule] = await api.ok<Schedule[]>('GET', '/projects/acme/web/schedules');
      expect(schedule).toMatchObject({
        name: 'december',
        cron: '0 3 * 12 *',
        timezone: 'Europe/Berlin',
        enabled: false,
      });
    } finally {
      await browser.close();
    }
  });
});
