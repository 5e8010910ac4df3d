import { rm } from 'node:fs/promises';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Build } from '../../src/server/api/dto.js';
import { StandInForge } from '../../src/server/commit-status/testing/stand-in-forges.js';
import {
  api,
  gitRepo,
  launchBrowser,
  signIn,
  startSlipway,
  waitForBuild,
  type Browser,
  type Slipway,
} from './harness.js';

const SLOW = 120_000;
const TOKEN = 'ghp_e2eNotificationsPanel0123456789';
const ANSWER = 'Resource not accessible by integration';

/**
 * The build page's Notifications panel in real Chromium: a real server posts its commit
 * statuses to a GitHub stand-in (validating each request against GitHub's OpenAPI description)
 * that refuses every one with a 403; the build still succeeds and its page shows each failed
 * post with the forge's answer, never the token.
 */
describe('web UI: the build page shows the commit statuses the forge refused (Chromium)', () => {
  const forge = new StandInForge('github', TOKEN);
  let server: Slipway;
  let browser: Browser;
  let page: Page;
  let repo: { url: string; dir: string };

  beforeAll(async () => {
    await forge.start();
    repo = await gitRepo({
      main: { '.slipway.yml': 'steps:\n  - name: unit\n    commands: ["echo fine"]\n' },
    });
    server = await startSlipway();
    await api(server, 'POST', '/projects', { slug: 'acme/web', repoUrl: repo.url });
    await api(server, 'PUT', '/projects/acme/web/secrets/gh_status', { value: TOKEN });
    await api(server, 'PUT', '/projects/acme/web/commit-status', {
      forge: 'github',
      apiUrl: forge.apiUrl,
      repository: 'acme/web',
      tokenSecret: 'gh_status',
    });
    browser = await launchBrowser();
    page = browser.page;
    page.setDefaultTimeout(60_000);
    await page.goto(server.url);
    await signIn(page, server.token);
    await page.getByRole('heading', { name: 'Projects' }).waitFor();
  }, SLOW);

  afterAll(async () => {
    await browser?.close();
    await server?.stop();
    await forge.stop();
    if (repo !== undefined) await rm(repo.dir, { recursive: true, force: true });
  }, SLOW);

  it(
    'a 403 from the forge: each post listed as failed with its answer; the build succeeded',
    async () => {
      for (let i = 0; i < 10; i++) forge.script.push({ status: 403, body: { message: ANSWER } });
      const build = await api<Build>(server, 'POST', '/projects/acme/web/builds', { branch: 'main' });
      expect((await waitForBuild<Build>(server, build.id, (b) => b.status === 'success')).status).toBe(
        'success',
      );
      // The final status goes out after the build ends: wait until it has been tried.
      await expect
        .poll(() => forge.requests.some((r) => r.body.state === 'success'), { timeout: 60_000 })
        .toBe(true);
      expect(forge.violations).toEqual([]);

      await page.goto(`${server.url}/projects/acme/web/builds/${build.number}`);
      const panel = page.locator('section.notifications');
      const statuses = panel.getByRole('list', { name: 'Commit statuses' });
      const last = statuses.locator('li').last();
      await expect.poll(() => last.textContent(), { timeout: 60_000 }).toContain('success');
      expect(await panel.getByRole('heading', { name: 'Notifications' }).isVisible()).toBe(true);
      const rows = await statuses.locator('li').count();
      expect(rows).toBe(forge.requests.length);
      expect(await statuses.locator('li[data-outcome="failed"]').count()).toBe(rows);
      expect(await last.locator('code').textContent()).toBe('slipway');
      expect(await last.locator('.notification-answer').textContent()).toContain(
        `commit status to GitHub failed: 403 ${ANSWER}`,
      );
      // No e-mail was sent (no SMTP server): no list of them.
      expect(await panel.getByRole('list', { name: 'E-mails' }).count()).toBe(0);
      expect(await page.content()).not.toContain(TOKEN);
    },
    SLOW,
  );
});
