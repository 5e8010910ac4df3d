import { execFile } from 'node:child_process';
import { createHmac, randomUUID } from 'node:crypto';
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
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

const run = promisify(execFile);
const SLOW = 180_000;
const GITHUB_URL = 'https://github.com/acme/web.git';
const MESSAGE = 'Fix <b>login</b> & logout';
const BODY = 'The session cookie outlived the sign-out.';
const AUTHOR = 'Ada Lovelace <ada@example.com>';

/** `expect.poll` with room for a loaded machine (its default gives up after 1 s). */
const poll = <T>(read: () => T | Promise<T>) => expect.poll(read, { timeout: 60_000 });

/**
 * The commit's message and author, the links to the forge, and the tab's title and favicon,
 * in real Chromium against a real server building a real git repository. The GitHub project's
 * URL is rewritten by git's own `url.<base>.insteadOf` (in the server's environment) to the
 * local repository: the server checks out "github.com" for real without a network.
 */
describe('web UI: commit message, author and forge links; the tab shows a running build (Chromium)', () => {
  let server: Slipway;
  let browser: Browser;
  let page: Page;
  let repo: { url: string; dir: string };
  let scratch: string;
  let sha: string;
  const consoleErrors: string[] = [];

  beforeAll(async () => {
    scratch = await scratchForSteps('slipway-web-commit-');
    repo = await gitRepo({
      main: {
        '.slipway.yml': `steps:\n  - name: wait\n    commands:\n      - while [ ! -f ${join(scratch, 'go')} ]; do sleep 0.1; done\n`,
      },
    });
    const [name, email] = ['Ada Lovelace', 'ada@example.com'];
    await run(
      'git',
      [
        '-c',
        `user.name=${name}`,
        '-c',
        `user.email=${email}`,
        'commit',
        '-q',
        '--allow-empty',
        '-m',
        MESSAGE,
        '-m',
        BODY,
      ],
      {
        cwd: repo.dir,
      },
    );
    sha = (await run('git', ['rev-parse', 'HEAD'], { cwd: repo.dir })).stdout.trim();
    server = await startSlipway({
      env: {
        GIT_CONFIG_COUNT: '1',
        GIT_CONFIG_KEY_0: `url.${repo.url}.insteadOf`,
        GIT_CONFIG_VALUE_0: GITHUB_URL,
      },
    });
    await api(server, 'POST', '/projects', { slug: 'acme/web', repoUrl: GITHUB_URL });
    await api(server, 'POST', '/projects', { slug: 'acme/local', repoUrl: repo.url });
    browser = await launchBrowser();
    page = browser.page;
    page.setDefaultTimeout(60_000);
    page.on('console', (message) => {
      // The host's network changing under Chromium (other tests' containers come and go) is
      // not an error of the page: its reads are asked again.
      if (message.type() === 'error' && !message.text().includes('ERR_NETWORK_CHANGED'))
        consoleErrors.push(message.text());
    });
    page.on('pageerror', (error) => consoleErrors.push(error.message));
    await page.goto(server.url);
    await signIn(page, server.token);
    await page.getByRole('heading', { name: 'Projects' }).waitFor();
    // Signed out, the app's first `whoami` is a 401 the browser reports: not a fault.
    consoleErrors.length = 0;
  }, SLOW);

  afterAll(async () => {
    await browser?.close();
    await server?.stop();
    if (repo !== undefined) await rm(repo.dir, { recursive: true, force: true });
    if (scratch !== undefined) await rm(scratch, { recursive: true, force: true });
  }, SLOW);

  const favicon = () => page.locator('link[rel~="icon"]');

  it(
    'build page: message (body on expand), author, links to commit and branch; title and favicon go from running to success',
    async () => {
      const build = await api<Build>(server, 'POST', '/projects/acme/web/builds', { branch: 'main' });
      await waitForBuild<Build>(server, build.id, (b) => b.status === 'running' && b.commitAuthor != null);
      await page.goto(`${server.url}/projects/acme/web/builds/${build.number}`);

      await poll(() => page.title()).toBe(`● running — acme/web #${build.number} · Slipway`);
      expect(await favicon().getAttribute('data-status')).toBe('running');
      expect(decodeURIComponent((await favicon().getAttribute('href'))!)).toContain('stroke="#1f5fbf"');

      // The message is text: its "<b>" is shown, never made an element.
      const message = page.getByTestId('commit-message');
      await poll(() => message.locator('summary').textContent()).toBe(MESSAGE);
      expect(await message.locator('b').count()).toBe(0);
      expect(await message.locator('.commit-body').isVisible()).toBe(false);
      await message.locator('summary').click();
      expect(await message.locator('.commit-body').textContent()).toBe(BODY);
      expect(await page.getByTestId('commit-author').textContent()).toBe(AUTHOR);

      const commitLink = page.getByRole('link', { name: `commit ${sha} on the forge` });
      expect(await commitLink.getAttribute('href')).toBe(`https://github.com/acme/web/commit/${sha}`);
      expect(await commitLink.getAttribute('rel')).toBe('noreferrer');
      const branchLink = page.getByRole('link', { name: 'branch main on the forge' });
      expect(await branchLink.getAttribute('href')).toBe('https://github.com/acme/web/tree/main');

      await writeFile(join(scratch, 'go'), '');
      await poll(() => page.title()).toBe(`✓ success — acme/web #${build.number} · Slipway`);
      expect(await favicon().getAttribute('data-status')).toBe('success');
      expect(decodeURIComponent((await favicon().getAttribute('href'))!)).toContain('fill="#1a7f37"');

      // Leaving the build page gives the tab back the app's own icon.
      await page.getByRole('link', { name: 'Projects' }).first().click();
      await page.getByRole('heading', { name: 'Projects' }).waitFor();
      expect(await favicon().getAttribute('data-status')).toBeNull();
      expect(decodeURIComponent((await favicon().getAttribute('href'))!)).toContain("fill='#357'");
    },
    SLOW,
  );

  it(
    "builds list: the message's first line (all of it on hover), the author's name, links, and the pull request a webhook named",
    async () => {
      const secret = 'a-webhook-secret-for-tests';
      await api(server, 'PATCH', '/projects/acme/web/hooks', { secret });
      const body = JSON.stringify({
        action: 'opened',
        number: 7,
        pull_request: {
          number: 7,
          head: { ref: 'main', sha, repo: { id: 1, full_name: 'acme/web' } },
          base: { ref: 'main', repo: { id: 1, full_name: 'acme/web' } },
        },
        repository: { id: 1, full_name: 'acme/web', clone_url: GITHUB_URL },
        sender: { login: 'alice' },
      });
      const response = await fetch(`${server.url}/hooks/github`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'x-github-event': 'pull_request',
          'x-github-delivery': randomUUID(),
          'x-hub-signature-256': `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`,
        },
        body,
      });
      expect(response.status, await response.clone().text()).toBe(201);
      const pr = ((await response.json()) as { build: { id: number; number: number } }).build;
      await waitForBuild<Build>(server, pr.id, (b) => b.status === 'success');

      await page.goto(`${server.url}/projects/acme/web`);
      const row = page.locator(`li[data-build="${pr.number}"]`);
      await row.getByTestId('commit-title').waitFor();
      expect(await row.getByTestId('commit-title').textContent()).toBe(MESSAGE);
      expect(await row.getByTestId('commit-title').getAttribute('title')).toBe(`${MESSAGE}\n\n${BODY}`);
      expect(await row.getByTestId('commit-author').textContent()).toBe('Ada Lovelace');
      expect(await row.getByTestId('commit-author').getAttribute('title')).toBe(AUTHOR);
      expect(await row.getByRole('link', { name: 'pull request #7 on the forge' }).getAttribute('href')).toBe(
        'https://github.com/acme/web/pull/7',
      );
      expect(await row.getByRole('link', { name: `commit ${sha} on the forge` }).getAttribute('href')).toBe(
        `https://github.com/acme/web/commit/${sha}`,
      );
      const first = page.locator('li[data-build="1"]');
      expect(await first.getByRole('link', { name: 'branch on the forge' }).getAttribute('href')).toBe(
        'https://github.com/acme/web/tree/main',
      );
      expect(await first.getByRole('link', { name: /pull request/ }).count()).toBe(0);
    },
    SLOW,
  );

  it(
    'a repository on no known forge: message and author, but no links',
    async () => {
      const build = await api<Build>(server, 'POST', '/projects/acme/local/builds', { branch: 'main' });
      await waitForBuild(server, build.id, (b) => b.status === 'success');
      await page.goto(`${server.url}/projects/acme/local/builds/${build.number}`);
      await poll(() => page.getByTestId('commit-message').locator('summary').textContent()).toBe(MESSAGE);
      expect(await page.getByTestId('commit-author').textContent()).toBe(AUTHOR);
      // Once the project (its repository URL) is loaded, it is on no known forge: no links.
      await page.locator('dl.facts[data-forge="none"]').waitFor();
      expect(await page.locator('dd code').first().textContent()).toBe(sha.slice(0, 12));
      expect(await page.locator('a.forge-link').count()).toBe(0);
      expect(await page.title()).toBe(`✓ success — acme/local #${build.number} · Slipway`);

      await page.goto(`${server.url}/projects/acme/local`);
      const row = page.locator(`li[data-build="${build.number}"]`);
      await row.getByTestId('commit-title').waitFor();
      expect(await row.getByTestId('commit-author').textContent()).toBe('Ada Lovelace');
      await page.locator('ul.builds[data-forge="none"]').waitFor();
      expect(await page.locator('a.forge-link').count()).toBe(0);
      expect(consoleErrors).toEqual([]);
    },
    SLOW,
  );

  it(
    'project page: the badge shows, its Markdown is there to copy, and the switch makes it public',
    async () => {
      const badgeUrl = `${server.url}/badges/acme/web.svg`;
      expect((await fetch(badgeUrl)).status).toBe(404);
      await page.goto(`${server.url}/projects/acme/web`);
      await page.getByText('Status badge').click();
      // The image loads with the session: a private badge shows to the signed-in.
      const image = page.getByRole('img', { name: 'build status of acme/web (main)' });
      await poll(() =>
        image.evaluate((img) => (img as unknown as { naturalWidth: number }).naturalWidth),
      ).toBeGreaterThan(0);
      expect(await page.getByLabel('Markdown for a README').inputValue()).toBe(
        `[![build](${server.url}/badges/acme/web.svg)](${server.url}/projects/acme/web)`,
      );
      await page.getByLabel(/Public badge/).click();
      await poll(() => page.getByTestId('badge-visibility').textContent()).toMatch(/^Public/);
      const anonymous = await fetch(badgeUrl);
      expect(anonymous.status).toBe(200);
      expect(anonymous.headers.get('content-type')).toMatch(/^image\/svg\+xml/);
      expect(await anonymous.text()).toContain('>passing</text>');
    },
    SLOW,
  );
});
