import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ApiError } from '../../src/server/api/dto.js';
import { MAX_SLUG_PART_LENGTH } from '../../src/store/projects.js';
import { cleanup } from '../server/server-harness.js';
import { startLoggingServer, type LoggingServer } from './logging-server.js';

/**
 * Issue 10: project names of 101–195 characters were accepted and then unreachable, since the
 * router refuses path parameters over 100 characters. One limit now, checked at creation:
 * owner and name of at most 64 characters each, far below the router's.
 */
describe('attack: a project name too long to reach again', () => {
  let server: LoggingServer;
  beforeAll(async () => {
    server = await startLoggingServer();
  }, 90_000);
  afterAll(async () => {
    await server?.stop();
    await cleanup();
  });

  const create = (slug: string) =>
    server.api.request('POST', '/projects', { json: { slug, repoUrl: 'file:///nowhere.git' } });

  function expectSlugRefused(answer: { status: number; body: unknown; text: string }, slug: string): void {
    expect(answer.status, `${slug.length} characters: ${answer.text}`).toBe(400);
    const error = (answer.body as ApiError).error;
    expect(error.code).toBe('invalid_request');
    expect(error.message).toMatch(/^body\.slug /);
    expect(error.message).toContain(`at most ${MAX_SLUG_PART_LENGTH} characters`);
  }

  it('refuses owners and names of 65 to 200 characters with a 400 naming the field', async () => {
    for (let length = MAX_SLUG_PART_LENGTH + 1; length <= 200; length++) {
      const long = `n${'x'.repeat(length - 1)}`;
      expectSlugRefused(await create(`acme/${long}`), `acme/${long}`);
      expectSlugRefused(await create(`${long}/web`), `${long}/web`);
    }
    const listed = await server.api.ok<{ items: unknown[] }>('GET', '/projects?limit=500');
    expect(listed.items).toEqual([]);
  }, 300_000);

  it('keeps every project it accepts reachable by its URL (fast-check)', async () => {
    const part = fc
      .tuple(
        fc.constantFrom(...'aZ09'),
        fc.stringMatching(/^[A-Za-z0-9._-]*$/, { maxLength: MAX_SLUG_PART_LENGTH + 40 }),
      )
      .map(([first, rest]) => first + rest);
    let accepted = 0;
    const edges = [
      `${'o'.repeat(MAX_SLUG_PART_LENGTH)}/${'n'.repeat(MAX_SLUG_PART_LENGTH)}`,
      `a/${'n'.repeat(MAX_SLUG_PART_LENGTH)}`,
      'a/b',
    ];
    await fc.assert(
      fc.asyncProperty(part, part, async (owner, name) => {
        const slug = `${owner}/${name}`;
        const answer = await create(slug);
        if (owner.length > MAX_SLUG_PART_LENGTH || name.length > MAX_SLUG_PART_LENGTH) {
          expectSlugRefused(answer, slug);
          return;
        }
        expect([201, 409], answer.text).toContain(answer.status);
        accepted += 1;
        for (const path of ['', '/builds', '/stats']) {
          const got = await server.api.request('GET', `/projects/${slug}${path}`);
          expect(got.status, `GET /projects/${slug}${path}: ${got.text}`).toBe(200);
        }
      }),
      {
        numRuns: 120,
        examples: edges.map((slug) => slug.split('/') as [string, string]),
        interruptAfterTimeLimit: 120_000,
        markInterruptAsFailure: false,
      },
    );
    expect(accepted).toBeGreaterThanOrEqual(edges.length);
  }, 300_000);
});
