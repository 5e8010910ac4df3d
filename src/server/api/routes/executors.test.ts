import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalExecutor } from '../../../executors/local/local-executor.js';
import { ExecutorPool } from '../../scheduler/executor-pool.js';
import type { ExecutorInfo } from '../dto.js';
import { startTestApi } from '../testing/harness.js';
import type { TestApi } from '../testing/harness.js';
import { executorRoutes } from './executors.js';

describe('GET /api/v1/executors', () => {
  let api: TestApi;
  let dir: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'slipway-executors-'));
    // As `slipway server --executor local` sets it up (local only when chosen).
    const pool = new ExecutorPool(
      new Map([['local', new LocalExecutor({ tmpRoot: dir })]]),
      new Map([
        ['docker', 'the server was started with --executor local'],
        [
          'kubernetes',
          'builds run as Kubernetes pods only when the server is started with --executor kubernetes',
        ],
      ]),
      'local',
      new Map([['local', 'host processes as user slipway-build (uid 999)']]),
    );
    api = await startTestApi('sqlite', { apiPlugins: [(app) => executorRoutes(app, pool)] });
  });
  afterAll(async () => {
    await api?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('lists every executor, usable or not with why, the default first (any signed-in role)', async () => {
    const res = await api.call('viewer', { url: '/api/v1/executors' });
    expect(res.statusCode, res.body).toBe(200);
    const list = res.json<ExecutorInfo[]>();
    expect(list.map((e) => [e.name, e.usable, e.isDefault])).toEqual([
      ['local', true, true],
      ['docker', false, false],
      ['kubernetes', false, false],
    ]);
    expect(list[0]!.detail).toBe('host processes as user slipway-build (uid 999)');
    expect(list[1]!.detail).toMatch(/--executor local/);
    expect((await api.call(null, { url: '/api/v1/executors' })).statusCode).toBe(401);
  });
});
