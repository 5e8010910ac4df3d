import { chmod, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Build, BuildDetail } from '../../src/server/api/dto.js';
import { ServerProcess, freePort, tempDir } from '../server/server-harness.js';
import { api, gitRepo, launchBrowser, waitForBuild, type Browser, type Slipway } from './harness.js';
import { startIdp, type Tamper, type TestIdp } from './oidc-idp.js';

const SLOW = 180_000;
const CSRF = { 'x-slipway-csrf': '1' };

/** An approval stage: the build waits for a person, who approves (or cancels) it in the UI. */
const GATED = [
  'stages:',
  '  - name: release',
  '    approval: true',
  '    steps:',
  '      - name: ship',
  '        commands: [echo shipped]',
  '',
].join('\n');

/**
 * Sign-in with OpenID Connect against a real OpenID Provider (`oidc-provider`, started here,
 * its development login and consent pages filled in by Chromium), Slipway as an operator runs
 * it (`--oidc-*` options, the client secret in a file). The IdP is `localhost`, Slipway
 * `127.0.0.1`: two sites, as in production. The tampered id_tokens come from a stand-in: a
 * proxy in front of the real provider that rewrites one token response (see oidc-idp.ts).
 */
describe('sign-in with OpenID Connect (Chromium, oidc-provider)', () => {
  let idp: TestIdp;
  let server: ServerProcess;
  let slipway: Slipway;
  let browser: Browser;
  let page: Page;
  let repo: { url: string; dir: string };
  let secretDir: string;
  /** The code of a sign-in that succeeded: exchanged once already. */
  let usedCode = '';

  beforeAll(async () => {
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    idp = await startIdp(`${url}/auth/oidc/callback`);
    secretDir = await tempDir('oidc-secret');
    const secretFile = join(secretDir, 'client-secret');
    await writeFile(secretFile, `${idp.clientSecret}\n`);
    await chmod(secretFile, 0o600);
    server = await ServerProcess.start({
      port,
      executor: 'local',
      args: [
        '--public-url',
        url,
        '--oidc-issuer',
        idp.issuer,
        '--oidc-client-id',
        idp.clientId,
        '--oidc-client-secret-file',
        secretFile,
        '--oidc-scopes',
        'openid,profile,email,groups',
        '--oidc-admin-groups',
        'ci-admins',
        '--oidc-member-groups',
        'developers',
        '--oidc-viewer-emails',
        'vera@example.com',
      ],
    });
    slipway = { url: server.url, token: server.token, stop: () => Promise.resolve() };
    repo = await gitRepo({ main: { '.slipway.yml': GATED } });
    await api(slipway, 'POST', '/projects', { slug: 'acme/sso', repoUrl: repo.url });
    browser = await launchBrowser();
    page = browser.page;
    page.setDefaultTimeout(60_000);
    // The provider's dev pages import a web font; there is no internet here.
    await browser.context.route(/fonts\.googleapis\.com/, (route) => route.abort());
  }, SLOW);

  afterAll(async () => {
    await browser?.close();
    await server?.shutdown();
    await idp?.close();
    if (repo !== undefined) await rm(repo.dir, { recursive: true, force: true });
  }, SLOW);

  /**
   * Signs in from a clean browser (no Slipway session, no IdP session): Slipway's sign-in
   * page, the IdP's login and consent pages. Resolves once the browser is back at Slipway
   * (the UI or an error page).
   */
  /** From a clean browser (no Slipway session, no IdP session) through the IdP's login and consent. */
  async function throughIdp(login: string, path: string): Promise<void> {
    await browser.context.clearCookies();
    await page.goto(`${slipway.url}${path}`);
    await page.getByRole('link', { name: 'Sign in with single sign-on' }).click();
    await page.locator('input[name=login]').fill(login);
    await page.locator('input[name=password]').fill('any password');
    await page.getByRole('button', { name: 'Sign-in' }).click();
    await page.getByRole('button', { name: 'Continue' }).click();
  }

  /** Signs in; resolves once the browser is back at Slipway (the UI or an error page). */
  async function signInAs(login: string, path = '/'): Promise<void> {
    await throughIdp(login, path);
    await page.waitForURL((u) => u.origin === slipway.url);
  }

  /**
   * The IdP's answer (the callback URL with code and state), held by the test's proxy before
   * the browser follows it: the sign-in's cookie stays in the browser, for the test to send an
   * altered answer.
   */
  async function answerOf(login: string): Promise<URL> {
    const held = idp.holdNextAnswer();
    await throughIdp(login, '/');
    return held;
  }

  async function sessionCookie() {
    return (await browser.context.cookies(slipway.url)).find((c) => c.name === 'slipway_session');
  }

  /** The error page Slipway shows for a failed sign-in: its title and reason. */
  async function errorPage(): Promise<{ title: string; reason: string }> {
    const reason = page.locator('p.reason');
    await reason.waitFor();
    return {
      title: (await page.locator('h1').textContent()) ?? '',
      reason: (await reason.textContent()) ?? '',
    };
  }

  it(
    'signs in at the IdP, lands where it started as the mapped role, and records the person on trigger, approve and cancel',
    async () => {
      const callbacks: string[] = [];
      page.on('request', (r) => {
        if (r.url().includes('/auth/oidc/callback')) callbacks.push(r.url());
      });
      await signInAs('alice', '/projects/acme/sso');
      expect(new URL(page.url()).pathname).toBe('/projects/acme/sso');
      await page.getByRole('heading', { name: 'acme/sso' }).waitFor();
      const who = page.locator('.whoami');
      await who.getByText('Alice Admin <alice@example.com>').waitFor();
      expect(await who.locator('.role').textContent()).toBe('admin');

      const cookies = await browser.context.cookies(slipway.url);
      expect(cookies.map((c) => c.name)).toEqual(['slipway_session']);
      expect(cookies[0]).toMatchObject({ httpOnly: true, path: '/', sameSite: 'Strict' });
      expect(cookies[0]!.value).toMatch(/^slwu_/);
      const readable = await page.evaluate<string>('document.cookie');
      expect(readable).toBe('');

      // Trigger in the UI: the build page says who.
      await page.getByRole('button', { name: 'Trigger build' }).click();
      await page.getByRole('button', { name: 'Start build' }).click();
      await page.getByRole('heading', { name: /^Build #1/ }).waitFor();
      await page.getByText('by Alice Admin <alice@example.com>').first().waitFor();
      const build = await api<Build>(slipway, 'GET', '/projects/acme/sso/builds/1');
      expect(build.triggeredBy).toBe('Alice Admin <alice@example.com>');

      // Approve in the UI.
      await page.getByRole('button', { name: 'Approve release' }).click();
      await page.locator('.approval-record').getByText('Alice Admin <alice@example.com>').waitFor();
      const done = await waitForBuild<BuildDetail>(slipway, build.id, (b) => b.status === 'success');
      expect(done.approvals).toEqual([
        expect.objectContaining({ decision: 'approved', by: 'Alice Admin <alice@example.com>' }),
      ]);

      // Cancel in the UI: the reason names the person.
      const second = await api<Build>(slipway, 'POST', '/projects/acme/sso/builds', { branch: 'main' });
      await waitForBuild(slipway, second.id, (b) => b.status === 'waiting');
      await page.goto(`${slipway.url}/projects/acme/sso/builds/${second.number}`);
      await page.getByRole('button', { name: `Cancel acme/sso #${second.number}` }).click();
      await page.getByText('cancelled by Alice Admin <alice@example.com>').first().waitFor();

      // A replayed callback (same URL, same browser) opens no second session.
      expect(callbacks).toHaveLength(1);
      usedCode = new URL(callbacks[0]!).searchParams.get('code') ?? '';
      const before = await sessionCookie();
      await page.goto(callbacks[0]!);
      const replayed = await errorPage();
      expect(replayed.title).toBe('Sign-in not recognised');
      expect(replayed.reason).toMatch(/finished already/);
      expect((await sessionCookie())?.value).toBe(before?.value);
    },
    SLOW,
  );

  it(
    'refuses cookie-signed changes without the CSRF header or from another site; tokens stay exempt',
    async () => {
      await signInAs('mo');
      const cookie = `slipway_session=${(await sessionCookie())!.value}`;
      const trigger = (headers: Record<string, string>) =>
        fetch(`${slipway.url}/api/v1/projects/acme/sso/builds`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', ...headers },
          body: JSON.stringify({ branch: 'main' }),
        });
      const count = async () =>
        (await api<{ items: Build[] }>(slipway, 'GET', '/projects/acme/sso/builds')).items.length;
      const before = await count();
      const forged = await trigger({ cookie });
      expect(forged.status).toBe(403);
      expect(await forged.text()).toMatch(/x-slipway-csrf/);
      expect((await trigger({ cookie, ...CSRF, 'sec-fetch-site': 'cross-site' })).status).toBe(403);
      expect(await count()).toBe(before);

      const ok = await trigger({ cookie, ...CSRF });
      expect(ok.status).toBe(201);
      const made = (await ok.json()) as Build;
      expect(made.triggeredBy).toBe('Mo Member <mo@example.com>');
      const byToken = await trigger({ authorization: `Bearer ${slipway.token}` });
      expect(byToken.status).toBe(201);
      for (const b of [made, (await byToken.json()) as Build]) {
        await api(slipway, 'POST', `/builds/${b.id}/cancel`, {});
      }
    },
    SLOW,
  );

  it(
    'a viewer signs in but cannot trigger; a person no role is granted to is refused with a page that says why',
    async () => {
      await signInAs('vera', '/projects/acme/sso');
      await page.locator('.whoami').getByText('Vera Viewer <vera@example.com>').waitFor();
      expect(await page.locator('.whoami .role').textContent()).toBe('viewer');
      await page.getByRole('button', { name: 'Trigger build' }).click();
      await page.getByRole('button', { name: 'Start build' }).click();
      expect(await page.getByRole('alert').first().textContent()).toMatch(/viewer role; this needs member/);

      await signInAs('mallory');
      const refused = await errorPage();
      expect(refused.title).toBe('No access to Slipway');
      expect(refused.reason).toContain('mallory@elsewhere.test');
      expect(refused.reason).toContain('outsiders');
      expect(await sessionCookie()).toBeUndefined();
    },
    SLOW,
  );

  it(
    'an IdP error answer, a wrong state and a replayed code each end on a clear page with no session',
    async () => {
      // The person cancels at the IdP: it answers error=access_denied.
      await browser.context.clearCookies();
      await page.goto(slipway.url);
      await page.getByRole('link', { name: 'Sign in with single sign-on' }).click();
      await page.getByRole('link', { name: '[ Cancel ]' }).click();
      const denied = await errorPage();
      expect(denied.title).toBe('Sign-in refused');
      expect(denied.reason).toMatch(/access_denied/);
      expect(await sessionCookie()).toBeUndefined();

      // The IdP's answer altered on its way back: the state no longer matches.
      const altered = await answerOf('alice');
      altered.searchParams.set('state', 'forged-state');
      await page.goto(altered.href);
      const forged = await errorPage();
      expect(forged.title).toBe('Sign-in not recognised');
      expect(forged.reason).toMatch(/state mismatch/);
      expect(await sessionCookie()).toBeUndefined();

      // A fresh sign-in whose answer carries the code of an earlier one, used already: the IdP
      // refuses it.
      expect(usedCode).not.toBe('');
      const answer = await answerOf('alice');
      answer.searchParams.set('code', usedCode);
      await page.goto(answer.href);
      const replayed = await errorPage();
      expect(replayed.title).toBe('Sign-in failed');
      expect(replayed.reason).toMatch(/invalid_grant/);
      expect(await sessionCookie()).toBeUndefined();
    },
    SLOW,
  );

  it(
    'stand-in tampering proxy: a bad signature, another audience, an expired token, a wrong nonce or a replayed id_token open no session',
    async () => {
      const expected: Record<Tamper, RegExp> = {
        signature: /signature/i,
        audience: /"aud"/,
        expired: /"exp"/,
        nonce: /"nonce"/,
        replay: /"nonce"/,
      };
      for (const how of Object.keys(expected) as Tamper[]) {
        idp.tamperNext(how);
        await signInAs('alice');
        const page_ = await errorPage();
        expect(page_.title, how).toBe('Sign-in failed');
        expect(page_.reason, how).toMatch(expected[how]);
        expect(page_.reason, how).not.toMatch(/eyJ/); // no token in the page
        expect(await sessionCookie(), how).toBeUndefined();
      }
      expect(idp.tampered).toEqual(Object.keys(expected));
    },
    SLOW,
  );
});
