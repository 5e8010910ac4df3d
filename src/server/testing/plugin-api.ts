import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { InjectOptions, LightMyRequestResponse } from 'fastify';
import type { Kysely } from 'kysely';
import { createToken } from '../../store/index.js';
import type { Database, DialectName, TokenRole } from '../../store/index.js';
import { openTestDatabase } from '../../store/testing/dialects.js';
import type { TestDatabase } from '../../store/testing/dialects.js';
import { buildApp } from '../api/app.js';
import type { App } from '../api/context.js';
import { FsLogStore } from '../logs/fs-log-store.js';
import { LogHub } from '../logs/log-hub.js';
import { Metrics } from '../metrics.js';
import { DatabaseBuildControl } from '../scheduler/build-control.js';

/** The real API with extra `/api/v1` plugins that need the database, over one dialect, with a token per role. */
export interface PluginApi {
  t: TestDatabase;
  app: App;
  logs: FsLogStore;
  tokens: Record<TokenRole, string>;
  call(role: TokenRole | null, options: InjectOptions): Promise<LightMyRequestResponse>;
  close(): Promise<void>;
}

export async function startPluginApi(
  dialect: DialectName,
  plugins: (db: Kysely<Database>) => Array<(api: App) => void>,
): Promise<PluginApi> {
  const t = await openTestDatabase(dialect);
  const logDir = await mkdtemp(join(tmpdir(), 'slipway-plugin-api-'));
  const logs = new FsLogStore(logDir);
  const app = buildApp({
    db: t.db,
    control: new DatabaseBuildControl(t.db),
    logs,
    hub: new LogHub(),
    metrics: new Metrics({ db: t.db, processMetrics: false }),
    globalLimit: 2,
    apiPlugins: plugins(t.db),
  });
  await app.ready();
  const tokens = {} as Record<TokenRole, string>;
  for (const role of ['admin', 'member', 'viewer'] as const)
    tokens[role] = (await createToken(t.db, { name: `${role}-token`, role })).token;
  return {
    t,
    app,
    logs,
    tokens,
    call: (role, options) =>
      app.inject({
        ...options,
        headers: {
          ...(role === null ? {} : { authorization: `Bearer ${tokens[role]}` }),
          ...options.headers,
        },
      }),
    close: async () => {
      await app.close();
      await t.destroy();
      await rm(logDir, { recursive: true, force: true });
    },
  };
}
