import { rm } from 'node:fs/promises';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Build, BuildDetail, Project, TokenInfo } from '../../src/server/api/dto.js';
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

/** An approval stage, then one that reports whatever happened. */
const GATED = [
  'stages:',
  '  - name: deploy-to-production',
  '    approval: true',
  '    steps:',
  '      - name: ship',
  '        commands: [echo shipped]',
  '',
].join('\n');

interface Box {
  x: number;
  y: number;
  width: number;
  height: number;
}

function overlap(a: Box, b: Box): boolean {
  return a.x < b.x + b.width && b.x < a.x + a.width && a.y < b.y + b.height && b.y < a.y + a.height;
}

/** The builds list and the build page's approval panel, in real Chromium against real builds. */
describe('web UI: builds waiting for approval (Chromium)', () => {
  let server: Slipway;
  let browser: Browser;
  let page: Page;
  let repo: { url: string; dir: string };
  let me: TokenInfo;
  let build: Build;
  const slug = 'acme/gated-release-pipeline';
  const branch = 'release/2024-very-long-branch-name';

  beforeAll(async () => {
    server = await startSlipway();
    repo = await gitRepo({ [branch]: { '.slipway.yml': GATED } });
    await api<Project>(server, 'POST', '/projects', { slug, repoUrl: repo.url, defaultExecutor: 'local' });
    me = await api<TokenInfo>(server, 'GET', '/whoami');
    build = await api<Build>(server, 'POST', `/projects/${slug}/builds`, { branch });
    await waitForBuild<Build>(server, build.id, (b) => b.status === 'waiting');
    browser = await launchBrowser({ width: 1280, height: 900 });
    page = browser.page;
    page.setDefaultTimeout(60_000);
    await page.goto(server.url);
    await signIn(page, server.token);
    await page.getByRole('heading', { name: 'Projects' }).waitFor();
  }, SLOW);

  afterAll(async () => {
    await browser?.close();
    await server?.stop();
    if (repo !== undefined) await rm(repo.dir, { recursive: true, force: true });
  }, SLOW);

  it(
    'the builds list says a build waits for approval without running into its branch',
    async () => {
      for (const width of [1280, 800]) {
        await page.setViewportSize({ width, height: 900 });
        await page.goto(`${server.url}/projects/${slug}`);
        const row = page.locator(`.build-row[data-build="${build.number}"]`);
        const note = row.locator('.approval-note');
        await note.waitFor();
        expect(await note.textContent()).toBe('deploy-to-production: waiting for approval');
        const branchBox = await row.locator('.branch').boundingBox();
        for (const part of [row.locator('.build-link .status'), note, row.locator('.build-cell')]) {
          const box = await part.boundingBox();
          expect(box && branchBox && !overlap(box, branchBox), `${width}px`).toBe(true);
        }
      }
      await page.setViewportSize({ width: 1280, height: 900 });
    },
    SLOW,
  );

  it(
    'the approval panel takes a comment and then shows who approved, when and why',
    async () => {
      await page.goto(`${server.url}/projects/${slug}/builds/${build.number}`);
      await page.getByRole('heading', { name: 'Stage “deploy-to-production” waits for approval' }).waitFor();
      await page.getByLabel('Comment or reason (optional)').fill('checked the release notes');
      await page.getByRole('button', { name: 'Approve deploy-to-production' }).click();
      const record = page.locator('.approval-record');
      await record.waitFor();
      await page.getByRole('heading', { name: 'Approval', exact: true }).waitFor();
      const text = await record.textContent();
      expect(text).toContain('Stage “deploy-to-production” approved by');
      expect(text).toContain(me.name);
      expect(await record.locator('.approval-comment').textContent()).toBe('checked the release notes');
      expect(await record.locator('time').getAttribute('datetime')).toMatch(/^\d{4}-\d\d-\d\dT/);

      const done = await waitForBuild<BuildDetail>(server, build.id, (b) => b.status === 'success');
      expect(done.approvals).toEqual([
        expect.objectContaining({ decision: 'approved', by: me.name, comment: 'checked the release notes' }),
      ]);
    },
    SLOW,
  );
});
