import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { claimNextBuilds } from '../store/index.js';
import { DIALECTS, openTestDatabase } from '../store/testing/dialects.js';
import type { TestDatabase } from '../store/testing/dialects.js';
import { makeBuild, makeProject } from '../store/testing/fixtures.js';
import { openDatabase } from '../store/index.js';
import { Metrics } from './metrics.js';

/** The value of an unlabelled sample in Prometheus text. */
function sample(text: string, name: string): number {
  const match = new RegExp(`^${name} (\\S+)$`, 'm').exec(text);
  if (match === null) throw new Error(`${name} not in the scrape`);
  return Number(match[1]);
}

describe.each(DIALECTS)('Metrics (%s)', (dialect) => {
  let t: TestDatabase;
  beforeAll(async () => {
    t = await openTestDatabase(dialect);
  });
  afterAll(async () => {
    await t?.destroy();
  });

  it('reads queue depth and running builds from the store at scrape time', async () => {
    const metrics = new Metrics({ db: t.db, processMetrics: false });
    const project = await makeProject(t.db);
    await makeBuild(t.db, project.id, { branch: 'a' });
    await makeBuild(t.db, project.id, { branch: 'b' });
    await makeBuild(t.db, project.id, { branch: 'c' });
    let scrape = (await metrics.scrape()).body;
    expect(sample(scrape, 'slipway_queue_depth')).toBe(3);
    expect(sample(scrape, 'slipway_running_builds')).toBe(0);
    await claimNextBuilds(t.db, 'test-owner', 60_000, { global: 2 });
    scrape = (await metrics.scrape()).body;
    expect(sample(scrape, 'slipway_queue_depth')).toBe(1);
    expect(sample(scrape, 'slipway_running_builds')).toBe(2);
  });
});

describe('Metrics', () => {
  it('counts build durations by status, step outcomes and webhook rejections', async () => {
    const metrics = new Metrics({ processMetrics: false });
    metrics.buildFinished('success', 3);
    metrics.buildFinished('success', 400);
    metrics.buildFinished('failure', 0.5);
    metrics.buildFinished('cancelled', null);
    metrics.stepFinished('success');
    metrics.stepFinished('success');
    metrics.webhookRejected('gitlab', 'bad_token');
    const { body, contentType } = await metrics.scrape();
    expect(contentType).toMatch(/^text\/plain/);
    expect(sample(body, 'slipway_build_duration_seconds_count\\{status="success"\\}')).toBe(2);
    expect(sample(body, 'slipway_build_duration_seconds_bucket\\{le="5",status="success"\\}')).toBe(1);
    expect(sample(body, 'slipway_build_duration_seconds_count\\{status="failure"\\}')).toBe(1);
    expect(body).not.toContain('status="cancelled"');
    expect(sample(body, 'slipway_step_outcomes_total\\{status="success"\\}')).toBe(2);
    expect(sample(body, 'slipway_webhook_rejected_total\\{forge="gitlab",reason="bad_token"\\}')).toBe(1);
  });

  it('includes process metrics by default, in a registry of its own', async () => {
    const a = new Metrics();
    const b = new Metrics();
    expect((await a.scrape()).body).toContain('process_cpu_user_seconds_total');
    a.stepFinished('failure');
    expect((await b.scrape()).body).not.toContain('slipway_step_outcomes_total{status="failure"} 1');
  });

  it('reports NaN for the store gauges instead of failing the scrape when the database is gone', async () => {
    const db = openDatabase(':memory:');
    await db.destroy();
    const errors: unknown[] = [];
    const metrics = new Metrics({ db, processMetrics: false, onCollectError: (e) => errors.push(e) });
    const { body } = await metrics.scrape();
    expect(sample(body, 'slipway_queue_depth')).toBeNaN();
    expect(errors.length).toBe(2);
  });
});
