import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  createBuild,
  createBuildRecords,
  createProject,
  getBuild,
  getBuildRecords,
  setBuildStatus,
  updateStep,
  type Project,
  type Status,
} from '../../store/index.js';
import { getEmailSettings, listEmailDeliveries, setEmailSettings } from '../../store/email.js';
import { DIALECTS, openTestDatabase, type TestDatabase } from '../../store/testing/dialects.js';
import { FsLogStore } from '../logs/fs-log-store.js';
import type { StoredLogLine } from '../logs/types.js';
import { createNotifierHub } from '../notify/hub.js';
import { EmailError, EmailNotifier } from './email-notifier.js';
import { createSmtpTransport } from './smtp.js';
import { SmtpPeer } from './testing/smtp-peer.js';

const SHA = '6113728f27ae82c7b1a177c8d03f9e96e0adf246';
const BASE = 'https://ci.example.com';

describe.each(DIALECTS)('e-mail notifier (%s, real SMTP server)', (dialect) => {
  const peer = new SmtpPeer();
  let port: number;
  let t: TestDatabase;
  let dir: string;
  let logs: FsLogStore;
  let project: Project;

  beforeAll(async () => {
    port = await peer.start();
    t = await openTestDatabase(dialect);
    dir = await mkdtemp(join(tmpdir(), 'slipway-email-'));
    logs = new FsLogStore(dir);
    project = await createProject(t.db, { slug: 'acme/web', repoUrl: 'https://github.com/acme/web.git' });
  });
  afterAll(async () => {
    await peer.stop();
    await t.destroy();
    await rm(dir, { recursive: true, force: true });
  });
  beforeEach(() => {
    peer.received.length = 0;
    peer.refusals.length = 0;
    peer.configure({});
  });

  const notifier = (options: { port?: number; password?: string; retries?: number } = {}) =>
    new EmailNotifier({
      db: t.db,
      logs,
      transport: createSmtpTransport({
        host: '127.0.0.1',
        port: options.port ?? port,
        tls: 'none',
        from: 'Slipway <ci@example.com>',
        ...(options.password !== undefined && { user: 'ci', password: options.password }),
      }),
      from: 'Slipway <ci@example.com>',
      retries: options.retries ?? 2,
      retryDelayMs: 10,
      ...(options.password !== undefined && { redact: [options.password] }),
    });

  /**
   * A finished build of `branch`: stage `test` with steps `lint` (passes) and `unit` (ends
   * `status`), each with `lines` lines of output interleaved in the stored log.
   */
  async function finished(
    status: Status,
    options: { branch?: string; lines?: number; author?: string | null } = {},
  ) {
    const build = await createBuild(t.db, {
      projectId: project.id,
      branch: options.branch ?? 'main',
      event: 'push',
      trigger: 'webhook',
      commitSha: SHA,
      commitAuthor: options.author === undefined ? 'Ada Lovelace <ada@example.com>' : options.author,
      triggeredBy: 'github:ada',
    });
    const [stage] = await createBuildRecords(t.db, build.id, [{ name: 'test', steps: ['lint', 'unit'] }]);
    const [lint, unit] = stage!.steps;
    await updateStep(t.db, lint!.id, { status: 'success', exitCode: 0 });
    await updateStep(t.db, unit!.id, { status, exitCode: status === 'success' ? 0 : 1 });
    const stored: StoredLogLine[] = [];
    for (let i = 1; i <= (options.lines ?? 0); i++) {
      for (const step of ['lint', 'unit'])
        stored.push({
          seq: stored.length + 1,
          stage: 'test',
          step,
          stream: 'stdout',
          n: i,
          time: 0,
          text: `${step} line ${i}`,
        });
    }
    await logs.append(build.id, stored);
    await setBuildStatus(t.db, build.id, ['queued'], status, {
      ...(status !== 'success' && {
        reason: { code: 'exit_code', message: 'step test/unit failed with exit code 1' },
      }),
    });
    const done = (await getBuild(t.db, build.id))!;
    return {
      build: done,
      notice: {
        event: 'finished' as const,
        build: done,
        project,
        url: `${BASE}/projects/acme/web/builds/${done.number}`,
      },
    };
  }

  it("mails a failure to the author and the list: subject, link, reason, the failing step's last 20 stored lines", async () => {
    await setEmailSettings(t.db, project.id, {
      when: 'failure',
      toAuthor: true,
      recipients: ['team@example.com', 'ADA@example.com'],
    });
    const { build, notice } = await finished('failure', { lines: 30 });
    // A secret the step printed is stored masked; the mail quotes the stored line.
    await logs.append(build.id, [
      {
        seq: 61,
        stage: 'test',
        step: 'unit',
        stream: 'stderr',
        n: 31,
        time: 0,
        text: 'token=******** rejected',
      },
    ]);
    await notifier().buildFinished(notice);

    const [mail] = await peer.waitForMail(1);
    expect(mail!.to).toEqual(['team@example.com', 'ADA@example.com']);
    expect(mail!.from).toBe('ci@example.com');
    expect(mail!.headers.subject).toBe(`[slipway] acme/web #${build.number} failed on main (6113728)`);
    expect(mail!.headers.from).toBe('Slipway <ci@example.com>');
    expect(mail!.headers['content-type']).toMatch(/^text\/plain/);
    const text = mail!.text;
    expect(text).toContain(`Build:    ${BASE}/projects/acme/web/builds/${build.number}\n`);
    expect(text).toContain('Reason:   step test/unit failed with exit code 1\n');
    expect(text).toContain('Author:   Ada Lovelace <ada@example.com>\n');
    const tail = text.slice(text.indexOf('Last 20 line(s) of test/unit:'));
    const quoted = tail.split('\n').filter((l) => l.startsWith('    '));
    expect(quoted).toEqual([
      ...Array.from({ length: 19 }, (_, i) => `    unit line ${i + 12}`),
      '    token=******** rejected',
    ]);
    expect(text).not.toContain('lint line');
    expect(await listEmailDeliveries(t.db, project.id, { buildId: build.id })).toMatchObject([
      { outcome: 'sent', attempts: 1, recipients: ['team@example.com', 'ADA@example.com'], message: null },
    ]);
  });

  it("'fixed' mails the first success after a failure or error on the same branch, and failures", async () => {
    await setEmailSettings(t.db, project.id, {
      when: 'fixed',
      toAuthor: false,
      recipients: ['team@example.com'],
    });
    const n = notifier();
    const sent = async (status: Status, branch = 'fix') => {
      const before = peer.received.length;
      await n.buildFinished((await finished(status, { branch })).notice);
      return peer.received.length > before ? peer.received[peer.received.length - 1]!.headers.subject : null;
    };
    expect(await sent('success')).toBeNull(); // nothing failed before it
    expect(await sent('error')).toMatch(/ errored on fix /);
    // A cancelled build says nothing about the code: the success after it is still a fix.
    expect(await sent('cancelled')).toBeNull();
    expect(await sent('success')).toMatch(/^\[slipway\] acme\/web #\d+ fixed on fix \(6113728\)$/);
    expect(await sent('success')).toBeNull(); // already fixed
    expect(await sent('failure', 'other')).toMatch(/ failed on other /);
    expect(await sent('success', 'fix')).toBeNull(); // the failure was on another branch
    expect(await sent('success', 'other')).toMatch(/ fixed on other /);

    // 'failure' mails no success, fixed or not; 'never' and no settings mail nothing.
    await setEmailSettings(t.db, project.id, {
      when: 'failure',
      toAuthor: false,
      recipients: ['team@example.com'],
    });
    expect(await sent('failure', 'third')).toMatch(/ failed on third /);
    expect(await sent('success', 'third')).toBeNull();
    await setEmailSettings(t.db, project.id, {
      when: 'never',
      toAuthor: false,
      recipients: ['team@example.com'],
    });
    expect(await sent('failure', 'third')).toBeNull();
    expect(await getEmailSettings(t.db, project.id)).toEqual({
      when: 'never',
      toAuthor: false,
      recipients: ['team@example.com'],
    });
  });

  it('nobody to mail (no author address, empty list): stored as skipped with why', async () => {
    await setEmailSettings(t.db, project.id, { when: 'always', toAuthor: true, recipients: [] });
    const { build, notice } = await finished('failure', { author: 'Ada Lovelace' });
    await notifier().buildFinished(notice);
    expect(peer.received).toEqual([]);
    expect(await listEmailDeliveries(t.db, project.id, { buildId: build.id })).toMatchObject([
      {
        outcome: 'skipped',
        attempts: 0,
        message: expect.stringMatching(/commit author's e-mail address is not known/) as unknown,
      },
    ]);
  });

  it('a refusing server (550, no listener, bad login): retried, given up with its answer; the build unchanged', async () => {
    await setEmailSettings(t.db, project.id, {
      when: 'failure',
      toAuthor: false,
      recipients: ['team@example.com'],
    });

    peer.configure({ refuse: { code: 550, text: 'Mailbox unavailable' } });
    const refused = await finished('failure');
    const errors: { error: unknown; notifier?: string }[] = [];
    const email = notifier();
    const hub = createNotifierHub(t.db, {
      baseUrl: BASE,
      extra: () => [email],
      onError: (error, context) =>
        errors.push({ error, ...(context.notifier !== undefined && { notifier: context.notifier }) }),
    });
    hub.onBuildFinished(refused.build.id);
    await hub.idle();
    await hub.close();
    expect(peer.refusals).toEqual([
      'rcpt team@example.com',
      'rcpt team@example.com',
      'rcpt team@example.com',
    ]);
    expect(peer.received).toEqual([]);
    expect(errors).toHaveLength(1);
    expect(errors[0]!.notifier).toBe('e-mail');
    expect(errors[0]!.error).toBeInstanceOf(EmailError);
    expect(String(errors[0]!.error)).toMatch(
      /team@example\.com: the SMTP server did not take the message after 3 attempt\(s\): .*550 Mailbox unavailable/,
    );
    expect(await listEmailDeliveries(t.db, project.id, { buildId: refused.build.id })).toMatchObject([
      {
        outcome: 'failed',
        attempts: 3,
        message: expect.stringMatching(/550 Mailbox unavailable/) as unknown,
      },
    ]);
    expect(await getBuild(t.db, refused.build.id)).toEqual(refused.build);
    expect((await getBuildRecords(t.db, refused.build.id))[0]!.steps.map((s) => s.status)).toEqual([
      'success',
      'failure',
    ]);

    // Nothing listens on a stopped server's port.
    const gone = new SmtpPeer();
    const gonePort = await gone.start();
    await gone.stop();
    const unreachable = await finished('failure');
    await expect(notifier({ port: gonePort, retries: 1 }).buildFinished(unreachable.notice)).rejects.toThrow(
      /after 2 attempt\(s\): .*ECONNREFUSED/,
    );

    // A login the server refuses: its answer is told, never the password.
    peer.configure({ auth: { user: 'ci', password: 'right-horse-battery' } });
    const badLogin = await finished('failure');
    const failure = await notifier({ password: 'wrong-horse-battery', retries: 0 })
      .buildFinished(badLogin.notice)
      .catch((e: unknown) => e);
    expect(String(failure)).toMatch(/after 1 attempt\(s\): .*535/);
    expect(peer.refusals).toContain('auth ci');
    const [stored] = await listEmailDeliveries(t.db, project.id, { buildId: badLogin.build.id });
    expect(`${String(failure)} ${stored!.message}`).not.toContain('wrong-horse-battery');

    // The right password: delivered.
    const good = await finished('failure');
    await notifier({ password: 'right-horse-battery' }).buildFinished(good.notice);
    expect((await peer.waitForMail(1))[0]!.to).toEqual(['team@example.com']);
  });
});
