import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Build, TokenInfo } from '../../src/server/api/dto.js';
import {
  api,
  gitRepo,
  launchBrowser,
  scratchForSteps,
  screenshots,
  signIn,
  startSlipway,
  waitForBuild,
  type Browser,
  type Slipway,
} from './harness.js';

const SLOW = 180_000;

/**
 * The web UI in real headless Chromium against a real `slipway server` running real builds
 * (local executor) of a real git repository. The tests run in order and share one server and
 * one browser tab, like a person going through the pages.
 */
describe('web UI (Chromium, real server and builds)', () => {
  let server: Slipway;
  let browser: Browser;
  let page: Page;
  let repo: { url: string; dir: string };
  let scratch: string;
  let go: string;

  beforeAll(async () => {
    server = await startSlipway();
    scratch = await scratchForSteps('slipway-web-go-');
    go = join(scratch, 'go');
    repo = await gitRepo({
      main: {
        '.slipway.yml': [
          'stages:',
          '  - name: build',
          '    steps:',
          '      - name: compile',
          '        commands:',
          `          - printf '\\033[32mcompiling\\033[0m module \\033[1mone\\033[0m\\n'`,
          '          - echo "waiting for the go signal"',
          `          - while [ ! -f ${go} ]; do sleep 0.1; done`,
          '          - for i in 1 2 3; do echo "tick $i"; done',
          `          - 'echo "warning: something to stderr" >&2'`,
          '      - name: lint',
          '        commands: ["echo lint ok"]',
          '  - name: deploy',
          '    approval: true',
          '    steps:',
          '      - name: ship',
          '        commands: ["echo shipped"]',
          '',
        ].join('\n'),
      },
      slow: {
        '.slipway.yml': 'steps:\n  - name: wait\n    commands: ["echo sleeping", "sleep 600"]\n',
      },
    });
    browser = await launchBrowser();
    page = browser.page;
    page.setDefaultTimeout(60_000);
  }, SLOW);

  afterAll(async () => {
    await browser?.close();
    await server?.stop();
    if (repo !== undefined) await rm(repo.dir, { recursive: true, force: true });
    if (scratch !== undefined) await rm(scratch, { recursive: true, force: true });
  }, SLOW);

  const alert = () => page.getByRole('alert').first();

  it(
    'refuses a wrong token with a clear message, then signs in',
    async () => {
      await page.goto(server.url);
      await screenshots(page, '01-sign-in');
      await signIn(page, 'slw_not_a_real_token');
      await alert().waitFor();
      expect(await alert().textContent()).toContain('That token is not valid');
      await screenshots(page, '02-sign-in-wrong-token');

      await signIn(page, server.token);
      await page.getByRole('heading', { name: 'Projects' }).waitFor();
      await page.getByText('No projects yet').waitFor();
    },
    SLOW,
  );

  it(
    'creates a project (admin)',
    async () => {
      await page.getByRole('link', { name: 'New project' }).click();
      await page.getByLabel('Name (owner/name)').fill('acme/web');
      await page.getByLabel('Repository URL').fill(repo.url);
      await screenshots(page, '03-project-new');
      await page.getByRole('button', { name: 'Create project' }).click();
      await page.getByRole('heading', { name: 'acme/web' }).waitFor();
      expect(new URL(page.url()).pathname).toBe('/projects/acme/web');
      await page.getByText('No builds yet').waitFor();
    },
    SLOW,
  );

  it(
    'triggers a build and shows its log live, in colour',
    async () => {
      await page.getByRole('button', { name: 'Trigger build' }).click();
      expect(await page.locator('#trigger-branch').inputValue()).toBe('main');
      await page.getByRole('button', { name: 'Start build' }).click();
      await page.waitForURL('**/projects/acme/web/builds/1');

      // The step is still running (it waits for the test), yet its first lines are on screen.
      await page.locator('.line', { hasText: 'waiting for the go signal' }).waitFor();
      await page.locator('[data-step="build/compile"][data-status="running"]').waitFor();
      const green = page.locator('.line .fg2', { hasText: 'compiling' });
      expect(await green.count()).toBe(1);
      expect(await page.locator('.line .b', { hasText: 'one' }).count()).toBe(1);
      expect(await page.locator('.line', { hasText: 'tick 1' }).count()).toBe(0);
      await screenshots(page, '04-build-running');

      await writeFile(go, '');
      await page.locator('.line', { hasText: 'tick 3' }).waitFor();
      await page.locator('[data-stage="build"][data-status="success"]').waitFor();
    },
    SLOW,
  );

  it(
    'approves a waiting stage',
    async () => {
      const approve = page.getByRole('button', { name: 'Approve deploy' });
      await approve.waitFor();
      await page.locator('[data-stage="deploy"][data-status="waiting"]').waitFor();
      await screenshots(page, '05-build-waiting-for-approval');
      await approve.click();
      await page.locator('[data-stage="deploy"][data-status="success"]').waitFor();
      await page.locator('h1 [data-status="success"]').waitFor();
      await page.locator('.line', { hasText: 'shipped' }).waitFor();

      // Jump to the first error: the stderr line, selected and in the URL as a permalink.
      await page.getByRole('button', { name: 'First error' }).click();
      await page.locator('.line.selected', { hasText: 'warning: something to stderr' }).waitFor();
      expect(new URL(page.url()).hash).toMatch(/^#L\d+$/);
      await screenshots(page, '06-build-success');

      // One step's log: numbered from 1, with the raw text to download.
      await page.getByRole('link', { name: /ship/ }).click();
      await page.locator('.line[data-n="1"]', { hasText: 'shipped' }).waitFor();
      const download = page.waitForEvent('download');
      await page.getByRole('button', { name: 'Download raw' }).click();
      expect((await download).suggestedFilename()).toBe('acme_web-1-deploy-ship.log');

      await page.setViewportSize({ width: 390, height: 844 });
      await screenshots(page, '07-build-phone');
      await page.setViewportSize({ width: 1280, height: 900 });
    },
    SLOW,
  );

  it(
    'shows the queue with why builds wait, and cancels builds from the list',
    async () => {
      const first = await api<Build>(server, 'POST', '/projects/acme/web/builds', { branch: 'slow' });
      await waitForBuild(server, first.id, (b) => b.status === 'running');
      const second = await api<Build>(server, 'POST', '/projects/acme/web/builds', { branch: 'slow' });

      await page.getByRole('link', { name: 'Queue' }).click();
      await page.getByRole('heading', { name: 'Queue' }).waitFor();
      await page.locator('[data-waiting-for="branch_lock"]', { hasText: 'holds the branch lock' }).waitFor();
      await screenshots(page, '08-queue');

      // The queued build's own page says what it waits for.
      await page.getByRole('link', { name: `acme/web #${second.number}` }).click();
      await page.getByTestId('queued-reason').filter({ hasText: 'holds the branch lock' }).waitFor();

      await page.getByRole('link', { name: 'acme/web', exact: true }).click();
      await page.locator(`.build-row[data-build="${first.number}"][data-status="running"]`).waitFor();
      await screenshots(page, '09-builds');
      await page.setViewportSize({ width: 390, height: 844 });
      await screenshots(page, '09-builds-phone');
      await page.setViewportSize({ width: 1280, height: 900 });
      await page.getByRole('button', { name: `Cancel acme/web #${second.number}` }).click();
      await page.locator(`.build-row[data-build="${second.number}"][data-status="cancelled"]`).waitFor();
      await page.getByRole('button', { name: `Cancel acme/web #${first.number}` }).click();
      await page.locator(`.build-row[data-build="${first.number}"][data-status="cancelled"]`).waitFor();
      expect((await api<Build>(server, 'GET', `/builds/${first.id}`)).status).toBe('cancelled');

      // Filters live in the URL.
      await page.getByLabel('Status').selectOption('cancelled');
      await page.waitForURL('**/projects/acme/web?status=cancelled');
      await page.locator(`.build-row[data-build="${second.number}"]`).waitFor();
      await page.locator('.build-row[data-build="1"]').waitFor({ state: 'detached' });
      expect(await page.locator('.build-row').count()).toBe(2);
      await page.getByLabel('Status').selectOption('');
      await page.locator('#filter-branch').fill('main');
      await page.locator('#filter-branch').press('Enter');
      await page.waitForURL('**/projects/acme/web?branch=main');
      await page.locator('.build-row[data-build="1"]').waitFor();
      await page.locator(`.build-row[data-build="${first.number}"]`).waitFor({ state: 'detached' });
      expect(await page.locator('.build-row').count()).toBe(1);
    },
    SLOW,
  );

  it(
    'manages tokens (shown once) and explains a missing role',
    async () => {
      await page.getByRole('link', { name: 'Tokens' }).click();
      await page.getByLabel('Name').fill('ci-viewer');
      await page.getByLabel('Role').selectOption('viewer');
      await page.getByRole('button', { name: 'Create token' }).click();
      const secret = (await page.getByTestId('new-token').textContent())?.trim() ?? '';
      expect(secret).toMatch(/^slw_/);
      await page.locator('.tokens .row', { hasText: 'ci-viewer' }).waitFor();
      await screenshots(page, '10-tokens');
      await page.getByRole('button', { name: 'Done' }).click();
      expect(await page.getByTestId('new-token').count()).toBe(0);

      await page.getByRole('button', { name: 'Sign out' }).click();
      await signIn(page, secret);
      await page.getByRole('heading', { name: 'Projects' }).waitFor();
      expect(await page.getByRole('link', { name: 'New project' }).count()).toBe(0);
      await page.getByRole('link', { name: 'acme/web' }).click();
      await page.getByRole('button', { name: 'Trigger build' }).click();
      await page.getByRole('button', { name: 'Start build' }).click();
      await alert().waitFor();
      expect(await alert().textContent()).toBe('Your token has the viewer role; this needs member.');

      await page.getByRole('button', { name: 'Sign out' }).click();
      await signIn(page, server.token);
      await page.getByRole('link', { name: 'Tokens' }).click();
      await page.getByRole('button', { name: 'Revoke ci-viewer' }).click();
      await page.getByRole('button', { name: 'Revoke ci-viewer for good' }).click();
      await page.locator('.tokens .row', { hasText: 'ci-viewer' }).waitFor({ state: 'detached' });
      const tokens = await api<TokenInfo[]>(server, 'GET', '/tokens');
      expect(tokens.map((t) => t.name)).not.toContain('ci-viewer');
    },
    SLOW,
  );

  it(
    'lists projects with their last build',
    async () => {
      await page.getByRole('link', { name: 'Projects' }).click();
      const row = page.locator('.projects .row', { hasText: 'acme/web' });
      await row.locator('[data-status="cancelled"]').waitFor();
      expect(await row.locator('.branch').textContent()).toBe('slow');
      await screenshots(page, '11-projects');
    },
    SLOW,
  );
});
