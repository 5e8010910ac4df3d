import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Build } from '../../src/server/api/dto.js';
import {
  api,
  gitRepo,
  launchBrowser,
  scratchForSteps,
  signIn,
  startSlipway,
  waitForBuild,
  type Browser,
  type Slipway,
} from './harness.js';

const SLOW = 180_000;

/** The part of the DOM's ValidityState this test reads (the file has no DOM library). */
interface ValidityState {
  patternMismatch: boolean;
}

/** A pipeline with an allowed failure, a retried step, a timed-out allowed step, then the real failure. */
const MIXED = [
  'stages:',
  '  - name: test',
  '    steps:',
  '      - name: lint',
  '        allow_failure: true',
  `        commands: ['echo "lint complains" >&2', 'exit 1']`,
  '      - name: flaky',
  '        retries: 1',
  `        commands: ['if [ -f .tried ]; then echo "second try"; else touch .tried; echo "first try fails"; exit 1; fi']`,
  '      - name: slowpoke',
  '        allow_failure: true',
  '        timeout: 1s',
  '        commands: ["sleep 60"]',
  '  - name: verify',
  '    steps:',
  '      - name: check',
  `        commands: ['echo "checking"', 'echo "real problem" >&2', 'exit 3']`,
  '',
].join('\n');

/**
 * The build page and the project form in real Chromium against a real server and real builds
 * (local executor) of a real git repository.
 */
describe('web UI: build page details and the project form (Chromium)', () => {
  let server: Slipway;
  let browser: Browser;
  let page: Page;
  let repo: { url: string; dir: string };
  let scratch: string;
  let go: string;
  const consoleErrors: string[] = [];

  beforeAll(async () => {
    server = await startSlipway();
    scratch = await scratchForSteps('slipway-web-page-');
    go = join(scratch, 'go');
    repo = await gitRepo({
      main: { '.slipway.yml': MIXED },
      chatty: {
        '.slipway.yml': [
          'steps:',
          '  - name: talk',
          '    commands:',
          '      - for i in $(seq 1 300); do echo "chatter line $i"; done',
          `      - while [ ! -f ${go} ]; do sleep 0.1; done`,
          '',
        ].join('\n'),
      },
    });
    browser = await launchBrowser({ width: 1366, height: 900 });
    page = browser.page;
    page.setDefaultTimeout(60_000);
    page.on('console', (message) => {
      if (message.type() === 'error') consoleErrors.push(message.text());
    });
    page.on('pageerror', (error) => consoleErrors.push(error.message));
    await page.goto(server.url);
    await signIn(page, server.token);
    await page.getByRole('heading', { name: 'Projects' }).waitFor();
  }, SLOW);

  afterAll(async () => {
    await browser?.close();
    await server?.stop();
    if (repo !== undefined) await rm(repo.dir, { recursive: true, force: true });
    if (scratch !== undefined) await rm(scratch, { recursive: true, force: true });
  }, SLOW);

  it(
    'new project form: a valid slug pattern, field errors on their field, executors to choose from',
    async () => {
      await page.getByRole('link', { name: 'New project' }).click();
      await page.getByLabel('Name (owner/name)').waitFor();
      // The executor is a choice among the server's (local only here, docker not configured).
      const executor = page.getByLabel('Executor');
      await executor.locator('option[value="local"]').waitFor({ state: 'attached' });
      expect(await executor.locator('option').allTextContents()).toContain("the server's default (local)");

      // The slug's pattern compiles under the v flag, so the browser checks it.
      await page.getByLabel('Name (owner/name)').fill('acme/-bad');
      const mismatch = await page
        .getByLabel('Name (owner/name)')
        .evaluate((input) => (input as unknown as { validity: ValidityState }).validity.patternMismatch);
      expect(mismatch).toBe(true);
      expect(consoleErrors.filter((e) => /pattern/i.test(e))).toEqual([]);

      // A mistake only the server finds is shown on its field.
      await page.getByLabel('Name (owner/name)').fill('acme/ui');
      await page.getByLabel('Repository URL').fill(repo.url);
      await page.getByLabel('Branch filter (regular expression)').fill('(');
      await page.getByRole('button', { name: 'Create project' }).click();
      const fieldError = page.locator('#branchFilter-error');
      await fieldError.waitFor();
      expect(await fieldError.textContent()).toMatch(/not a valid regular expression/);
      expect(await page.getByLabel('Branch filter (regular expression)').getAttribute('aria-invalid')).toBe(
        'true',
      );

      await page.getByLabel('Branch filter (regular expression)').fill('.*');
      await executor.selectOption('local');
      await page.getByRole('button', { name: 'Create project' }).click();
      await page.getByRole('heading', { name: 'acme/ui' }).waitFor();
      expect(consoleErrors.filter((e) => /pattern/i.test(e))).toEqual([]);
    },
    SLOW,
  );

  it(
    'shows allowed failures, timeouts and attempts for what they are; "First error" goes to the step that failed the build',
    async () => {
      const build = await api<Build>(server, 'POST', '/projects/acme/ui/builds', { branch: 'main' });
      await waitForBuild(server, build.id, (b) => b.status === 'failure', 120_000);
      await page.goto(`${server.url}/projects/acme/ui/builds/${build.number}`);
      await page.locator('h1 [data-status="failure"]').waitFor();
      // The API's word, not "failed".
      expect(await page.locator('h1 .status').textContent()).toBe('✕failure');

      const lint = page.locator('[data-step="test/lint"]');
      expect(await lint.getAttribute('data-allowed')).toBe('true');
      expect(await lint.innerText()).toContain('allowed');
      expect(await lint.locator('.status-allowed').count()).toBe(1);
      expect(await page.locator('[data-step="verify/check"]').getAttribute('data-allowed')).toBeNull();
      expect(await page.locator('#log-step option[value="test/lint"]').textContent()).toBe(
        'test/lint (failure, allowed)',
      );

      const slowpoke = page.locator('[data-step="test/slowpoke"]');
      expect(await slowpoke.innerText()).toContain('timed out after 1s');
      expect(await slowpoke.innerText()).not.toMatch(/exit \d+/);
      expect(await page.locator('[data-step="test/flaky"]').innerText()).toContain('2 of 2 attempts');
      await page
        .locator('.line', { hasText: 'attempt 2 of 2 (attempt 1 failed: exited with code 1)' })
        .waitFor();

      // The log of a finished build is not followed.
      const follow = page.locator('.log-actions button', { hasText: /^Follow/ });
      expect(await follow.getAttribute('aria-pressed')).toBe('false');
      expect(await follow.innerText()).toBe('Follow');

      await page.getByRole('button', { name: 'First error' }).click();
      await page.locator('.line.selected', { hasText: 'real problem' }).waitFor();
      expect(await page.locator('.line.selected', { hasText: 'lint complains' }).count()).toBe(0);

      // The whole build's raw log, from "All steps".
      expect(await page.locator('#log-step').inputValue()).toBe('');
      const download = page.waitForEvent('download');
      await page.getByRole('button', { name: 'Download raw' }).click();
      const file = await download;
      expect(file.suggestedFilename()).toBe(`acme_ui-${build.number}.log`);
      const text = await readFile(await file.path(), 'utf8');
      expect(text).toContain('[verify/check] real problem\n');
      expect(text).toContain('[test/lint] lint complains\n');

      // A step in the graph is a way into its log.
      await page.locator('[data-step="test/flaky"] a').click();
      await page.locator('.line[data-n="1"]', { hasText: 'first try fails' }).waitFor();
      expect(await page.locator('#log-step').inputValue()).toBe('test/flaky');
      await page.waitForFunction(
        '(() => { const r = document.getElementById("log-title").getBoundingClientRect(); return r.top >= 0 && r.bottom <= innerHeight; })()',
      );
    },
    SLOW,
  );

  it(
    '"Re-run failed" beside "Re-run" on a failed build: the new build marks the step it reused',
    async () => {
      // The failed build of the test before, when it ran (one build less to wait for).
      const earlier = await api<{ items: Build[] }>(
        server,
        'GET',
        '/projects/acme/ui/builds?branch=main&status=failure&limit=1',
      );
      let failed = earlier.items[0];
      if (failed === undefined) {
        failed = await api<Build>(server, 'POST', '/projects/acme/ui/builds', { branch: 'main' });
        await waitForBuild(server, failed.id, (b) => b.status === 'failure', 120_000);
      }
      await page.goto(`${server.url}/projects/acme/ui`);
      const row = page.locator(`.build-row[data-build="${failed.number}"]`);
      await row.getByRole('button', { name: `Re-run failed steps of acme/ui #${failed.number}` }).waitFor();
      await page.goto(`${server.url}/projects/acme/ui/builds/${failed.number}`);
      await page.getByRole('button', { name: `Re-run failed steps of acme/ui #${failed.number}` }).click();
      // The build page opens the new build; flaky succeeded (on its retry) and is reused.
      const flaky = page.locator('[data-step="test/flaky"][data-reused="true"]');
      await flaky.waitFor();
      expect(await flaky.innerText()).toContain(`reused from #${failed.number}`);
      expect(await page.locator('[data-step="verify/check"]').getAttribute('data-reused')).toBeNull();
      const facts = page.locator('dd', { hasText: 're-run of what failed in' });
      await facts.waitFor();
      expect(await facts.innerText()).toContain(`re-run of what failed in #${failed.number}`);
      expect(page.url()).not.toMatch(new RegExp(`/builds/${failed.number}$`));
    },
    SLOW,
  );

  it(
    'says what happened to a finished build that has no commit and no stages',
    async () => {
      await api(server, 'POST', '/projects', {
        slug: 'acme/gone',
        repoUrl: `file://${scratch}/no-such-repo`,
      });
      const build = await api<Build>(server, 'POST', '/projects/acme/gone/builds', { branch: 'main' });
      const done = await waitForBuild(
        server,
        build.id,
        (b) => !['queued', 'pending', 'running'].includes(b.status),
      );
      await page.goto(`${server.url}/projects/acme/gone/builds/${build.number}`);
      await page.locator(`h1 [data-status="${done.status}"]`).waitFor();
      expect(await page.getByTestId('no-commit').innerText()).toBe('none: the checkout failed');
      expect(await page.getByTestId('no-stages').innerText()).toMatch(
        /^No stages: the build ended before its pipeline was compiled \(checkout: /,
      );
      expect(await page.getByText('not resolved yet').count()).toBe(0);
    },
    SLOW,
  );

  for (const viewport of [
    { width: 1366, height: 900 },
    { width: 1440, height: 900 },
  ]) {
    it(
      `keeps the newest line of a followed log on screen at ${viewport.width}×${viewport.height}`,
      async () => {
        await page.setViewportSize(viewport);
        await rm(go, { force: true });
        const build = await api<Build>(server, 'POST', '/projects/acme/ui/builds', { branch: 'chatty' });
        await page.goto(`${server.url}/projects/acme/ui/builds/${build.number}`);
        const last = page.locator('.line', { hasText: 'chatter line 300' });
        await last.waitFor();
        expect(await page.locator('.log-actions button[aria-pressed="true"]').innerText()).toBe('Following');
        // Fully inside both the log box and the window, once layout has settled.
        await page.waitForFunction(`(() => {
          const line = [...document.querySelectorAll('.line')].find((l) => l.textContent.includes('chatter line 300'));
          if (!line) return false;
          const r = line.getBoundingClientRect();
          const box = document.querySelector('.log-scroll').getBoundingClientRect();
          return r.top >= box.top && r.bottom <= box.bottom && r.top >= 0 && r.bottom <= window.innerHeight;
        })()`);
        await writeFile(go, '');
        await waitForBuild(server, build.id, (b) => b.status === 'success');
      },
      SLOW,
    );
  }
});
