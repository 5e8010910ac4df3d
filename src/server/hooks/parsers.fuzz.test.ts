/**
 * Fuzzing of the webhook parsers (issue 10, "a security suite that stays"): arbitrary JSON
 * and mutated real payloads (the fixtures here and GitHub's own examples) through the body
 * decoder and each forge's event, repository and action parsing. Each input gives a result
 * or a `HookError` with a message: never another throw, never a long stall of the event loop.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeBody } from './body.js';
import { HookError } from './errors.js';
import { generic } from './forges/generic.js';
import { gitea } from './forges/gitea.js';
import { github } from './forges/github.js';
import { gitlab } from './forges/gitlab.js';
import type { ForgeAdapter } from './forges/types.js';

type Json = Record<string, unknown>;

const FORGES: readonly ForgeAdapter[] = [github, gitlab, gitea, generic];
/** Events each forge understands, plus ones it does not. */
const EVENTS: Record<string, string[]> = {
  github: ['push', 'pull_request', 'ping', 'create', 'delete', 'issues'],
  gitlab: ['Push Hook', 'Tag Push Hook', 'Merge Request Hook', 'Note Hook'],
  gitea: ['push', 'create', 'pull_request', 'ping', 'issues'],
  generic: ['push', 'tag', 'pull_request', 'ping', 'deploy'],
};
/** A synchronous parse of one payload may take this long at most, on a machine at load 8. */
const STALL_MS = 2000;

const fixtures = readdirSync(new URL('./fixtures/', import.meta.url))
  .filter((name) => name.endsWith('.json'))
  .map((name) => JSON.parse(readFileSync(new URL(`./fixtures/${name}`, import.meta.url), 'utf8')) as Json);
const octokit = createRequire(import.meta.url)('@octokit/webhooks-examples') as {
  name: string;
  examples: Json[];
}[];
const githubExamples = octokit
  .filter((d) => ['push', 'pull_request', 'ping', 'create'].includes(d.name))
  .flatMap((d) => d.examples.slice(0, 5));
const realPayloads = [...fixtures, ...githubExamples];

/** Runs `fn`; a HookError with a message is a clear refusal, anything else thrown fails. */
function clear<T>(fn: () => T): T | HookError {
  try {
    return fn();
  } catch (error) {
    if (error instanceof HookError && error.message.length > 0 && error.statusCode === 400) return error;
    throw error;
  }
}

/** Every parse a delivery goes through, timed as one synchronous run. */
function parseAll(forge: ForgeAdapter, event: string, payload: unknown): number {
  const start = performance.now();
  const urls = forge.repoUrls(payload);
  expect(Array.isArray(urls)).toBe(true);
  forge.eventName({}, payload);
  const action = clear(() => forge.parse(event, payload));
  if (!(action instanceof HookError)) expect(['ping', 'ignore', 'build']).toContain(action.kind);
  return performance.now() - start;
}

/** A real payload with one value somewhere replaced by another JSON value. */
const mutated = fc
  .tuple(fc.constantFrom(...realPayloads), fc.array(fc.nat(), { minLength: 1, maxLength: 4 }), fc.jsonValue())
  .map(([payload, path, value]) => {
    const copy = structuredClone(payload);
    let node: Json = copy;
    for (const [i, step] of path.entries()) {
      const keys = Object.keys(node);
      if (keys.length === 0) break;
      const key = keys[step % keys.length]!;
      const child = node[key];
      if (i === path.length - 1 || child === null || typeof child !== 'object' || Array.isArray(child)) {
        node[key] = value;
        break;
      }
      node = child as Json;
    }
    return copy;
  });

describe('webhook parsers under fuzzing', () => {
  it('arbitrary JSON: a parsed event or a clear error for every forge and event, never a throw or a stall', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (payload) => {
        for (const forge of FORGES)
          for (const event of EVENTS[forge.name]!)
            expect(parseAll(forge, event, payload)).toBeLessThan(STALL_MS);
      }),
      { numRuns: 300, interruptAfterTimeLimit: 20_000 },
    );
  });

  it('mutated real payloads (fixtures and GitHub examples): the same', () => {
    fc.assert(
      fc.property(mutated, (payload) => {
        for (const forge of FORGES)
          for (const event of EVENTS[forge.name]!)
            expect(parseAll(forge, event, payload)).toBeLessThan(STALL_MS);
      }),
      { numRuns: 300, interruptAfterTimeLimit: 20_000 },
    );
  });

  it('arbitrary bytes as a body: a JSON object or a clear 400, never a throw', () => {
    const contentType = fc.constantFrom(
      undefined,
      'application/json',
      'application/x-www-form-urlencoded',
      'text/plain',
    );
    const body = fc.oneof(
      fc.uint8Array({ maxLength: 512 }).map((b) => Buffer.from(b)),
      fc.jsonValue().map((v) => Buffer.from(JSON.stringify(v) ?? '')),
      fc.jsonValue().map((v) => Buffer.from(`payload=${encodeURIComponent(JSON.stringify(v) ?? '')}`)),
    );
    fc.assert(
      fc.property(body, contentType, (raw, type) => {
        const start = performance.now();
        const decoded = clear(() => decodeBody(raw, type));
        expect(performance.now() - start).toBeLessThan(STALL_MS);
        if (!(decoded instanceof HookError)) {
          expect(typeof decoded).toBe('object');
          expect(Array.isArray(decoded)).toBe(false);
        }
      }),
      { numRuns: 500, interruptAfterTimeLimit: 20_000 },
    );
  });

  it('a deeply nested body is a result or a clear error, quickly', () => {
    const deep = Buffer.from(`${'['.repeat(100_000)}${']'.repeat(100_000)}`);
    const start = performance.now();
    const decoded = clear(() => decodeBody(deep, 'application/json'));
    expect(decoded).toBeInstanceOf(HookError);
    expect(performance.now() - start).toBeLessThan(STALL_MS);
  });
});
