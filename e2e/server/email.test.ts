import { tmpdir } from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Build } from '../../src/server/api/dto.js';
import { SmtpPeer } from '../../src/server/email/testing/smtp-peer.js';
import { TestRepo } from '../../src/server/testing/git-repo.js';
import { runCli } from '../cli-helpers.js';
import { buildFinished, cleanup, ServerProcess, waitFor, type Api } from './server-harness.js';

const SECRET = 's3cr3t-value-e2e';
const SMTP_PASSWORD = 'smtp-pass-e2e-7f3a';
const PUBLIC_URL = 'http://ci.example.test';

const FAILING = `steps:
  - name: unit
    env:
      TOKEN: { from_secret: api_token }
    commands:
      - for i in $(seq 1 25); do echo "out $i"; done
      - echo "the token is $TOKEN"
      - exit 3
`;
const PASSING = 'steps:\n  - name: unit\n    commands: ["echo fine"]\n';

/**
 * E-mail through a real `slipway server` process (local executor) and a real SMTP server
 * started here that requires a login: the failing build's message with the step's stored,
 * masked tail, then the "fixed" one; the SMTP password appears nowhere.
 */
describe('slipway server: e-mail notifications (real SMTP server)', () => {
  const peer = new SmtpPeer({ auth: { user: 'ci', password: SMTP_PASSWORD } });
  let server: ServerProcess;
  let api: Api;
  let repo: TestRepo;

  beforeAll(async () => {
    const port = await peer.start();
    repo = await TestRepo.create({ '.slipway.yml': FAILING });
    server = await ServerProcess.start({
      executor: 'local',
      args: [
        '--smtp-host',
        '127.0.0.1',
        '--smtp-port',
        String(port),
        '--smtp-tls',
        'none',
        '--smtp-user',
        'ci',
        '--smtp-from',
        'Slipway <ci@example.com>',
        '--public-url',
        PUBLIC_URL,
      ],
      env: { SLIPWAY_SMTP_PASSWORD: SMTP_PASSWORD },
    });
    api = server.api();
    await api.ok('POST', '/projects', { slug: 'acme/web', repoUrl: repo.url });
    await api.ok('PUT', '/projects/acme/web/secrets/api_token', { value: SECRET });
  });
  afterAll(async () => {
    await cleanup();
    await peer.stop();
  });

  it('settings through the API, bad ones refused naming the field', async () => {
    expect(await api.ok('GET', '/projects/acme/web/email')).toEqual({
      when: 'never',
      toAuthor: true,
      recipients: [],
      smtpConfigured: true,
    });
    const bad = await api.request('PUT', '/projects/acme/web/email', {
      json: { when: 'fixed', recipients: ['team@example.com', 'not an address'] },
    });
    expect(bad.status).toBe(400);
    expect(bad.text).toMatch(/recipients/);
    expect(
      (await api.request('PUT', '/projects/acme/web/email', { json: { when: 'sometimes' } })).status,
    ).toBe(400);
    // The CLI sets them (admin token) and shows them back.
    const cli = (...args: string[]) =>
      runCli(['project', 'email', 'acme/web', ...args], {
        cwd: tmpdir(),
        env: { SLIPWAY_SERVER: server.url, SLIPWAY_TOKEN: server.token },
      });
    const set = await cli('--when', 'fixed', '--to', 'team@example.com');
    expect(set, set.stderr).toMatchObject({ code: 0 });
    expect(set.stdout).toBe('when: fixed\nto author: yes\nto: team@example.com\n');
    expect(await api.ok('GET', '/projects/acme/web/email')).toEqual({
      when: 'fixed',
      toAuthor: true,
      recipients: ['team@example.com'],
      smtpConfigured: true,
    });
    const wrong = await cli('--to', 'team@example.com,nobody');
    expect(wrong.code).toBe(2);
    expect(wrong.stderr).toMatch(/"nobody" is not an address/);
  });

  it("a failed build mails the author and the list with the link and the step's masked tail; the fix mails again", async () => {
    const failed = await api.ok<Build>('POST', '/projects/acme/web/builds', { branch: 'main' });
    expect((await buildFinished(api, failed.id)).status).toBe('failure');
    const [mail] = await peer.waitForMail(1);
    const sha = repo.git('rev-parse', 'HEAD');
    expect(mail!.headers.subject).toBe(
      `[slipway] acme/web #${failed.number} failed on main (${sha.slice(0, 7)})`,
    );
    // The author's address from the checkout (git's `Name <e-mail>`), then the list.
    expect([...mail!.to].sort()).toEqual(['team@example.com', 'test@example.com']);
    expect(mail!.text).toContain(`${PUBLIC_URL}/projects/acme/web/builds/${failed.number}\n`);
    expect(mail!.text).toContain('Reason:   step "unit" exited with code 3\n');
    expect(mail!.text).toContain('Last ');
    expect(mail!.text).toContain('    out 25\n');
    expect(mail!.text).toContain('    the token is ********\n');
    expect(mail!.text).not.toContain('    out 1\n');
    expect(mail!.raw).not.toContain(SECRET);

    await repo.commit({ '.slipway.yml': PASSING }, 'fix the build');
    const fixed = await api.ok<Build>('POST', '/projects/acme/web/builds', { branch: 'main' });
    expect((await buildFinished(api, fixed.id)).status).toBe('success');
    const second = (await peer.waitForMail(2))[1]!;
    expect(second.headers.subject).toBe(
      `[slipway] acme/web #${fixed.number} fixed on main (${repo.git('rev-parse', 'HEAD').slice(0, 7)})`,
    );
    expect(second.text).not.toContain('Last ');

    // The outcome is stored once the SMTP server answered the DATA, just after it kept the message.
    const deliveries = await waitFor('both deliveries stored', async () => {
      const list = await api.ok<{ build: number; outcome: string }[]>(
        'GET',
        '/projects/acme/web/email/deliveries',
      );
      return list.length >= 2 ? list : undefined;
    });
    expect(deliveries.map((d) => [d.build, d.outcome])).toEqual([
      [fixed.number, 'sent'],
      [failed.number, 'sent'],
    ]);
    expect(server.log).toContain('e-mail notifications through 127.0.0.1:');
    expect(server.log).not.toContain(SMTP_PASSWORD);
  });

  it('a password on the command line is refused before anything starts', async () => {
    const answer = await runCli(
      ['server', '--smtp-url', `smtp://ci:${SMTP_PASSWORD}@127.0.0.1:25`, '--smtp-from', 'ci@example.com'],
      { cwd: tmpdir() },
    );
    expect(answer).toMatchObject({ code: 2 });
    const stderr = answer.stderr;
    expect(stderr).toMatch(/--smtp-url holds a password.*SLIPWAY_SMTP_PASSWORD/);
    expect(stderr).not.toMatch(/\n\s+at /);
  });
});
