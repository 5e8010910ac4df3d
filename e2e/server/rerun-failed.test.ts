import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Artifact, Build, BuildDetail, Step } from '../../src/server/api/dto.js';
import { TestRepo } from '../../src/server/testing/git-repo.js';
import { runCli } from '../cli-helpers.js';
import {
  buildFinished,
  cleanup,
  FINISHED,
  ServerProcess,
  tempDir,
  waitFor,
  type Api,
} from './server-harness.js';

/**
 * The steps append to files outside the workspace (`runs/<step>`): how often each ran, over
 * every build. `flaky` fails until `pass-flaky` exists there (after `compile`: a failure
 * cancels the steps of its stage that still run), `check` until `pass-check` does;
 * `check` also needs the artifact `compile` published, in its workspace. `build` waits for an
 * approval: a person gives it in the first build, the re-runs stand on it.
 */
const pipeline = (marks: string) => `stages:
  - name: build
    approval: true
    steps:
      - name: compile
        commands:
          - echo run >> ${marks}/compile
          - mkdir -p out && echo binary-v1 > out/app.bin && echo scratch > scratch.txt
        artifacts: [out/app.bin]
      - name: flaky
        needs: [compile]
        commands:
          - echo run >> ${marks}/flaky
          - 'test -f ${marks}/pass-flaky || { echo "flaky not yet"; exit 1; }'
  - name: test
    steps:
      - name: check
        commands:
          - echo run >> ${marks}/check
          - test "$(cat out/app.bin)" = binary-v1 && echo artifact there
          - test ! -e scratch.txt && echo no undeclared file
          - test -f ${marks}/pass-check
`;

const runs = async (marks: string, step: string) =>
  (await readFile(join(marks, step), 'utf8').catch(() => '')).split('\n').filter(Boolean).length;

const stepOf = (build: BuildDetail, stage: string, step: string): Step =>
  build.stages.find((s) => s.name === stage)!.steps.find((s) => s.name === step)!;

/**
 * Re-run failed through a real `slipway server` (local executor, SQLite, filesystem blobs): a
 * build whose `flaky` step fails, re-run failed: `compile` is reused (it does not run again, its
 * log and artifact are the new build's, the artifact is in the workspace for `check`, its
 * undeclared file is not), `flaky` runs and passes, `check` fails; re-run failed of that re-run:
 * both reused steps point at the build that ran them, `check` passes. Neither re-run asks for the
 * approval of `build` again (approved in the first build). A build that succeeded or
 * is still running cannot be re-run failed (409).
 */
describe('slipway server: re-run failed', () => {
  let server: ServerProcess;
  let api: Api;
  let repo: TestRepo;
  let marks: string;

  beforeAll(async () => {
    marks = await tempDir('rerun-marks');
    repo = await TestRepo.create({ '.slipway.yml': pipeline(marks) });
    server = await ServerProcess.start({ executor: 'local', buildUser: 'self' });
    api = server.api();
    await api.ok('POST', '/projects', { slug: 'acme/web', repoUrl: repo.url });
  });
  afterAll(async () => {
    await cleanup();
    if (repo !== undefined) await rm(repo.dir, { recursive: true, force: true });
  });

  it('reuses what succeeded, runs what failed and later stages; chains resolve to the first run', async () => {
    const first = await api.ok<Build>('POST', '/projects/acme/web/builds', { branch: 'main' });
    await waitFor('build 1 to wait for approval', async () =>
      (await api.build(first.id)).status === 'waiting' ? true : undefined,
    );
    await api.ok('POST', `/builds/${first.id}/approve`, { comment: 'ship it' });
    expect((await buildFinished(api, first.id)).status).toBe('failure');
    const failed = await api.build(first.id);
    expect(stepOf(failed, 'build', 'flaky').status).toBe('failure');
    expect(stepOf(failed, 'test', 'check').status).toBe('skipped');

    await writeFile(join(marks, 'pass-flaky'), '');
    const rerun = await runCli(['rerun', 'acme/web', String(first.number), '--failed'], {
      cwd: marks,
      env: { SLIPWAY_SERVER: server.url, SLIPWAY_TOKEN: server.token },
    });
    expect(rerun, rerun.stderr).toMatchObject({ code: 0 });
    expect(rerun.stdout).toContain(`(re-run of what failed in #${first.number})`);
    const second = (await api.allBuilds('acme/web')).at(-1)!;
    expect(second).toMatchObject({ rerunOf: first.id, rerunFailed: true, commit: failed.commit });
    // `build` is partly reused (compile) and partly runs again (flaky): approved in #1, not asked.
    const settled = await waitFor('build 2 to wait or finish', async () => {
      const build = await api.build(second.id);
      return build.status === 'waiting' || FINISHED.has(build.status) ? build : undefined;
    });
    expect(settled.status).toBe('failure');
    const detail2 = await api.build(second.id);
    expect(detail2.approvals).toEqual([]);
    const approvedBy = failed.approvals![0]!.by;
    const buildNotes2 = (await api.storedLog(second.id))
      .filter((l) => l.stage === 'build' && l.step === 'slipway')
      .map((l) => l.text);
    expect(buildNotes2).toEqual([
      `approval: approved in build #${first.number} by ${approvedBy} (re-running what failed: not asked again)`,
    ]);
    expect(stepOf(detail2, 'build', 'compile')).toMatchObject({
      status: 'success',
      reusedFrom: { buildId: first.id, number: first.number },
    });
    expect(stepOf(detail2, 'build', 'flaky')).toMatchObject({ status: 'success', reusedFrom: null });
    // check ran: the artifact was in its workspace (else it fails on its second command).
    expect(stepOf(detail2, 'test', 'check')).toMatchObject({ status: 'failure', reusedFrom: null });
    const checkLog2 = (await api.storedLog(second.id)).filter((l) => l.step === 'check').map((l) => l.text);
    expect(checkLog2).toEqual(['artifact there', 'no undeclared file', 'exited with code 1']);
    const shown = await runCli(['get', 'build', 'acme/web', String(second.number)], {
      cwd: marks,
      env: { SLIPWAY_SERVER: server.url, SLIPWAY_TOKEN: server.token, NO_COLOR: '1' },
    });
    expect(shown.stdout).toMatch(
      new RegExp(`\\n  re-run of +#${first.number} \\(what failed; the rest reused\\)\\n`),
    );
    expect(shown.stdout).toMatch(new RegExp(`compile +success .*reused from #${first.number}\\n`));
    expect(await runs(marks, 'compile')).toBe(1);
    expect(await runs(marks, 'flaky')).toBe(2);
    expect(await runs(marks, 'check')).toBe(1);

    // The reused step's log is the new build's, and its artifact downloads from it.
    const log2 = (await api.storedLog(second.id)).filter((l) => l.step === 'compile').map((l) => l.text);
    expect(log2[0]).toBe(
      `reused from build #${first.number}: the step succeeded there and does not run again; its log follows`,
    );
    expect(log2.length).toBe(stepOf(detail2, 'build', 'compile').logLines);
    expect(await api.ok<Artifact[]>('GET', `/builds/${second.id}/artifacts`)).toEqual([
      expect.objectContaining({ path: 'out/app.bin', step: 'build/compile' }),
    ]);
    const bytes = await api.request('GET', `/builds/${second.id}/artifacts/out/app.bin`);
    expect(bytes).toMatchObject({ status: 200, text: 'binary-v1\n' });

    // A re-run of the re-run: compile comes from the first build, flaky from the second.
    await writeFile(join(marks, 'pass-check'), '');
    const third = await api.ok<Build>('POST', `/builds/${second.id}/rerun`, { failedOnly: true });
    expect((await buildFinished(api, third.id)).status).toBe('success');
    const detail3 = await api.build(third.id);
    // Along the chain: #2 did not ask, #1 is where a person approved.
    expect(
      (await api.storedLog(third.id)).filter((l) => l.step === 'slipway' && l.stage === 'build'),
    ).toEqual([
      expect.objectContaining({
        text: `approval: approved in build #${first.number} by ${approvedBy} (re-running what failed: not asked again)`,
      }),
    ]);
    expect(stepOf(detail3, 'build', 'compile').reusedFrom).toEqual({
      buildId: first.id,
      number: first.number,
    });
    expect(stepOf(detail3, 'build', 'flaky').reusedFrom).toEqual({
      buildId: second.id,
      number: second.number,
    });
    expect(stepOf(detail3, 'test', 'check')).toMatchObject({ status: 'success', reusedFrom: null });
    expect([await runs(marks, 'compile'), await runs(marks, 'flaky'), await runs(marks, 'check')]).toEqual([
      1, 2, 2,
    ]);
    const bytes3 = await api.request('GET', `/builds/${third.id}/artifacts/out/app.bin`);
    expect(bytes3).toMatchObject({ status: 200, text: 'binary-v1\n' });

    // Nothing failed in a build that succeeded: 409 with the API's error shape.
    const refused = await api.request<{ error: { code: string; message: string } }>(
      'POST',
      `/builds/${third.id}/rerun`,
      { json: { failedOnly: true } },
    );
    expect(refused.status).toBe(409);
    expect(refused.body.error.code).toBe('conflict');
    expect(refused.body.error.message).toBe(`build #${third.number} succeeded: nothing failed to re-run`);
    const typo = await api.request('POST', `/builds/${third.id}/rerun`, { json: { failed: true } });
    expect(typo.status).toBe(400);
  });
});
