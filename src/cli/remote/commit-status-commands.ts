import { Option, type Command } from 'commander';
import {
  CHECKS_MODES,
  CONTEXT_MODES,
  FORGES,
  type ChecksMode,
  type CommitStatusView,
  type ContextMode,
  type Forge,
} from '../../contract/commit-status-api.js';
import { SECRET_NAME_PATTERN } from '../../contract/project.js';
import { EXIT, UsageError } from '../errors.js';
import {
  apiAction,
  client,
  plainTable,
  projectCommand,
  remote,
  type ConnectionFlags,
  type CommandIo,
} from './command-kit.js';
import { parseBuildNumber, parseSlug } from './commands.js';

interface Flags extends ConnectionFlags {
  forge?: Forge | 'auto';
  apiUrl?: string;
  repository?: string;
  tokenSecret?: string;
  contexts?: ContextMode;
  checks?: ChecksMode;
  enable?: boolean;
  disable?: boolean;
  off?: boolean;
  build?: string;
  output?: 'text' | 'json';
}

/**
 * `slipway project commit-status <owner/name> [--forge F] [--token-secret S] [--contexts C]
 * [--checks K] [--api-url U] [--repository R] [--enable|--disable] [--off] [--build N]`: shows
 * a project's forge commit-status settings (every role; with `--build`, what was posted for
 * that build), or changes them (admin; `PUT …/commit-status` with the current settings and the
 * options given, so the rest is kept), or removes them (`--off`, admin). Added under the
 * `project` command if there is one.
 */
export function registerCommitStatusCommands(
  program: Command,
  exit: (code: number) => void,
  io: CommandIo = process,
): void {
  const action = apiAction(exit, io.stderr);
  const project = projectCommand(program);

  remote(
    project
      .command('commit-status')
      .argument('<owner/name>')
      .description("show or change the project's commit statuses on the forge (changing them: admin)")
      .addOption(
        new Option(
          '--forge <forge>',
          'the forge (gitea also means Forgejo); auto: told from the repository URL',
        ).choices([...FORGES, 'auto']),
      )
      .option('--token-secret <name>', 'NAME of the project (or global) secret holding the forge token')
      .addOption(
        new Option(
          '--contexts <mode>',
          'build: one context `slipway`; stage: also `slipway/<stage>` per stage',
        ).choices([...CONTEXT_MODES]),
      )
      .addOption(
        new Option(
          '--checks <mode>',
          'GitHub: auto posts check runs where the token may; off: statuses only',
        ).choices([...CHECKS_MODES]),
      )
      .option(
        '--api-url <url>',
        'the forge API base, e.g. https://git.example.com/api/v1 ("" for the default)',
      )
      .option(
        '--repository <path>',
        'the repository on the forge, owner/name ("" to take it from the repository URL)',
      )
      .addOption(new Option('--enable', 'post statuses (the default)').conflicts(['disable', 'off']))
      .addOption(new Option('--disable', 'keep the settings but post nothing').conflicts('off'))
      .option('--off', 'remove the settings (statuses stop)')
      .option('--build <number>', 'list what was posted for this build and how it went')
      .addOption(
        new Option('-o, --output <format>', 'output format').choices(['text', 'json']).default('text'),
      ),
  ).action(
    action(async (slugArg: string, flags: Flags) => {
      const slug = parseSlug(slugArg);
      const build = flags.build === undefined ? undefined : parseBuildNumber(flags.build);
      const changes = [
        flags.forge,
        flags.tokenSecret,
        flags.contexts,
        flags.checks,
        flags.apiUrl,
        flags.repository,
        flags.enable,
        flags.disable,
      ].some((f) => f !== undefined);
      if (flags.off === true && (changes || build !== undefined))
        throw new UsageError('--off removes the settings: it takes no other option');
      if (build !== undefined && changes) throw new UsageError('--build lists posts: it changes nothing');
      if (flags.tokenSecret !== undefined && !new RegExp(SECRET_NAME_PATTERN).test(flags.tokenSecret))
        throw new UsageError(
          `--token-secret "${flags.tokenSecret}": expected a secret NAME such as FORGE_TOKEN`,
        );
      if (flags.apiUrl !== undefined && flags.apiUrl !== '' && !/^https?:\/\/\S+$/.test(flags.apiUrl))
        throw new UsageError(`--api-url "${flags.apiUrl}": expected an http(s):// URL`);
      const api = client(flags);

      if (flags.off === true) {
        await api.deleteCommitStatusSettings(slug);
        if (flags.output === 'json') io.stdout.write('{}\n');
        else io.stdout.write(`commit statuses of ${slug}: off\n`);
        return EXIT.ok;
      }
      if (build !== undefined) {
        const posts = await api.commitStatuses(slug, build);
        if (flags.output === 'json') {
          io.stdout.write(`${JSON.stringify(posts, null, 2)}\n`);
          return EXIT.ok;
        }
        if (posts.length === 0) {
          io.stdout.write(`nothing was posted for ${slug} #${build}\n`);
          return EXIT.ok;
        }
        io.stdout.write(
          plainTable([
            ['AT', 'KIND', 'CONTEXT', 'STATE', 'OUTCOME', 'TRIES', 'MESSAGE'],
            ...posts.map((p) => [
              new Date(p.at).toISOString(),
              p.kind ?? 'status',
              p.context,
              p.state,
              p.httpStatus === null ? p.outcome : `${p.outcome} (${p.httpStatus})`,
              String(p.attempts),
              p.message ?? '',
            ]),
          ]),
        );
        return EXIT.ok;
      }

      let view = await api.getCommitStatusSettings(slug);
      if (changes) {
        // Without settings the server answers tokenSecret null: there is nothing to keep.
        const tokenSecret = flags.tokenSecret ?? view.tokenSecret;
        if (tokenSecret === null)
          throw new UsageError(`${slug} has no commit-status settings yet: --token-secret is needed`);
        view = await api.setCommitStatusSettings(slug, {
          enabled:
            flags.disable === true
              ? false
              : flags.enable === true || view.tokenSecret === null || view.enabled,
          forge: flags.forge === undefined ? view.forge : flags.forge === 'auto' ? null : flags.forge,
          apiUrl: flags.apiUrl === undefined ? view.apiUrl : flags.apiUrl === '' ? null : flags.apiUrl,
          repository:
            flags.repository === undefined
              ? view.repository
              : flags.repository === ''
                ? null
                : flags.repository,
          tokenSecret,
          contexts: flags.contexts ?? view.contexts,
          checks: flags.checks ?? view.checks,
        });
      }
      if (flags.output === 'json') {
        io.stdout.write(`${JSON.stringify(view, null, 2)}\n`);
        return EXIT.ok;
      }
      io.stdout.write(describe(view));
      if (view.tokenSecret !== null && !view.tokenSecretExists)
        io.stderr.write(
          `note: there is no secret ${view.tokenSecret} for ${slug}: nothing is posted until it exists (slipway secret set)\n`,
        );
      return EXIT.ok;
    }),
  );
}

function describe(view: CommitStatusView): string {
  if (view.tokenSecret === null) return 'commit statuses: off (no settings; set them with --token-secret)\n';
  const resolved =
    'error' in view.resolved
      ? `cannot post: ${view.resolved.error}`
      : `${view.resolved.forge} ${view.resolved.apiUrl} ${view.resolved.repository}`;
  return (
    `commit statuses: ${view.enabled ? 'on' : 'disabled'}\n` +
    `forge: ${view.forge ?? 'auto'}\n` +
    `api url: ${view.apiUrl ?? 'default'}\n` +
    `repository: ${view.repository ?? 'from the repository URL'}\n` +
    `token secret: ${view.tokenSecret}\n` +
    `contexts: ${view.contexts}\n` +
    `checks: ${view.checks}\n` +
    `posts to: ${resolved}\n`
  );
}
