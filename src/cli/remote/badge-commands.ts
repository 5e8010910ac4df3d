import type { Command } from 'commander';
import { badgeMarkdown } from '../../contract/badge-api.js';
import { EXIT, UsageError } from '../errors.js';
import { apiAction, client, remote, type ConnectionFlags, type CommandIo } from './command-kit.js';
import { parseSlug } from './commands.js';

interface Flags extends ConnectionFlags {
  public?: boolean;
  private?: boolean;
  branch?: string;
}

/**
 * `slipway badge <owner/name> [--public|--private] [--branch B]`: whether the project's status
 * badge is public (`GET|PUT …/badge`; changing it needs a member token), then the Markdown for
 * a README alone on stdout, so `slipway badge acme/web >> README.md` works.
 */
export function registerBadgeCommand(
  program: Command,
  exit: (code: number) => void,
  io: CommandIo = process,
): void {
  const action = apiAction(exit, io.stderr);
  remote(
    program
      .command('badge')
      .argument('<owner/name>')
      .description("show the Markdown of a project's status badge; --public/--private switch who sees it")
      .option('--public', 'serve the badge without a token (member)')
      .option('--private', 'serve the badge only with a token (member)')
      .option('--branch <branch>', 'the branch the badge shows (default main)'),
  ).action(
    action(async (slugArg: string, flags: Flags) => {
      const slug = parseSlug(slugArg);
      if (flags.public && flags.private) throw new UsageError('badge: --public or --private, not both');
      if (flags.branch === '') throw new UsageError('badge: --branch needs a branch name');
      const api = client(flags);
      const settings =
        flags.public || flags.private
          ? await api.setBadgePublic(slug, flags.public === true)
          : await api.getBadge(slug);
      io.stderr.write(
        settings.public
          ? `the badge of ${slug} is public: it needs no token\n`
          : `the badge of ${slug} is private: it needs a token (make it public with --public)\n`,
      );
      io.stdout.write(`${badgeMarkdown(api.server, slug, flags.branch)}\n`);
      return EXIT.ok;
    }),
  );
}
