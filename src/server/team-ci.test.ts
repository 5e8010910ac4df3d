/**
 * Issue 5 end to end on the real machinery: the scheduler runs a build from a real git repo
 * on the local executor, with secrets from the sealed store, artifacts and logs on S3
 * (s3rver on loopback), the artifacts API serving them, and retention deleting all of it.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { S3BlobStore } from '../blobs/s3-blob-store.js';
import { startTestS3 } from '../blobs/testing/s3rver.js';
import type { TestS3 } from '../blobs/testing/s3rver.js';
import { createProject, getBuild, setHeadRepoFork } from '../store/index.js';
import type { Build, Project } from '../store/index.js';
import { DIALECTS } from '../store/testing/dialects.js';
import { createArtifactCollector } from './artifacts/collector.js';
import { registerArtifactRoutes } from './artifacts/routes.js';
import { BlobLogStore } from './logs/blob-log-store.js';
import { applyRetention } from './retention.js';
import type { DatabaseBuildControl } from './scheduler/build-control.js';
import { ExecutorIds } from './scheduler/executor-pool.js';
import type { Scheduler } from './scheduler/scheduler.js';
import { SecretCipher } from './secrets/cipher.js';
import { secretsFor } from './secrets/source.js';
import { setSecret } from './secrets/store.js';
import { TestRepo } from './testing/git-repo.js';
import { finishedBuild, localScheduler } from './testing/local-scheduler.js';
import { startPluginApi } from './testing/plugin-api.js';
import type { PluginApi } from './testing/plugin-api.js';

const TOKEN = 'dpl-9c2e55f0a1b7';

const PIPELINE = `
steps:
  - name: build
    env:
      DEPLOY_TOKEN: { from_secret: DEPLOY_TOKEN }
    commands:
      - mkdir -p dist
      - printf 'binary-bytes' > dist/app.tgz
      - ln -s /etc/passwd dist/passwd
      - 'echo "token is [$DEPLOY_TOKEN]"'
    artifacts: ['dist/**', '../escape.txt', /etc/shadow]
`;

describe.each(DIALECTS)('a team CI build with secrets, artifacts and S3 (%s)', (dialect) => {
  let api: PluginApi;
  let s3: TestS3;
  let scheduler: Scheduler;
  let control: DatabaseBuildControl;
  let logs: BlobLogStore;
  let blobs: S3BlobStore;
  let project: Project;
  let dataDir: string;
  let repo: TestRepo;
  const cipher = new SecretCipher(randomBytes(32));

  beforeAll(async () => {
    s3 = await startTestS3();
    blobs = new S3BlobStore({ bucket: s3.bucket, prefix: 'slipway', client: s3.client() });
    logs = new BlobLogStore(blobs);
    api = await startPluginApi(dialect, (db) => [(app) => registerArtifactRoutes(app, { db, blobs })]);
    dataDir = await mkdtemp(join(tmpdir(), 'slipway-team-'));
    ({ scheduler, control } = localScheduler(api.t.db, dataDir, {
      logs,
      owner: 'team-ci-test',
      ids: new ExecutorIds(`t${process.pid}`),
      secretsFor: secretsFor({ db: api.t.db, cipher }),
      artifacts: createArtifactCollector({ db: api.t.db, blobs }),
    }));
    repo = await TestRepo.create({ '.slipway.yml': PIPELINE });
    project = await createProject(api.t.db, { slug: `acme/team-${dialect}`, repoUrl: repo.url });
    await setSecret(api.t.db, cipher, project.id, { name: 'DEPLOY_TOKEN', value: TOKEN, allowForks: false });
  }, 120_000);

  afterAll(async () => {
    await scheduler?.stop();
    await api?.close();
    await s3?.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  const finished = (id: number): Promise<Build> => finishedBuild(api.t.db, id);
  const logText = async (id: number) => (await logs.read(id, 0)).map((l) => l.text);

  let push: Build;
  let forkPr: Build;

  it('runs a push build and a fork pull request build', async () => {
    push = await control.trigger(project, {
      branch: 'main',
      event: 'push',
      trigger: 'webhook',
      triggeredBy: 'github',
    });
    forkPr = await control.trigger(project, {
      branch: 'main',
      event: 'pull_request',
      trigger: 'webhook',
      triggeredBy: 'github',
    });
    await setHeadRepoFork(api.t.db, forkPr.id, true);
    scheduler.start();
    expect((await finished(push.id)).status).toBe('success');
    expect((await finished(forkPr.id)).status).toBe('success');
  }, 120_000);

  it('masks the secret in the stored log, and withholds it from the fork', async () => {
    const pushLog = await logText(push.id);
    expect(pushLog).toContain('token is [********]');
    expect(pushLog.join('\n')).not.toContain(TOKEN);
    const forkLog = await logText(forkPr.id);
    expect(forkLog).toContain('token is []');
    expect(forkLog).toContain('secret DEPLOY_TOKEN withheld: pull request from a fork');
  });

  it('publishes the artifact to S3, logging each rejected path', async () => {
    const log = await logText(push.id);
    expect(log).toContain('artifact dist/app.tgz published (12 B)');
    expect(log).toContain('artifact dist/passwd rejected: symlink to /etc/passwd, outside the workspace');
    expect(log).toContain(
      'artifact ../escape.txt rejected: pattern refused: it contains ".." and would leave the workspace',
    );
    expect(log).toContain(
      'artifact /etc/shadow rejected: pattern refused: it is an absolute path; artifacts are paths relative to the workspace',
    );
    const list = await api.call('viewer', { method: 'GET', url: `/api/v1/builds/${push.id}/artifacts` });
    const artifacts = list.json<{ path: string; step: string }[]>();
    expect(artifacts.map((a) => a.path)).toEqual(['dist/app.tgz']);
    expect(artifacts[0]!.step).toMatch(/\/build$/);
    const download = await api.call('viewer', {
      method: 'GET',
      url: `/api/v1/builds/${push.id}/artifacts/dist/app.tgz`,
    });
    expect(download.body).toBe('binary-bytes');
    const keys: string[] = [];
    const direct = new S3BlobStore({ bucket: s3.bucket, client: s3.client() });
    for await (const blob of direct.list(`slipway/artifacts/${push.id}/`)) keys.push(blob.key);
    expect(keys).toEqual([`slipway/artifacts/${push.id}/dist/app.tgz`]);
  });

  it('retention deletes the older build with its S3 logs and artifacts', async () => {
    const deleted = await applyRetention({ db: api.t.db, logs, blobs, defaults: { keepBuilds: 1 } });
    expect(deleted).toEqual([push.id]);
    expect(await getBuild(api.t.db, push.id)).toBeUndefined();
    expect(await logs.read(push.id, 0)).toEqual([]);
    const left: string[] = [];
    for await (const blob of blobs.list(`artifacts/${push.id}/`)) left.push(blob.key);
    for await (const blob of blobs.list(`logs/${push.id}/`)) left.push(blob.key);
    expect(left).toEqual([]);
    expect((await logText(forkPr.id)).length).toBeGreaterThan(0);
  });
});
