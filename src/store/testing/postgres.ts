import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import pg from 'pg';

const START_SCRIPT = fileURLToPath(new URL('../../../scripts/start-postgres.sh', import.meta.url));

let resolved: Promise<string | undefined> | undefined;

/**
 * URL of a PostgreSQL server for the store tests, or undefined when there is none (then the
 * tests run on SQLite only, with a warning). `SLIPWAY_TEST_POSTGRES_URL` wins; `off` skips
 * PostgreSQL; otherwise `scripts/start-postgres.sh` starts (or reuses) a throwaway cluster.
 * With `CI=true` a missing PostgreSQL is an error: CI must never pass on SQLite alone.
 * Resolved once per test process.
 */
export function postgresUrlForTests(): Promise<string | undefined> {
  resolved ??= resolveUrl();
  return resolved;
}

async function resolveUrl(): Promise<string | undefined> {
  const ci = process.env.CI === 'true';
  const configured = process.env.SLIPWAY_TEST_POSTGRES_URL?.trim();
  try {
    if (configured === 'off') throw new Error('SLIPWAY_TEST_POSTGRES_URL=off');
    const url = configured || (await startLocalCluster());
    await ping(url);
    return url;
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    if (ci) throw new Error(`PostgreSQL is required for the store tests in CI but is not usable: ${reason}`);
    console.warn(`store tests: PostgreSQL not usable, testing SQLite only (${reason.split('\n')[0]})`);
    return undefined;
  }
}

async function startLocalCluster(): Promise<string> {
  // Minutes, not seconds: the first run may apt-get install PostgreSQL.
  const { stdout } = await promisify(execFile)(START_SCRIPT, { timeout: 600_000 });
  const url = stdout.trim().split('\n').pop();
  if (url === undefined || !url.startsWith('postgres://')) {
    throw new Error(`${START_SCRIPT} printed no URL`);
  }
  return url;
}

async function ping(url: string): Promise<void> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5000 });
  await client.connect();
  try {
    await client.query('select 1');
  } finally {
    await client.end();
  }
}

export interface ScratchDatabase {
  url: string;
  drop(): Promise<void>;
}

/**
 * Creates an empty database with a random name on the server of `baseUrl`, so that each
 * test file gets a fresh schema and files can run in parallel. `drop()` removes it, closing
 * any connection still open to it.
 */
export async function createScratchDatabase(baseUrl: string): Promise<ScratchDatabase> {
  const name = `slipway_t_${randomBytes(6).toString('hex')}`;
  await admin(baseUrl, `CREATE DATABASE ${name}`);
  const url = new URL(baseUrl);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    drop: () => admin(baseUrl, `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`),
  };
}

async function admin(baseUrl: string, statement: string): Promise<void> {
  const client = new pg.Client({ connectionString: baseUrl });
  await client.connect();
  try {
    await client.query(statement);
  } finally {
    await client.end();
  }
}
