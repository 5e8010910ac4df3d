import { randomBytes } from 'node:crypto';
import type { Command } from 'commander';
import { EXIT, UsageError } from '../errors.js';
import { apiAction, client, projectCommand, remote, type ConnectionFlags } from './command-kit.js';
import { parseSlug } from './commands.js';
import { readValue, type SecretCommandIo } from './secret-commands.js';

interface Flags extends ConnectionFlags {
  generate?: boolean;
  remove?: boolean;
}

/**
 * `slipway project webhook-secret <owner/name> [--generate|--remove]` (admin): sets the key
 * forges sign deliveries with (`PATCH …/hooks {"secret"}`). The value comes from stdin like
 * `slipway secret set` (hidden on a terminal, one trailing newline dropped), so it stays out
 * of shell history and `ps`; `--generate` makes a random one and prints it once, alone on
 * stdout, for the forge's webhook form. Added under the `project` command if there is one.
 */
export function registerWebhookCommands(
  program: Command,
  exit: (code: number) => void,
  io: SecretCommandIo = process,
): void {
  const action = apiAction(exit, io.stderr);
  const project = projectCommand(program);

  remote(
    project
      .command('webhook-secret')
      .argument('<owner/name>')
      .description("set the project's webhook secret from stdin (admin); forges sign deliveries with it")
      .option('--generate', 'make a random secret and print it once')
      .option('--remove', 'remove the secret: the project accepts no delivery until it has one'),
  ).action(
    action(async (slugArg: string, flags: Flags) => {
      const slug = parseSlug(slugArg);
      if (flags.generate && flags.remove)
        throw new UsageError('webhook-secret: --generate or --remove, not both');
      const api = client(flags);
      if (flags.remove) {
        await api.updateHookSettings(slug, { secret: null });
        io.stdout.write(`webhook secret of ${slug} removed: it accepts no delivery until it has one\n`);
        return EXIT.ok;
      }
      const secret = flags.generate
        ? randomBytes(32).toString('base64url')
        : await readValue(io, 'the webhook secret', 'project webhook-secret');
      await api.updateHookSettings(slug, { secret });
      if (flags.generate) {
        io.stderr.write(
          `webhook secret of ${slug} set; it is shown only now, paste it into the forge's webhook:\n`,
        );
        io.stdout.write(`${secret}\n`);
      } else io.stdout.write(`webhook secret of ${slug} set\n`);
      return EXIT.ok;
    }),
  );
}
