import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalExecutor } from '../../executors/local/local-executor.js';
import { MASK } from '../../orchestrator/masker.js';
import { runPipeline } from '../../orchestrator/run-pipeline.js';
import type { LogLine } from '../../orchestrator/types.js';
import { compilePipeline } from '../../pipeline/index.js';
import type { PipelinePlan } from '../../pipeline/types.js';
import type { Build, Project } from '../../store/index.js';
import { openTestDatabase } from '../../store/testing/dialects.js';
import type { TestDatabase } from '../../store/testing/dialects.js';
import { makeBuild, makeProject } from '../../store/testing/fixtures.js';
import { SecretCipher } from './cipher.js';
import { secretsFor } from './source.js';
import { setSecret } from './store.js';

const TOKEN = 'tok-3f9a1c77e2b04d5c';
const PEM = '-----BEGIN KEY-----\nMIIBOgIBAAJBAK1line2\n-----END KEY-----';
const ODD = 'p@$$w0rd.*+?(x)';

const PIPELINE = `
steps:
  - name: leak
    env:
      TOKEN: { from_secret: TOKEN }
      PEM: { from_secret: PEM }
      ODD: { from_secret: ODD }
    commands:
      - |-
        echo "exact: $TOKEN"
      - |-
        echo "on stderr: $TOKEN" >&2
      - |-
        echo "twice: $TOKEN$TOKEN and $ODD"
      - |-
        printf '%s\\n' "$PEM"
      # The value in two writes with a pause between: two chunks for the executor, one line for the log.
      - |-
        printf 'split: %s' "$(printf '%s' "$TOKEN" | cut -c1-7)"
      - sleep 0.3
      - |-
        printf '%s\\n' "$(printf '%s' "$TOKEN" | cut -c8-)"
      - |-
        printf 'no newline at the end: %s' "$TOKEN"
`;

describe('secrets in logs, through the real local executor', () => {
  let t: TestDatabase;
  let project: Project;
  let build: Build;
  let tmpRoot: string;
  const cipher = new SecretCipher(randomBytes(32));

  beforeAll(async () => {
    t = await openTestDatabase('sqlite');
    tmpRoot = await mkdtemp(join(tmpdir(), 'slipway-mask-'));
    project = await makeProject(t.db);
    build = await makeBuild(t.db, project.id, { event: 'push' });
    await setSecret(t.db, cipher, project.id, { name: 'TOKEN', value: TOKEN, allowForks: false });
    await setSecret(t.db, cipher, null, { name: 'PEM', value: PEM, allowForks: false });
    await setSecret(t.db, cipher, project.id, { name: 'ODD', value: ODD, allowForks: false });
  });
  afterAll(async () => {
    await t?.destroy();
    await rm(tmpRoot, { recursive: true, force: true });
  });

  function plan(): PipelinePlan {
    const compiled = compilePipeline({
      file: '.slipway.yml',
      source: PIPELINE,
      context: {
        buildId: 'mask-1',
        buildNumber: 1,
        project: project.slug,
        branch: 'main',
        commit: 'abc',
        event: 'push',
        workspace: tmpRoot,
      },
    });
    if (!compiled.ok) throw new Error(JSON.stringify(compiled.errors));
    return compiled.plan;
  }

  it('masks the exact value, every line of a multi-line value, and a value split across output chunks', async () => {
    const lines: LogLine[] = [];
    const executor = new LocalExecutor({ tmpRoot });
    const result = await runPipeline(
      plan(),
      {
        buildId: `mask-${Date.now()}`,
        buildNumber: 1,
        project: project.slug,
        branch: 'main',
        commit: 'abc',
        event: 'push',
        workspace: executor.workspacePath('x'),
      },
      executor,
      {
        secrets: secretsFor({ db: t.db, cipher })(project, build),
        observer: { stepLog: (_stage, _step, line) => lines.push(line) },
      },
    );
    expect(result.status, JSON.stringify(result)).toBe('success');
    const texts = lines.map((l) => l.text);
    // stdout and stderr are separate pipes: their relative order is not defined.
    expect(lines.filter((l) => l.stream === 'stdout').map((l) => l.text)).toEqual([
      `exact: ${MASK}`,
      `twice: ${MASK}${MASK} and ${MASK}`,
      MASK,
      MASK,
      MASK,
      `split: ${MASK}`,
      `no newline at the end: ${MASK}`,
    ]);
    expect(lines.filter((l) => l.stream === 'stderr').map((l) => l.text)).toEqual([`on stderr: ${MASK}`]);
    const all = texts.join('\n');
    for (const secret of [TOKEN, ODD, ...PEM.split('\n')]) expect(all).not.toContain(secret);
    expect(all).not.toContain(TOKEN.slice(0, 7) + TOKEN.slice(7));
  });
});
