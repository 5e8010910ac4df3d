import { Option, type Command } from 'commander';
import type { Cache } from '../../contract/caches.js';
import { EXIT, UsageError } from '../errors.js';
import {
  apiAction,
  client,
  plainTable,
  remote,
  type CommandIo,
  type ConnectionFlags,
} from './command-kit.js';
import { parseSlug } from './commands.js';

interface Flags extends ConnectionFlags {
  key?: string;
  all?: boolean;
  output?: 'table' | 'json';
}

/**
 * `slipway cache list|delete <owner/name> …`: a project's step caches
 * (`/projects/{owner}/{name}/caches`). Listing needs a viewer token, deleting a member's.
 */
export function registerCacheCommands(
  program: Command,
  exit: (code: number) => void,
  io: CommandIo = process,
): void {
  const action = apiAction(exit, io.stderr);
  const caches = program
    .command('cache')
    .alias('caches')
    .description("list or delete a project's step caches");

  remote(
    caches
      .command('list')
      .alias('ls')
      .description('list step caches, most recently used first (every role)')
      .argument('<owner/name>')
      .addOption(
        new Option('-o, --output <format>', 'output format').choices(['table', 'json']).default('table'),
      ),
  ).action(
    action(async (slugArg: string, flags: Flags) => {
      const slug = parseSlug(slugArg);
      const list = await client(flags).listCaches(slug);
      if (flags.output === 'json') io.stdout.write(JSON.stringify(list, null, 2) + '\n');
      else if (list.length === 0) io.stderr.write(`no caches for ${slug}\n`);
      else io.stdout.write(cachesTable(list));
      return EXIT.ok;
    }),
  );

  remote(
    caches
      .command('delete')
      .alias('rm')
      .description('delete one cache by id, those with --key, or --all (member)')
      .argument('<owner/name>')
      .argument('[id]', 'cache id (slipway cache list)')
      .option('--key <key>', 'delete the caches with this key (every branch)')
      .option('--all', "delete all of the project's caches"),
  ).action(
    action(async (slugArg: string, idArg: string | undefined, flags: Flags) => {
      const slug = parseSlug(slugArg);
      const given = [idArg !== undefined, flags.key !== undefined, flags.all === true].filter(Boolean).length;
      if (given !== 1) throw new UsageError('give exactly one of: a cache id, --key KEY, --all');
      let which: { id: number } | { key: string } | 'all' = 'all';
      if (idArg !== undefined) {
        const id = Number(idArg);
        if (!Number.isInteger(id) || id < 1)
          throw new UsageError(`cache id "${idArg}": expected a whole number of 1 or more`);
        which = { id };
      } else if (flags.key !== undefined) which = { key: flags.key };
      const { deleted, bytes } = await client(flags).deleteCaches(slug, which);
      io.stdout.write(`${deleted} cache(s) of ${slug} deleted (${formatSize(bytes)})\n`);
      return EXIT.ok;
    }),
  );
}

function cachesTable(list: readonly Cache[]): string {
  return plainTable([
    ['ID', 'BRANCH', 'SIZE', 'LAST USED', 'KEY'],
    ...list.map((c) => [
      String(c.id),
      c.branch,
      formatSize(c.size),
      c.lastUsedAt.replace('T', ' ').slice(0, 19),
      c.key,
    ]),
  ]);
}

function formatSize(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} kB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}
