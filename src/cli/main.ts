import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { Command, CommanderError, Option } from 'commander';
import {
  compilePipeline,
  describeMatrices,
  formatPipelineError,
  pipelineJsonSchema,
  PLACEHOLDER_CONTEXT,
} from '../pipeline/index.js';
import { ExecutorError } from '../executors/types.js';
import { compileWithIncludes } from '../pipeline/include.js';
import { localIncludes, repositoryRoot } from '../executors/repo-files.js';
import { engineTimeoutOption } from './engine-timeout.js';
import { EXIT, UsageError } from './errors.js';
import { EXECUTOR_CHOICES } from './executor-choice.js';
import { registerManifestsCommand } from './commands/manifests.js';
import { registerMaintenanceCommands } from './maintenance.js';
import { registerArtifactCommands } from './remote/artifact-commands.js';
import { registerTestCommands } from './remote/test-commands.js';
import { registerRemoteCommands } from './remote/commands.js';
import { registerScheduleCommands } from './remote/schedule-commands.js';
import { registerCacheCommands } from './remote/cache-commands.js';
import { registerSecretCommands } from './remote/secret-commands.js';
import { registerWebhookCommands } from './remote/webhook-commands.js';
import { registerBadgeCommand } from './remote/badge-commands.js';
import { registerEmailCommands } from './remote/email-commands.js';
import { registerCommitStatusCommands } from './remote/commit-status-commands.js';
import { withKubernetesOptions } from './kubernetes-options.js';
import { registerServerCommand } from './server-command.js';
import type { RunCommandOptions } from './run.js';

const collect = (value: string, previous: string[]) => [...previous, value];

/** Builds the `slipway` command tree; `exit` receives the process exit code. */
export function buildProgram(exit: (code: number) => void): Command {
  const program = new Command('slipway')
    .description('Slipway: CI/CD builds in fresh, ephemeral containers')
    .version(packageVersion(), '-V, --version', 'print the version of slipway')
    .showHelpAfterError()
    .exitOverride();

  withKubernetesOptions(program.command('run'))
    .description('run a pipeline file on this machine, without a server')
    .option('-f, --file <path>', 'pipeline file', '.slipway.yml')
    .addOption(
      new Option('--executor <name>', 'where steps run (auto: docker if an engine answers, else local)')
        .choices(EXECUTOR_CHOICES)
        .default('auto'),
    )
    .option(
      '--env <NAME=VALUE>',
      'set a variable for the pipeline; wins over the file (repeatable)',
      collect,
      [],
    )
    .option(
      '--secret <NAME[=VALUE]>',
      'a secret for from_secret; without =VALUE taken from $NAME (repeatable)',
      collect,
      [],
    )
    .option('--branch <name>', "branch of the build (default: the checkout's branch, else main)")
    .option('--tag <name>', 'tag of the build (sets SLIPWAY_TAG)')
    .option('--commit <sha>', "commit of the build (default: the checkout's HEAD)")
    .addOption(
      new Option('--event <event>', 'event that triggered the build')
        .choices(['push', 'tag', 'pull_request', 'manual', 'cron'])
        .default('manual'),
    )
    .option('--project <owner/name>', 'project name (default: from the git remote, else local/<dir>)')
    .option('--number <n>', 'build number (SLIPWAY_BUILD_NUMBER)', '1')
    .option('--report <file>', 'write the result tree as JSON')
    .option('--approve', 'approve stages that need approval (otherwise they and the rest are skipped)', false)
    .option(
      '--workdir <dir>',
      'local: run in this directory; docker: copy this directory into the workspace (default: copy the current directory)',
    )
    .option(
      '--include-ignored',
      'copy files git ignores (node_modules, build output) into the workspace too (default: only what git would commit)',
    )
    .option('--with-git', 'copy .git (the history) into the workspace too')
    .option('--parallelism <n>', 'steps of a stage running at once (default: number of CPUs)')
    .option('--engine <address>', 'docker: engine address (unix socket, unix://, tcp://)')
    .addOption(engineTimeoutOption())
    .addOption(
      new Option('--pull <policy>', 'docker: when to pull images').choices(['missing', 'always', 'never']),
    )
    .option(
      '--dry-run',
      'kubernetes: print the objects the build would create (secrets redacted), run nothing',
    )
    .addOption(
      new Option('-o, --output <format>', 'with --dry-run: yaml or json')
        .choices(['yaml', 'json'])
        .default('yaml'),
    )
    .option('--color', 'force colour')
    .option('--no-color', 'no colour')
    // Imported when run: the orchestrator and the local executor are not on the path of other commands.
    .action(async (options: RunCommandOptions) => exit(await (await import('./run.js')).runCommand(options)));

  program
    .command('validate')
    .description('compile a pipeline file and print its errors, or "ok"')
    .option('-f, --file <path>', 'pipeline file', '.slipway.yml')
    .action(async (options: { file: string }) => {
      const source = await readSource(options.file);
      // Files it includes are read from the working tree of its repository.
      const includes = localIncludes(await repositoryRoot(options.file, process.cwd()));
      const compiled = await compileWithIncludes(
        { file: options.file, source, context: PLACEHOLDER_CONTEXT },
        includes,
        compilePipeline,
      );
      if (compiled.ok) {
        // The cells each matrix expands to, after "ok": what will run, by name.
        const cells = describeMatrices(compiled.plan);
        process.stdout.write(['ok', ...cells].join('\n') + '\n');
        return exit(EXIT.ok);
      }
      process.stderr.write(compiled.errors.map(formatPipelineError).join('\n') + '\n');
      exit(EXIT.usage);
    });

  program
    .command('schema')
    .description('print the JSON Schema of the pipeline file, for editors')
    .action(() => {
      process.stdout.write(JSON.stringify(pipelineJsonSchema(), null, 2) + '\n');
      exit(EXIT.ok);
    });

  registerMaintenanceCommands(program, exit);
  registerRemoteCommands(program, exit);
  registerSecretCommands(program, exit);
  registerWebhookCommands(program, exit);
  registerEmailCommands(program, exit);
  registerCommitStatusCommands(program, exit);
  registerArtifactCommands(program, exit);
  registerTestCommands(program, exit);
  registerBadgeCommand(program, exit);
  registerScheduleCommands(program, exit);
  registerCacheCommands(program, exit);
  registerServerCommand(program, exit);
  registerManifestsCommand(program, exit);
  return program;
}

/** The version in package.json, which sits two levels up from both src/cli and dist/cli. */
export function packageVersion(): string {
  try {
    const manifest = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
      version?: unknown;
    };
    return typeof manifest.version === 'string' ? manifest.version : 'unknown';
  } catch {
    return 'unknown';
  }
}

async function readSource(file: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new UsageError(
      code === 'ENOENT' ? `${file}: no such file` : `${file}: cannot read: ${String(error)}`,
    );
  }
}

/** Runs the CLI; every expected failure becomes a message and an exit code, never a stack trace. */
export async function main(argv: string[]): Promise<number> {
  let code: number = EXIT.ok;
  const program = buildProgram((c) => (code = c));
  try {
    await program.parseAsync(argv, { from: 'user' });
    return code;
  } catch (error) {
    if (error instanceof CommanderError) {
      return error.exitCode === 0 ? EXIT.ok : EXIT.usage;
    }
    if (error instanceof UsageError) {
      process.stderr.write(`slipway: ${error.message}\n`);
      return EXIT.usage;
    }
    // Errors of the server's parts that carry a message meant for the operator.
    const operatorErrors = ['StoreError', 'SecretError', 'BlobError'];
    if (error instanceof ExecutorError || (error instanceof Error && operatorErrors.includes(error.name))) {
      process.stderr.write(`slipway: ${error.message}\n`);
      return EXIT.buildFailed;
    }
    process.stderr.write(
      `slipway: internal error: ${error instanceof Error ? error.message : String(error)}\n`,
    );
    if (process.env.SLIPWAY_DEBUG) process.stderr.write(`${error instanceof Error ? error.stack : ''}\n`);
    return EXIT.buildFailed;
  }
}
