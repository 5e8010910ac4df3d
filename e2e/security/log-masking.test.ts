/**
 * Attack (issue 10 item 5): masking missed a secret split by the 64 KiB line cut
 * (`head -c 65530 …; printf '%s\n' "$TOK"` left both halves visible) and a secret with colour
 * codes inside (`echo "$TOK" | grep --color=always Value`). A real server, a real secret set
 * through the API, the local executor; the stored log and the live stream are both checked.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Build, LogLine } from '../../src/server/api/dto.js';
import { TestRepo } from '../../src/server/testing/git-repo.js';
import type { Api } from '../server/server-harness.js';
import { FINISHED, ServerProcess, cleanup, followLog, waitFor } from '../server/server-harness.js';

const TOK = 'tokValue-5be1c0d9a2f47e36';
// eslint-disable-next-line no-control-regex -- terminal escapes are what it removes
const ESCAPES = /(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-Z\\-_]/g;

describe('secrets stay masked when cut by the line cap or coloured (issue 10 item 5)', () => {
  let api: Api;

  beforeAll(async () => {
    const server = await ServerProcess.start({ executor: 'local' });
    api = server.api();
    const repo = await TestRepo.create({
      '.slipway.yml': [
        'steps:',
        '  - name: leak',
        '    env:',
        '      TOK: { from_secret: TOK }',
        '    commands:',
        '      - sleep 2',
        `      - head -c 65530 /dev/zero | tr '\\0' x; printf '%s\\n' "$TOK"`,
        '      - echo "$TOK" | grep --color=always Value',
        '',
      ].join('\n'),
    });
    await api.ok('POST', '/projects', { slug: 'attack/mask', repoUrl: repo.url });
    await api.ok('PUT', '/projects/attack/mask/secrets/TOK', { value: TOK, allowForks: false });
  }, 120_000);

  afterAll(cleanup);

  it('neither the stored log nor the live stream shows the secret or a half of it', async () => {
    const build = await api.ok<Build>('POST', '/projects/attack/mask/builds', { branch: 'main' });
    const live = followLog(api, build.id);
    const done = await waitFor(
      `build ${build.id} to finish`,
      async () => {
        const b = await api.build(build.id);
        return FINISHED.has(b.status) ? b : undefined;
      },
      120_000,
      250,
    );
    expect(await live.done).toBe('end');
    expect(done.status).toBe('success');
    const stored = await api.storedLog(build.id);
    for (const lines of [stored, live.lines]) {
      const out = lines.filter((l: LogLine) => l.step === 'leak' && l.stream === 'stdout').map((l) => l.text);
      const text = out.join('\n');
      expect(text.replace(ESCAPES, '')).not.toContain(TOK);
      for (const half of [TOK.slice(0, 8), TOK.slice(-8)]) expect(text).not.toContain(half);
      expect(out.at(-1)).toBe('********');
      expect(out.slice(0, -1).join('')).toBe(`${'x'.repeat(65_530)}********`);
    }
  }, 180_000);
});
