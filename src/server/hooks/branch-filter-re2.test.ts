/**
 * A branch filter stored before filters ran on RE2 (by an older Slipway, which accepted
 * anything JavaScript's RegExp did) may be one RE2 cannot run. Pushes to such a project must
 * neither crash nor build: they are ignored with a warning saying why, until it is changed.
 */
import Fastify, { type FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createProject, listBuilds } from '../../store/index.js';
import { DIALECTS, openTestDatabase, type TestDatabase } from '../../store/testing/dialects.js';
import { updateRowsWhere } from '../../store/testing/inspect.js';
import { DatabaseBuildControl } from '../scheduler/build-control.js';
import { registerHookRoutes } from './routes.js';
import { signBody } from './signatures.js';
import { updateHookSettings } from './store.js';

const SECRET = 'branch-filter-re2-secret';

describe.each(DIALECTS)('a stored branch filter RE2 cannot run (%s)', (dialect) => {
  let t: TestDatabase;
  let app: FastifyInstance;

  beforeAll(async () => {
    t = await openTestDatabase(dialect);
    app = Fastify();
    registerHookRoutes(app, { db: t.db, control: new DatabaseBuildControl(t.db) });
    await app.ready();
  });

  afterAll(async () => {
    await app.close();
    await t.destroy();
  });

  it('matches nothing, and the answer says why', async () => {
    const project = await createProject(t.db, {
      slug: 'old/filter',
      repoUrl: 'https://git.example.com/old.git',
    });
    await updateHookSettings(t.db, project.id, { secret: SECRET });
    // As an older version stored it: the store now refuses it where it is set.
    await updateRowsWhere(t.db, 'projects', 'id', project.id, { branch_filter: '(main)\\1|(?!wip).*' });

    const body = JSON.stringify({ ref: 'refs/heads/main', commit: 'a'.repeat(40) });
    const res = await app.inject({
      method: 'POST',
      url: '/hooks/generic?project=old/filter',
      headers: { 'content-type': 'application/json', 'x-slipway-signature': signBody(SECRET, body) },
      payload: body,
    });
    expect(res.statusCode, res.body).toBe(202);
    expect(res.json<{ ignored: string }>().ignored).toBe(
      'warning: the branch filter "(main)\\1|(?!wip).*" of old/filter cannot be used, so no push is built until it is changed: ' +
        'backreferences (`\\1`) are not supported; patterns use RE2 syntax, which has no backreferences and no lookaround (https://github.com/google/re2/wiki/Syntax)',
    );
    expect((await listBuilds(t.db, { projectId: project.id, limit: 10 })).builds).toEqual([]);
  });
});
