import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createProject, getProject, updateProject } from '../../store/index.js';
import { DIALECTS, openTestDatabase, type TestDatabase } from '../../store/testing/dialects.js';
import { rowsWhere } from '../../store/testing/inspect.js';
import { SecretCipher } from './cipher.js';
import {
  gitRepoUrl,
  redactRepoUrl,
  redactTargetUrl,
  sealStoredRepoCredentials,
  splitRepoCredentials,
  storeRepoUrl,
} from './repo-credentials.js';
import { listSecrets } from './store.js';

const TOKEN = 'glpat-NeverShownToAnyone42';

describe('repository URL credentials, as text', () => {
  it('splits http(s) userinfo only, up to the authority’s last @', () => {
    expect(splitRepoCredentials(`https://ci:${TOKEN}@git.example.com/a/b.git`)).toEqual({
      url: 'https://***@git.example.com/a/b.git',
      credentials: `ci:${TOKEN}`,
    });
    expect(splitRepoCredentials('https://u:p@ss@host/x?y=a@b').credentials).toBe('u:p@ss');
    expect(splitRepoCredentials('ssh://git@host/x.git')).toEqual({
      url: 'ssh://git@host/x.git',
      credentials: undefined,
    });
    expect(splitRepoCredentials('git@github.com:a/b.git').credentials).toBeUndefined();
    expect(splitRepoCredentials('/srv/git/a.git').credentials).toBeUndefined();
  });

  it('redacts what may be shown', () => {
    expect(redactRepoUrl(`http://u:${TOKEN}@h:8080/r`)).toBe('http://***@h:8080/r');
    expect(redactTargetUrl('https://hooks.slack.com/services/T0/B0/XXXX')).toBe(
      'https://hooks.slack.com/***',
    );
    expect(redactTargetUrl('not a url')).toBe('***');
  });
});

describe.each(DIALECTS)('repository URL credentials in the store (%s)', (dialect) => {
  let t: TestDatabase;
  const cipher = new SecretCipher(randomBytes(32));

  beforeAll(async () => {
    t = await openTestDatabase(dialect);
  });
  afterAll(async () => {
    await t.destroy();
  });

  it('are sealed, kept by ***, replaced by new ones and dropped by a URL without any', async () => {
    const project = await createProject(t.db, { slug: 'cred/round', repoUrl: 'https://h/x.git' });
    const stored = await storeRepoUrl(t.db, cipher, project.id, `https://ci:${TOKEN}@h/x.git`);
    expect(stored).toBe('https://***@h/x.git');
    const row = await rowsWhere(t.db, 'secrets', 'project_id', project.id);
    expect(JSON.stringify(row)).not.toContain(TOKEN);
    expect((await listSecrets(t.db, project.id)).map((s) => s.name)).toEqual(['.repo-credentials']);
    const p = await updateProject(t.db, project.id, { repoUrl: stored });
    expect(await gitRepoUrl(t.db, cipher, p)).toBe(`https://ci:${TOKEN}@h/x.git`);

    expect(await storeRepoUrl(t.db, cipher, project.id, 'https://***@h/x.git')).toBe('https://***@h/x.git');
    expect(await gitRepoUrl(t.db, cipher, p)).toBe(`https://ci:${TOKEN}@h/x.git`);

    await storeRepoUrl(t.db, cipher, project.id, 'https://ci:other-token-000@h/x.git');
    expect(await gitRepoUrl(t.db, cipher, p)).toBe('https://ci:other-token-000@h/x.git');

    expect(await storeRepoUrl(t.db, cipher, project.id, 'https://h/y.git')).toBe('https://h/y.git');
    expect(await listSecrets(t.db, project.id)).toEqual([]);
    // *** with nothing stored is no credential at all.
    expect(await storeRepoUrl(t.db, cipher, project.id, 'https://***@h/y.git')).toBe('https://h/y.git');
  });

  it('URLs stored with credentials before are sealed at start-up, once', async () => {
    const old = await createProject(t.db, { slug: 'cred/old', repoUrl: `https://ci:${TOKEN}@h/old.git` });
    expect(await sealStoredRepoCredentials(t.db, cipher)).toBe(1);
    const now = (await getProject(t.db, old.id))!;
    expect(now.repoUrl).toBe('https://***@h/old.git');
    expect(await gitRepoUrl(t.db, cipher, now)).toBe(`https://ci:${TOKEN}@h/old.git`);
    expect(await sealStoredRepoCredentials(t.db, cipher)).toBe(0);
  });
});
