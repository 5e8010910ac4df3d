import { rm } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Build, TokenCreated } from '../../src/server/api/dto.js';
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

const SLOW = 180_000;

/**
 * Sign-in lasts the browser session, in every tab: the server's session cookie, not a token in
 * one tab's storage. Real server, real build, real Chromium.
 */
describe('web UI sign-in across tabs (Chromium)', () => {
  let server: Slipway;
  let browser: Browser;
  let repo: { url: string; dir: string };
  let build: Build;

  beforeAll(async () => {
    server = await startSlipway();
    repo = await gitRepo({
      main: { '.slipway.yml': 'steps:\n  - name: hello\n    commands: ["echo hello from the build"]\n' },
    });
    await api(server, 'POST', '/projects', { slug: 'acme/tabs', repoUrl: repo.url });
    build = await api<Build>(server, 'POST', '/projects/acme/tabs/builds', { branch: 'main' });
    await waitForBuild(server, build.id, (b) => b.status === 'success');
    browser = await launchBrowser();
    browser.page.setDefaultTimeout(60_000);
  }, SLOW);

  afterAll(async () => {
    await browser?.close();
    await server?.stop();
    if (repo !== undefined) await rm(repo.dir, { recursive: true, force: true });
  }, SLOW);

  it(
    'opens a build link in a new tab signed in, with the token in no page-readable place',
    async () => {
      const { page, context } = browser;
      await page.goto(server.url);
      await signIn(page, server.token);
      await page.getByRole('heading', { name: 'Projects' }).waitFor();

      const cookies = await context.cookies(server.url);
      expect(cookies).toHaveLength(1);
      expect(cookies[0]).toMatchObject({
        name: 'slipway_session',
        httpOnly: true,
        sameSite: 'Strict',
        path: '/',
      });
      expect(cookies[0]!.expires).toBe(-1); // a browser-session cookie
      expect(cookies[0]!.value).not.toContain(server.token.slice(4));
      // A string: this file is type-checked without the DOM library.
      const readable = await page.evaluate<Record<string, string>>(
        '({ cookie: document.cookie, session: JSON.stringify(sessionStorage), local: JSON.stringify(localStorage) })',
      );
      for (const place of Object.values(readable)) expect(place).not.toContain(server.token.slice(4));

      // What a person does with a link: open it in a new tab of the same browser.
      const tab = await context.newPage();
      tab.setDefaultTimeout(60_000);
      await tab.goto(`${server.url}/projects/acme/tabs/builds/${build.number}`);
      await tab.getByRole('heading', { name: `Build #${build.number}` }).waitFor();
      await tab.locator('.line', { hasText: 'hello from the build' }).waitFor();
      expect(await tab.getByLabel('Token').count()).toBe(0);

      // Signing out in one tab ends the session for every tab: the other one is asked again.
      await tab.getByRole('button', { name: 'Sign out' }).click();
      await tab.getByLabel('Token').waitFor();
      expect(await context.cookies(server.url)).toEqual([]);
      await page.reload();
      await page.getByLabel('Token').waitFor();
      await tab.close();
    },
    SLOW,
  );

  it(
    'ends the browser session when its token is revoked',
    async () => {
      const { page } = browser;
      const viewer = await api<TokenCreated>(server, 'POST', '/tokens', {
        name: 'tab-viewer',
        role: 'viewer',
      });
      await page.goto(server.url);
      await signIn(page, viewer.token);
      await page.getByRole('heading', { name: 'Projects' }).waitFor();
      await api(server, 'DELETE', `/tokens/${viewer.id}`);
      await page.goto(`${server.url}/projects/acme/tabs`);
      await page.getByLabel('Token').waitFor();
    },
    SLOW,
  );
});
