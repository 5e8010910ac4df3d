import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  claimNextBuilds,
  createBuild,
  createProject,
  setBuildStatus,
  type Project,
} from '../../store/index.js';
import { openTestDatabase, type TestDatabase } from '../../store/testing/dialects.js';
import { createNotifierHub } from './hub.js';
import type { BuildNotice, Notifier } from './types.js';

/** A notifier that records every notice; `gate` holds `buildStarted` until released. */
class Recorder implements Notifier {
  readonly name = 'recorder';
  readonly notices: BuildNotice[] = [];
  gate: Promise<void> | undefined;
  buildQueued(notice: BuildNotice) {
    this.notices.push(notice);
    return Promise.resolve();
  }
  async buildStarted(notice: BuildNotice) {
    this.notices.push(notice);
    await this.gate;
  }
  stageChanged(notice: BuildNotice) {
    this.notices.push(notice);
    return Promise.resolve();
  }
  buildFinished(notice: BuildNotice) {
    this.notices.push(notice);
    return Promise.resolve();
  }
}

describe('notifier hub: a build’s moments in bursts', () => {
  let t: TestDatabase;
  let project: Project;
  beforeAll(async () => {
    t = await openTestDatabase('sqlite');
    project = await createProject(t.db, { slug: 'acme/hub', repoUrl: 'https://example.com/acme/hub.git' });
  });
  afterAll(async () => {
    await t?.destroy();
  });

  const runningBuild = async (branch: string) => {
    const b = await createBuild(t.db, {
      projectId: project.id,
      branch,
      event: 'push',
      trigger: 'webhook',
    });
    await claimNextBuilds(t.db, 'hub-test', 60_000, { global: 10 });
    await setBuildStatus(t.db, b.id, ['pending'], 'running', { ifLeaseOwner: 'hub-test' });
    return b;
  };

  it('moments that come together are announced in order from one read of the build', async () => {
    const recorder = new Recorder();
    const hub = createNotifierHub(t.db, { extra: () => [recorder] });
    const b = await runningBuild('one');
    hub.onBuildQueued(b.id);
    hub.onBuildStarted(b.id);
    hub.onStageChanged(b.id);
    hub.onStageChanged(b.id);
    hub.onBuildFinished(b.id);
    await hub.idle();
    expect(recorder.notices.map((n) => n.event)).toEqual(['queued', 'started', 'stage', 'stage', 'finished']);
    const first = recorder.notices[0]!;
    for (const notice of recorder.notices) {
      expect(notice.build).toBe(first.build);
      expect(notice.project).toBe(first.project);
    }
    expect(first.build).toMatchObject({ id: b.id, status: 'running' });
    expect(first.project).toMatchObject({ id: project.id, slug: 'acme/hub' });
    expect(first.approvals).toEqual([]);
  });

  it('a moment that comes while others are announced gets a read of its own, after them', async () => {
    const recorder = new Recorder();
    let release!: () => void;
    recorder.gate = new Promise((resolve) => (release = resolve));
    const hub = createNotifierHub(t.db, { extra: () => [recorder] });
    const b = await runningBuild('two');
    hub.onBuildStarted(b.id);
    // Wait until the start is being announced (held by the gate), then end the build.
    while (recorder.notices.length === 0) await new Promise((resolve) => setImmediate(resolve));
    await setBuildStatus(t.db, b.id, ['running'], 'failure', {
      reason: { code: 'exit_code', message: 'unit failed' },
    });
    hub.onBuildFinished(b.id);
    release();
    await hub.idle();
    expect(recorder.notices.map((n) => [n.event, n.build.status])).toEqual([
      ['started', 'running'],
      ['finished', 'failure'],
    ]);
  });
});
