import { Option, type Command } from 'commander';
import { EMAIL_WHEN, type EmailSettingsView, type EmailWhen } from '../../contract/email.js';
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
import { parseSlug } from './commands.js';

interface Flags extends ConnectionFlags {
  when?: EmailWhen;
  to?: string;
  author?: boolean;
  output?: 'text' | 'json';
}

/**
 * `slipway project email <owner/name> [--when W] [--to a,b] [--author|--no-author]`: shows a
 * project's e-mail notifications and its latest messages (every role), or changes them
 * (admin; `PUT …/email`, the options given replace those fields, the rest is kept). Added
 * under the `project` command if there is one.
 */
export function registerEmailCommands(
  program: Command,
  exit: (code: number) => void,
  io: CommandIo = process,
): void {
  const action = apiAction(exit, io.stderr);
  const project = projectCommand(program);

  remote(
    project
      .command('email')
      .argument('<owner/name>')
      .description("show or change the project's e-mail notifications (changing them: admin)")
      .addOption(
        new Option(
          '--when <when>',
          'failure (failure, error, lost), fixed (those and the first success after them), always, never',
        ).choices([...EMAIL_WHEN]),
      )
      .option('--to <addresses>', 'comma-separated addresses mailed for every notice ("" for none)')
      .option('--author', "also mail the commit's author (the default)")
      .option('--no-author', "do not mail the commit's author")
      .addOption(
        new Option('-o, --output <format>', 'output format').choices(['text', 'json']).default('text'),
      ),
  ).action(
    action(async (slugArg: string, flags: Flags) => {
      const slug = parseSlug(slugArg);
      const api = client(flags);
      const changing = flags.when !== undefined || flags.to !== undefined || flags.author !== undefined;
      let settings: EmailSettingsView;
      if (changing) {
        const current = await api.getEmailSettings(slug);
        settings = await api.setEmailSettings(slug, {
          when: flags.when ?? current.when,
          toAuthor: flags.author ?? current.toAuthor,
          recipients: flags.to === undefined ? current.recipients : addresses(flags.to),
        });
      } else settings = await api.getEmailSettings(slug);
      const deliveries = changing ? [] : await api.emailDeliveries(slug);
      if (flags.output === 'json') {
        io.stdout.write(`${JSON.stringify(changing ? settings : { ...settings, deliveries }, null, 2)}\n`);
        return EXIT.ok;
      }
      io.stdout.write(
        `when: ${settings.when}\nto author: ${settings.toAuthor ? 'yes' : 'no'}\n` +
          `to: ${settings.recipients.join(', ') || '(nobody)'}\n`,
      );
      if (!settings.smtpConfigured)
        io.stderr.write(
          'note: this server has no SMTP server (slipway server --smtp-host): nothing is sent\n',
        );
      if (deliveries.length > 0) {
        io.stdout.write('\n');
        io.stdout.write(
          plainTable([
            ['BUILD', 'OUTCOME', 'AT', 'TO', 'MESSAGE'],
            ...deliveries.map((d) => [
              `#${d.build}`,
              d.outcome,
              d.at,
              d.recipients.join(',') || '-',
              d.message ?? d.subject,
            ]),
          ]),
        );
      }
      return EXIT.ok;
    }),
  );
}

function addresses(list: string): string[] {
  const all = list
    .split(',')
    .map((a) => a.trim())
    .filter((a) => a !== '');
  const bad = all.find((a) => !/^[^\s@<>,;"]+@[^\s@<>,;"]+$/.test(a));
  if (bad !== undefined) throw new UsageError(`--to: "${bad}" is not an address such as dev@example.com`);
  return all;
}
