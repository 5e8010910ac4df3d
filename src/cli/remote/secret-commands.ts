import { Option, type Command } from 'commander';
import type { SecretInfo as SecretInfoDto } from '../../contract/index.js';
import { EXIT, UsageError } from '../errors.js';
import { apiAction, client, plainTable, remote, type CommandIo } from './command-kit.js';
import { parseSlug } from './commands.js';

interface Flags {
  server?: string;
  token?: string;
  global?: boolean;
  allowForks?: boolean;
  output?: 'table' | 'json';
}

/** Where the commands read values and write results; replaceable in tests. */
export interface SecretCommandIo extends CommandIo {
  stdin: NodeJS.ReadableStream & { isTTY?: boolean; setRawMode?: (raw: boolean) => unknown };
}

/**
 * `slipway secret set|list|delete <owner/name|--global> [NAME]`. `set` reads the value from
 * stdin — typed without echo on a terminal, or piped (`slipway secret set acme/web TOKEN <
 * token.txt`); one trailing newline is dropped — so it never appears in shell history or in
 * `ps`. No command prints a value: the server never returns one.
 */
export function registerSecretCommands(
  program: Command,
  exit: (code: number) => void,
  io: SecretCommandIo = process,
): void {
  const action = apiAction(exit, io.stderr);

  const secret = program
    .command('secret')
    .description('set, list or delete secrets of a project or global ones (values are never shown)');

  remote(
    secret
      .command('set')
      .description('set a secret from stdin (admin): slipway secret set <owner/name|--global> NAME')
      .argument('<target>', 'owner/name, or the NAME with --global')
      .argument('[name]', 'secret name')
      .option('--global', 'a global secret, for every project')
      .option('--allow-forks', 'also give it to pull-request builds from forks (default: withheld)'),
  ).action(
    action(async (first: string, second: string | undefined, flags: Flags) => {
      const { project, name } = target('set', first, second, flags);
      const value = await readValue(io, name);
      const info = await client(flags).setSecret(project, name, {
        value,
        allowForks: flags.allowForks === true,
      });
      io.stdout.write(
        `secret ${name} ${project === null ? '(global)' : `of ${project}`} set${info.allowForks ? ', given to forks too' : ''}\n`,
      );
      return EXIT.ok;
    }),
  );

  remote(
    secret
      .command('list')
      .alias('ls')
      .description('list secret names (every role)')
      .argument('[target]', 'owner/name (omit with --global)')
      .option('--global', 'the global secrets')
      .addOption(
        new Option('-o, --output <format>', 'output format').choices(['table', 'json']).default('table'),
      ),
  ).action(
    action(async (first: string | undefined, flags: Flags) => {
      if (flags.global && first !== undefined)
        throw new UsageError('secret list: give owner/name or --global, not both');
      if (!flags.global && first === undefined)
        throw new UsageError('secret list: give owner/name or --global');
      const project = flags.global ? null : parseSlug(first!);
      const secrets = await client(flags).listSecrets(project);
      if (flags.output === 'json') io.stdout.write(JSON.stringify(secrets, null, 2) + '\n');
      else if (secrets.length === 0)
        io.stderr.write(`no secrets ${project === null ? '(global)' : `for ${project}`}\n`);
      else io.stdout.write(secretsTable(secrets));
      return EXIT.ok;
    }),
  );

  remote(
    secret
      .command('delete')
      .alias('rm')
      .description('delete a secret (admin)')
      .argument('<target>', 'owner/name, or the NAME with --global')
      .argument('[name]', 'secret name')
      .option('--global', 'a global secret'),
  ).action(
    action(async (first: string, second: string | undefined, flags: Flags) => {
      const { project, name } = target('delete', first, second, flags);
      await client(flags).deleteSecret(project, name);
      io.stdout.write(`secret ${name} ${project === null ? '(global)' : `of ${project}`} deleted\n`);
      return EXIT.ok;
    }),
  );
}

function target(
  verb: string,
  first: string,
  second: string | undefined,
  flags: Flags,
): { project: string | null; name: string } {
  if (flags.global) {
    if (second !== undefined)
      throw new UsageError(`secret ${verb} --global NAME: give no project with --global`);
    return { project: null, name: first };
  }
  if (second === undefined)
    throw new UsageError(`secret ${verb}: expected <owner/name> NAME, or --global NAME`);
  return { project: parseSlug(first), name: second };
}

/** The value from stdin: hidden typing on a terminal, else all of it minus one trailing newline. */
export async function readValue(io: SecretCommandIo, name: string, verb = 'secret set'): Promise<string> {
  const value =
    io.stdin.isTTY && io.stdin.setRawMode
      ? await readHidden(io, `value of ${name} (not shown): `, verb)
      : stripNewline(await readAll(io.stdin));
  if (value === '') throw new UsageError(`${verb}: no value for ${name} on stdin`);
  return value;
}

function stripNewline(text: string): string {
  return text.replace(/\r?\n$/, '');
}

async function readAll(stream: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk));
  return Buffer.concat(chunks).toString('utf8');
}

function readHidden(io: SecretCommandIo, prompt: string, verb: string): Promise<string> {
  const stdin = io.stdin;
  io.stderr.write(prompt);
  stdin.setRawMode!(true);
  stdin.resume();
  return new Promise((resolve, reject) => {
    let value = '';
    const finish = (outcome: () => void) => {
      stdin.setRawMode!(false);
      stdin.pause();
      stdin.off('data', onData);
      io.stderr.write('\n');
      outcome();
    };
    const onData = (chunk: Buffer | string) => {
      for (const ch of chunk.toString()) {
        if (ch === '\r' || ch === '\n' || ch === '\u0004') return finish(() => resolve(value));
        if (ch === '\u0003') return finish(() => reject(new UsageError(`${verb}: cancelled`)));
        if (ch === '\u007f' || ch === '\b') value = [...value].slice(0, -1).join('');
        else value += ch;
      }
    };
    stdin.on('data', onData);
  });
}

function secretsTable(secrets: SecretInfoDto[]): string {
  const rows = [
    ['NAME', 'FORKS', 'UPDATED'],
    ...secrets.map((s) => [s.name, s.allowForks ? 'yes' : 'no', s.updatedAt]),
  ];
  return plainTable(rows);
}
