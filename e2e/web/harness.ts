import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { ROOT } from '../cli-helpers.js';
import { ServerProcess } from '../server/server-harness.js';

const run = promisify(execFile);

/** Debian's Chromium: playwright-core never downloads a browser of its own. */
export const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
export const SCREENSHOTS = join(ROOT, 'e2e', 'screenshots');

export interface Slipway {
  url: string;
  /** The first admin token, as the server printed it. */
  token: string;
  stop(): Promise<void>;
}

/**
 * Starts the built `slipway server` (local executor, fresh data directory) on a free port, as
 * an operator would, and takes the admin token from what it prints. Needs `npm run build`
 * (which also builds the web UI into web/dist).
 */
export async function startSlipway(options: { env?: Record<string, string> } = {}): Promise<Slipway> {
  if (!existsSync(join(ROOT, 'web', 'dist', 'index.html'))) {
    throw new Error('web/dist is missing: run `npm run build` first');
  }
  const server = await ServerProcess.start({ executor: 'local', ...options });
  return {
    url: server.url,
    token: server.token,
    stop: async () => {
      // Cancelled first: a SIGTERM alone leaves running builds' steps for a successor.
      await server.shutdown();
      await rm(server.options.dataDir, { recursive: true, force: true });
      if (server.options.workspaceRoot)
        await rm(server.options.workspaceRoot, { recursive: true, force: true });
    },
  };
}

/**
 * A real git repository (file:// URL) with one branch per entry, each holding the given files
 * (`.slipway.yml` and friends) on top of an empty first commit.
 */
export async function gitRepo(
  branches: Record<string, Record<string, string>>,
): Promise<{ url: string; dir: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'slipway-web-repo-'));
  const git = (...args: string[]) =>
    run('git', ['-c', 'user.name=Slipway Test', '-c', 'user.email=test@slipway.invalid', ...args], {
      cwd: dir,
    });
  await git('init', '-q', '-b', 'main');
  await git('commit', '-q', '--allow-empty', '-m', 'start');
  for (const [branch, files] of Object.entries(branches)) {
    await git('checkout', '-q', '-B', branch, 'main');
    for (const [path, content] of Object.entries(files)) {
      await mkdir(dirname(join(dir, path)), { recursive: true });
      await writeFile(join(dir, path), content);
    }
    await git('add', '-A');
    await git('commit', '-q', '-m', `pipeline of ${branch}`);
  }
  await git('checkout', '-q', 'main');
  return { url: `file://${dir}`, dir };
}

/** Calls the REST API directly (test set-up that is not what a test is about). */
export async function api<T>(
  server: Slipway,
  method: string,
  path: string,
  body?: unknown,
  token = server.token,
): Promise<T> {
  const response = await fetch(`${server.url}/api/v1${path}`, {
    method,
    headers: {
      authorization: `Bearer ${token}`,
      ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
    },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${text}`);
  return (text === '' ? undefined : JSON.parse(text)) as T;
}

export interface Browser {
  context: BrowserContext;
  page: Page;
  close(): Promise<void>;
}

/** Headless Chromium with a fresh profile (user data dir), as the environment notes say. */
export async function launchBrowser(viewport = { width: 1280, height: 900 }): Promise<Browser> {
  const profile = await mkdtemp(join(tmpdir(), 'slipway-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    viewport,
    // No pulsing status icons or sliding bars: each of their frames is drawn in software here,
    // CPU that a loaded machine takes from the page under test (the UI honours the setting).
    reducedMotion: 'reduce',
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
    ],
  });
  const page = context.pages()[0] ?? (await context.newPage());
  return {
    context,
    page,
    close: async () => {
      await context.close();
      await rm(profile, { recursive: true, force: true });
    },
  };
}

/**
 * Saves `e2e/screenshots/<name>-light.png` and `-dark.png`, for a person to look at (no test
 * checks them), when `SLIPWAY_SCREENSHOTS=1`: two full-page screenshots cost seconds each on a
 * loaded machine.
 */
export async function screenshots(page: Page, name: string, { fullPage = true } = {}): Promise<void> {
  if (process.env.SLIPWAY_SCREENSHOTS !== '1') return;
  await mkdir(SCREENSHOTS, { recursive: true });
  for (const colorScheme of ['light', 'dark'] as const) {
    await page.emulateMedia({ colorScheme });
    await page.screenshot({
      path: join(SCREENSHOTS, `${name}-${colorScheme}.png`),
      fullPage,
      animations: 'disabled',
    });
  }
  await page.emulateMedia({ colorScheme: 'light' });
}

/** Types the token into the sign-in form and submits it. */
export async function signIn(page: Page, token: string): Promise<void> {
  await page.getByLabel('Token').fill(token);
  await page.getByRole('button', { name: 'Sign in' }).click();
}

/** Polls the API until `check` holds for the build (e.g. it is running). */
export async function waitForBuild<T extends { status: string }>(
  server: Slipway,
  id: number,
  check: (build: T) => boolean,
  limitMs = 60_000,
): Promise<T> {
  const deadline = Date.now() + limitMs;
  for (;;) {
    const build = await api<T>(server, 'GET', `/builds/${id}`);
    if (check(build)) return build;
    if (Date.now() > deadline) throw new Error(`build ${id} stayed ${build.status}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

/**
 * A scratch directory a build's steps can look into (the test drops a "go" file there). The
 * server runs local steps as its unprivileged build user, which cannot enter the 0700
 * directories `mkdtemp` makes for root.
 */
export async function scratchForSteps(prefix: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  await chmod(dir, 0o755);
  return dir;
}
