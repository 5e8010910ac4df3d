import { createRequire } from 'node:module';
import type * as Re2jsModule from 're2js';

type Re2js = typeof Re2jsModule;

let loaded: Re2js | undefined;

/**
 * The `re2js` module, loaded on first use: some 270 kB of code that `slipway validate` of a
 * file without patterns, and a server without branch filters or artifact globs, never run, and
 * that took a sixth of the CLI's start-up to parse. Loaded through `require` (its CommonJS
 * build) so that the pattern checks stay synchronous; every user takes it from here, so its
 * error classes are the ones `instanceof` checks see.
 */
export function re2js(): Re2js {
  loaded ??= createRequire(import.meta.url)('re2js') as Re2js;
  return loaded;
}
