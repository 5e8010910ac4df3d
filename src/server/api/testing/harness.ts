import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { InjectOptions, LightMyRequestResponse } from 'fastify';
import { createToken } from '../../../store/index.js';
import type { DialectName, TokenRole } from '../../../store/index.js';
import { openTestDatabase } from '../../../store/testing/dialects.js';
import type { TestDatabase } from '../../../store/testing/dialects.js';
import { countRows } from '../../../store/testing/inspect.js';
import { FsLogStore } from '../../logs/fs-log-store.js';
import { LogHub } from '../../logs/log-hub.js';
import { Metrics } from '../../metrics.js';
import { DatabaseBuildControl } from '../../scheduler/build-control.js';
import { buildApp } from '../app.js';
import type { AppDeps } from '../app.js';
import type { App } from '../context.js';

/** Tables whose rows the "nothing written" checks count. */
const TABLES = ['projects', 'builds', 'stages', 'steps', 'locks', 'tokens'] as const;

/**
 * A real API over a real database of one dialect, a filesystem log store and the real
 * `DatabaseBuildControl` (no scheduler runs: queued builds stay queued unless a test moves
 * them), with one token per role.
 */
export interface TestApi {
  t: TestDatabase;
  app: App;
  logs: FsLogStore;
  hub: LogHub;
  metrics: Metrics;
  tokens: Record<TokenRole, string>;
  /** `Authorization` header of a role's token. */
  auth(role: TokenRole): Record<string, string>;
  /** `app.inject` as a role (or without a token when `role` is null). */
  call(role: TokenRole | null, options: InjectOptions): Promise<LightMyRequestResponse>;
  /** Rows per table, for "a rejected request wrote nothing". */
  rowCounts(): Promise<Record<string, number>>;
  close(): Promise<void>;
}

/**
 * `overrides` may be a function of the test database, for plugins that need it (routes
 * registered with `apiPlugins`/`rootPlugins` are built before this returns).
 */
export async function startTestApi(
  dialect: DialectName,
  overrides: Partial<AppDeps> | ((db: TestDatabase['db']) => Partial<AppDeps>) = {},
): Promise<TestApi> {
  const t = await openTestDatabase(dialect);
  const logDir = await mkdtemp(join(tmpdir(), 'slipway-api-logs-'));
  const logs = new FsLogStore(logDir);
  const hub = new LogHub();
  const metrics = new Metrics({ db: t.db, processMetrics: false });
  const app = buildApp({
    db: t.db,
    control: new DatabaseBuildControl(t.db),
    logs,
    hub,
    metrics,
    globalLimit: 4,
    ...(typeof overrides === 'function' ? overrides(t.db) : overrides),
  });
  await app.ready();
  const tokens = {} as Record<TokenRole, string>;
  for (const role of ['admin', 'member', 'viewer'] as const) {
    tokens[role] = (await createToken(t.db, { name: `${role}-token`, role })).token;
  }
  const auth = (role: TokenRole) => ({ authorization: `Bearer ${tokens[role]}` });
  return {
    t,
    app,
    logs,
    hub,
    metrics,
    tokens,
    auth,
    call: (role, options) =>
      app.inject({ ...options, headers: { ...(role === null ? {} : auth(role)), ...options.headers } }),
    rowCounts: async () => {
      const counts: Record<string, number> = {};
      for (const table of TABLES) {
        counts[table] = await countRows(t.db, table);
      }
      return counts;
    },
    close: async () => {
      await app.close();
      await t.destroy();
      await rm(logDir, { recursive: true, force: true });
    },
  };
}
