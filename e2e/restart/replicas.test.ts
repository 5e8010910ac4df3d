import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import type { Build } from '../../src/contract/index.js';
import { enginePlan, findTestEngine } from '../../src/executors/docker/testing/test-engine.js';
import { TestRepo } from '../../src/server/testing/git-repo.js';
import { createScratchDatabase, postgresUrlForTests } from '../../src/store/testing/postgres.js';
import { until } from '../../src/testing/until.js';
import { cleanup, FINISHED, ServerProcess, tempDir } from '../server/server-harness.js';
import { containersOf, GATED_PIPELINE, openGate } from './engine.js';

const found = await findTestEngine();
const plan = enginePlan(found);
if (plan.action === 'skip') console.warn(plan.reason);
if (plan.action === 'fail') {
  describe('replicas on a container engine', () => {
    it('has a container engine to test against', () => {
      throw new Error(plan.reason);
    });
  });
}
const baseUrl = await postgresUrlForTests();

const PROJECT = `twin/gate-${process.pid.toString(36)}${Date.now().toString(36)}`;

/** The lease of a build, as the replicas see it in the shared database (the API does not show it). */
async function lease(
  url: string,
  buildId: number,
): Promise<{ owner: string | null; expiresAt: number | null }> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const result = await client.query<{ lease_owner: string | null; lease_expires_at: string | null }>(
      'select lease_owner, lease_expires_at from builds where id = $1',
      [buildId],
    );
    const row = result.rows[0];
    return {
      owner: row?.lease_owner ?? null,
      expiresAt: row?.lease_expires_at == null ? null : Number(row.lease_expires_at),
    };
  } finally {
    await client.end();
  }
}

/**
 * Two `slipway server` replicas (docker executor on Podman) on one PostgreSQL database, with a
 * short lease: `kill -9` of the replica running a build; the other one's periodic reconcile
 * takes the expired lease over and re-attaches to the step that outlived its server.
 */
describe.skipIf(plan.action !== 'run' || baseUrl === undefined)(
  'slipway server: a replica takes over the builds of a dead one',
  () => {
    const dropped: (() => Promise<void>)[] = [];
    afterAll(async () => {
      await cleanup();
      for (const drop of dropped) await drop();
    });

    it(
      're-attaches to the running step: the build ends success, every line once, no container left',
      { timeout: 240_000 },
      async () => {
        const database = await createScratchDatabase(baseUrl!);
        dropped.push(() => database.drop());
        const blobs = await tempDir('replica-blobs');
        const engine = found.available ? { engine: found.engine.address } : {};
        const replica = (replicaId: string) => ({
          executor: 'docker' as const,
          database: database.url,
          blobs,
          replicaId,
          ...engine,
          env: { SLIPWAY_LEASE: '4s', SLIPWAY_RECONCILE_INTERVAL: '1s' },
        });
        // One at a time: the first start migrates the database and prints the admin token.
        const a = await ServerProcess.start(replica('replica-a'));
        const repo = await TestRepo.create({ '.slipway.yml': GATED_PIPELINE() });
        await a.api().ok('POST', '/projects', { slug: PROJECT, repoUrl: repo.url });
        const build = await a.api().ok<Build>('POST', `/projects/${PROJECT}/builds`, { branch: 'main' });
        await until(async () => {
          const log = await a.api().storedLog(build.id);
          return log.some((l) => l.text === 'line 3');
        }, 120_000);
        // B starts while A runs the build: it leaves a build with a live lease alone.
        const b = await ServerProcess.start(replica('replica-b'), a.token);
        const held = await lease(database.url, build.id);
        const readAt = Date.now();
        expect(held.owner).toBe('replica-a');
        // `--lease 4s` took effect: a renewal (before the read) sets the expiry 4 s after it.
        expect(held.expiresAt! - readAt).toBeLessThanOrEqual(4_000);

        await a.kill9();
        await until(async () => (await lease(database.url, build.id)).owner === 'replica-b', 60_000);
        await openGate(PROJECT);
        const done = await until(async () => {
          const now = await b.api().build(build.id);
          return FINISHED.has(now.status) ? now : undefined;
        }, 120_000);

        expect(`${done.status} ${done.reason?.message ?? ''}`.trim()).toBe('success');
        const log = await b.api().storedLog(build.id);
        expect(log.map((l) => l.seq)).toEqual(log.map((_, i) => i + 1));
        expect(log.filter((l) => l.step === 'work' && l.stream !== 'system').map((l) => l.text)).toEqual(
          [1, 2, 3, 4, 5, 6].map((i) => `line ${i}`),
        );
        const notes = log.filter((l) => l.text.startsWith('taken over from replica-a:')).map((l) => l.text);
        expect(notes).toEqual([
          expect.stringMatching(
            /^taken over from replica-a: re-attached to step default\/work \(container [0-9a-f]{12}\) at line \d+$/,
          ),
        ]);
        await until(async () => (await containersOf(PROJECT)).length === 0, 60_000);
      },
    );
  },
);
