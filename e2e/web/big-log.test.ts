import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Locator, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Build } from '../../src/server/api/dto.js';
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

const SLOW = 240_000;

/** Whether `inner` is drawn inside `outer`'s box (not just present in the DOM). */
async function inView(inner: Locator, outer: Locator): Promise<boolean> {
  const [a, b] = await Promise.all([inner.boundingBox(), outer.boundingBox()]);
  return a !== null && b !== null && a.y >= b.y - 1 && a.y + a.height <= b.y + b.height + 1;
}

/**
 * Waits for `target` for as long as the log keeps growing: on a loaded machine a 100,000-line
 * stream may take longer than any one wait, but a view that stopped following stops growing
 * (its count stays at the last line) and fails here.
 */
async function waitWhileLogGrows(page: Page, target: Locator): Promise<void> {
  const state = page.locator('.log-state');
  for (;;) {
    const before = await state.textContent();
    try {
      await target.waitFor({ timeout: 30_000 });
      return;
    } catch (error) {
      if ((await state.textContent()) === before) throw error;
    }
  }
}

/** The log viewer with 100,000-line logs: a finished one, and one that streams in live. */
describe('web UI log viewer with 100,000 lines (Chromium, real server)', () => {
  let server: Slipway;
  let browser: Browser;
  let page: Page;
  let repo: { url: string; dir: string };
  let scratch: string;

  beforeAll(async () => {
    server = await startSlipway();
    scratch = await scratchForSteps('slipway-web-go-');
    const wait = (file: string) => `while [ ! -f ${join(scratch, file)} ]; do sleep 0.1; done`;
    repo = await gitRepo({
      main: {
        '.slipway.yml':
          'stages:\n  - name: big\n    steps:\n      - name: numbers\n        commands: ["seq 1 100000"]\n',
      },
      stream: {
        '.slipway.yml': [
          'steps:',
          '  - name: numbers',
          '    commands:',
          `      - echo ready; ${wait('go1')}`,
          '      - seq 1 100000',
          `      - ${wait('go2')}`,
          '      - echo tail-end',
          '',
        ].join('\n'),
      },
    });
    await api(server, 'POST', '/projects', { slug: 'acme/big', repoUrl: repo.url });
    browser = await launchBrowser();
    page = browser.page;
    page.setDefaultTimeout(90_000);
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
    'opens a finished 100k-line log, finds a line, and follows a permalink',
    async () => {
      const build = await api<Build>(server, 'POST', '/projects/acme/big/builds', { branch: 'main' });
      await waitForBuild(server, build.id, (b) => b.status === 'success', 120_000);

      const path = `/projects/acme/big/builds/${build.number}?step=big/numbers`;
      await page.goto(`${server.url}${path}`);
      await page.locator('.log-state', { hasText: 'complete · 100,000 lines' }).waitFor();
      // Virtualised: a screenful of rows in the DOM, not 100,000.
      expect(await page.locator('.line').count()).toBeLessThan(300);

      await page.getByLabel('Find in log').fill('99999');
      await page.getByTestId('match-count').filter({ hasText: '1 of 1' }).waitFor();
      const hit = page.locator('.line.current[data-n="99999"]');
      await hit.waitFor();
      expect(await hit.locator('.hit').textContent()).toBe('99999');
      expect(await inView(hit, page.getByTestId('log'))).toBe(true);
      await screenshots(page, '12-big-log-search');

      // More hits: Enter walks through them.
      await page.getByLabel('Find in log').fill('4242');
      const total = 20; // 4242, x4242 for x in 1..9, 42420..42429
      await page
        .getByTestId('match-count')
        .filter({ hasText: `1 of ${total}` })
        .waitFor();
      await page.getByLabel('Find in log').press('Enter');
      await page
        .getByTestId('match-count')
        .filter({ hasText: `2 of ${total}` })
        .waitFor();
      await page.locator('.line.current[data-n="14242"]').waitFor();

      await page.goto(`${server.url}${path}#L50000`);
      const target = page.locator('.line.selected[data-n="50000"]');
      await target.waitFor();
      expect(await inView(target, page.getByTestId('log'))).toBe(true);
      expect(
        await page.getByRole('button', { name: 'Follow', exact: true }).getAttribute('aria-pressed'),
      ).toBe('false');
    },
    SLOW,
  );

  it(
    'follows a log streaming in, stops following when scrolled up, and resumes',
    async () => {
      const build = await api<Build>(server, 'POST', '/projects/acme/big/builds', { branch: 'stream' });
      await page.goto(`${server.url}/projects/acme/big/builds/${build.number}`);
      await page.locator('.line', { hasText: 'ready' }).waitFor();
      const log = page.getByTestId('log');

      await writeFile(join(scratch, 'go1'), '');
      const last = page.locator('.line .text', { hasText: /^100000$/ });
      await waitWhileLogGrows(page, last);
      expect(await inView(last, log)).toBe(true);
      expect(await page.getByRole('button', { name: 'Following' }).getAttribute('aria-pressed')).toBe('true');
      await screenshots(page, '13-big-log-live');

      await log.hover();
      await page.mouse.wheel(0, -4000);
      const follow = page.getByRole('button', { name: 'Follow', exact: true });
      await follow.waitFor();
      expect(await follow.getAttribute('aria-pressed')).toBe('false');

      await writeFile(join(scratch, 'go2'), '');
      await waitForBuild(server, build.id, (b) => b.status === 'success');
      await page.locator('.log-state', { hasText: 'complete' }).waitFor();
      expect(await page.locator('.line', { hasText: 'tail-end' }).count()).toBe(0);

      await follow.click();
      const tail = page.locator('.line', { hasText: 'tail-end' });
      await tail.waitFor();
      expect(await inView(tail, log)).toBe(true);
    },
    SLOW,
  );
});
