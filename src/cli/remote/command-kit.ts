import type { Command } from 'commander';
import { EXIT, UsageError } from '../errors.js';
import { ApiClientError, resolveConnection, SlipwayClient } from './api-client.js';

/** `--server` and `--token`, which every remote verb takes. */
export interface ConnectionFlags {
  server?: string;
  token?: string;
}

/**
 * Exit code for an API error. A mistake in what the user asked — an invalid or unknown
 * value (400, 422), a project or build that does not exist (404), a request that does not fit
 * the current state (409) — is a usage error, exit 2, like a bad flag. Everything about the
 * environment — server unreachable, token refused (401) or lacking the role (403), rate
 * limits, server errors — is exit 1.
 */
/** Where a remote command writes; replaceable in tests. */
export interface CommandIo {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
}

export function apiExitCode(error: ApiClientError): number {
  if (error.status >= 400 && error.status < 500 && ![401, 403, 408, 429].includes(error.status))
    return EXIT.usage;
  return EXIT.buildFailed;
}

/**
 * Wraps a remote verb: its result is the exit code, and an API error becomes its message on
 * stderr and {@link apiExitCode}. Anything else (a usage error) goes on to `main()`.
 */
export function apiAction(exit: (code: number) => void, stderr: NodeJS.WritableStream = process.stderr) {
  return <A extends unknown[]>(fn: (...args: A) => Promise<number>) =>
    async (...args: A): Promise<void> => {
      try {
        exit(await fn(...args));
      } catch (error) {
        if (!(error instanceof ApiClientError)) throw error;
        stderr.write(`slipway: ${error.message}\n`);
        exit(apiExitCode(error));
      }
    };
}

/** Adds `--server` and `--token` to a remote verb. */
export function remote(command: Command): Command {
  return command
    .option('--server <url>', 'Slipway server (default: $SLIPWAY_SERVER, else http://127.0.0.1:8080)')
    .option('--token <token>', 'API token (default: $SLIPWAY_TOKEN)');
}

/** The `project` command that verbs about one project's settings hang under, made if absent. */
export function projectCommand(program: Command): Command {
  return (
    program.commands.find((c) => c.name() === 'project') ??
    program.command('project').description('create, change or delete a project (admin)')
  );
}

/** The API client for the server and token the flags (or the environment) name. */
export function client(flags: ConnectionFlags): SlipwayClient {
  try {
    return new SlipwayClient(resolveConnection(flags));
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
}

/** A plain table: a header row, columns padded to their widest cell, the last one left free. */
export function plainTable(rows: readonly string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return (
    rows
      .map((r) => r.map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i]!))).join('  '))
      .join('\n') + '\n'
  );
}
