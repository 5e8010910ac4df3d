import { Option, type Command } from 'commander';
import { userRegexProblem } from '../../pipeline/user-regex.js';
import {
  CONCURRENCY_POLICIES,
  PROJECT_EXECUTORS,
  ROLES,
  STATUSES,
  type Build,
  type ConcurrencyPolicy,
  type ProjectExecutor,
  type ProjectUpdate,
  type Role,
  type Status,
} from '../../contract/index.js';
import { EXIT, UsageError } from '../errors.js';
import { BufferedWriter, Style } from '../output.js';
import { apiAction, client, remote, type ConnectionFlags } from './command-kit.js';
import { approvalReport, decidedApproval, untilApplied } from './approval.js';
import { buildDetailText, buildsTable, projectsTable, queueText, tokensTable } from './format.js';
import { followBuild, LogPrinter, printStoredLogs, type StepFilter } from './logs.js';

interface OutputFlags extends ConnectionFlags {
  output: 'table' | 'json';
  color?: boolean;
}

interface ProjectFlags extends ConnectionFlags {
  repo?: string;
  branches?: string;
  policy?: ConcurrencyPolicy;
  maxRunning?: string;
  image?: string;
  executor?: ProjectExecutor | 'none';
  pipelinePath?: string;
}

interface FollowFlags extends ConnectionFlags {
  follow?: boolean;
  color?: boolean;
}

export { apiExitCode } from './command-kit.js';

/**
 * Adds the remote verbs (kubectl style) to `program`: `project create|update|delete`,
 * `get projects|builds|build|queue|tokens`, `trigger`, `logs`, `cancel`, `approve`, `rerun`,
 * `token create|list|revoke`. Each finds the server with `--server`/`SLIPWAY_SERVER` and its
 * token with `--token`/`SLIPWAY_TOKEN`. `exit` receives the exit code: see {@link apiExitCode}
 * for API errors; bad arguments throw {@link UsageError} (exit 2); a followed build ends with
 * 0 on success, 1 otherwise, 130 when cancelled.
 */
export function registerRemoteCommands(program: Command, exit: (code: number) => void): void {
  const action = apiAction(exit);

  // project create|update|delete

  const project = program.command('project').description('create, change or delete a project (admin)');
  projectOptions(
    project
      .command('create')
      .argument('<owner/name>')
      .description('create a project')
      .requiredOption('--repo <url>', 'git repository URL'),
  ).action(
    action(async (slugArg: string, flags: ProjectFlags) => {
      const slug = parseSlug(slugArg);
      const created = await client(flags).createProject({
        slug,
        repoUrl: flags.repo!,
        ...projectBody(flags),
      });
      process.stdout.write(`project ${created.slug} created\n`);
      return EXIT.ok;
    }),
  );
  projectOptions(
    project
      .command('update')
      .argument('<owner/name>')
      .description("change a project's settings")
      .option('--repo <url>', 'git repository URL'),
  ).action(
    action(async (slugArg: string, flags: ProjectFlags) => {
      const slug = parseSlug(slugArg);
      const body = { ...(flags.repo !== undefined ? { repoUrl: flags.repo } : {}), ...projectBody(flags) };
      if (Object.keys(body).length === 0)
        throw new UsageError('project update: nothing to change (see --help)');
      const updated = await client(flags).updateProject(slug, body);
      process.stdout.write(`project ${updated.slug} updated\n`);
      return EXIT.ok;
    }),
  );
  remote(
    project.command('delete').argument('<owner/name>').description('delete a project and its builds'),
  ).action(
    action(async (slugArg: string, flags: ConnectionFlags) => {
      const slug = parseSlug(slugArg);
      await client(flags).deleteProject(slug);
      process.stdout.write(`project ${slug} deleted\n`);
      return EXIT.ok;
    }),
  );

  // get projects|builds|build|queue|tokens

  const get = program.command('get').description('list projects, builds, the queue or tokens');
  listing(remote(get.command('projects').description('list projects with their last build'))).action(
    action(async (flags: OutputFlags) => {
      const projects = await client(flags).listAllProjects();
      return print(
        flags,
        projects,
        projects.length === 0 ? 'no projects' : projectsTable(projects, stdoutStyle(flags), Date.now()),
      );
    }),
  );
  listing(
    remote(
      get
        .command('builds')
        .argument('[owner/name]')
        .description('list builds, newest first (all projects without a project)'),
    ),
  )
    .addOption(new Option('--status <status>', 'only builds with this status').choices(STATUSES))
    .option('--branch <name>', 'only builds of this branch')
    .option('--limit <n>', 'at most this many builds', '20')
    .action(
      action(
        async (
          slugArg: string | undefined,
          flags: OutputFlags & { status?: Status; branch?: string; limit: string },
        ) => {
          const limit = parsePositiveInt('--limit', flags.limit);
          const slug = slugArg === undefined ? undefined : parseSlug(slugArg);
          const api = client(flags);
          const builds: Build[] = [];
          let before: string | undefined;
          do {
            const page = await api.listBuilds({
              ...(slug !== undefined ? { project: slug } : {}),
              ...(flags.status !== undefined ? { status: flags.status } : {}),
              ...(flags.branch !== undefined ? { branch: flags.branch } : {}),
              limit: limit - builds.length,
              ...(before !== undefined ? { before } : {}),
            });
            builds.push(...page.items);
            before = page.nextCursor ?? undefined;
          } while (before !== undefined && builds.length < limit);
          builds.splice(limit);
          const table =
            builds.length === 0
              ? 'no builds'
              : buildsTable(builds, stdoutStyle(flags), Date.now(), slug === undefined);
          return print(flags, builds, table);
        },
      ),
    );
  listing(
    remote(
      get
        .command('build')
        .argument('<owner/name>')
        .argument('<number>')
        .description('show a build with its stages and steps'),
    ),
  ).action(
    action(async (slugArg: string, numberArg: string, flags: OutputFlags) => {
      const api = client(flags);
      const build = await api.getProjectBuild(parseSlug(slugArg), parseBuildNumber(numberArg));
      // The API names the original by its global id; people know builds by their number.
      const original =
        build.rerunOf === null || flags.output === 'json'
          ? undefined
          : await api.getBuild(build.rerunOf).catch(() => undefined);
      return print(flags, build, buildDetailText(build, stdoutStyle(flags), Date.now(), original?.number));
    }),
  );
  listing(
    remote(get.command('queue').description('running and queued builds, and why each queued one waits')),
  ).action(
    action(async (flags: OutputFlags) => {
      const queue = await client(flags).queue();
      return print(flags, queue, queueText(queue, stdoutStyle(flags), Date.now()));
    }),
  );
  const listTokens = action(async (flags: OutputFlags) => {
    const tokens = await client(flags).listTokens();
    return print(
      flags,
      tokens,
      tokens.length === 0 ? 'no tokens' : tokensTable(tokens, stdoutStyle(flags), Date.now()),
    );
  });
  listing(remote(get.command('tokens').description('list API tokens (admin)'))).action(listTokens);

  // trigger, logs, cancel, approve, rerun

  colour(
    remote(
      program
        .command('trigger')
        .argument('<owner/name>')
        .description('start a build of a branch (any branch: the filter is for webhooks)'),
    ),
  )
    .requiredOption('--branch <name>', 'branch to build')
    .option('--commit <sha>', 'commit to build (default: the head of the branch)')
    .option('--tag <name>', 'tag of the build')
    .option('--follow', 'stream the log, then exit 0 on success, 1 on failure, 130 when cancelled')
    .action(
      action(
        async (slugArg: string, flags: FollowFlags & { branch: string; commit?: string; tag?: string }) => {
          const slug = parseSlug(slugArg);
          const api = client(flags);
          const build = await api.trigger(
            slug,
            {
              branch: flags.branch,
              ...(flags.commit !== undefined ? { commit: flags.commit } : {}),
              ...(flags.tag !== undefined ? { tag: flags.tag } : {}),
            },
            (warning) => process.stderr.write(`slipway: warning: ${warning}\n`),
          );
          process.stdout.write(`${build.project} #${build.number} ${build.status}\n`);
          return flags.follow ? followBuild(api, build, followTarget(flags)) : EXIT.ok;
        },
      ),
    );

  colour(
    remote(
      program
        .command('logs')
        .argument('<owner/name>')
        .argument('<number>')
        .description("print a build's log, every line prefixed [stage/step]"),
    ),
  )
    .option(
      '-f, --follow',
      'follow the live log to the end; exit 0 on success, 1 on failure, 130 when cancelled',
    )
    .option('--step <stage/step>', "only this step's log, without prefixes")
    .action(
      action(async (slugArg: string, numberArg: string, flags: FollowFlags & { step?: string }) => {
        const slug = parseSlug(slugArg);
        const number = parseBuildNumber(numberArg);
        const only = flags.step === undefined ? undefined : parseStep(flags.step);
        const api = client(flags);
        const build = await api.getProjectBuild(slug, number);
        if (flags.follow)
          return followBuild(api, build, { ...followTarget(flags), ...(only ? { only } : {}) });
        if (only) {
          const text = await api.stepLog(build.id, only.stage, only.step);
          process.stdout.write(text.length === 0 || text.endsWith('\n') ? text : `${text}\n`);
          return EXIT.ok;
        }
        const out = new BufferedWriter(process.stdout);
        await printStoredLogs(api, build.id, new LogPrinter(out, stdoutStyle(flags)));
        await out.drain();
        return EXIT.ok;
      }),
    );

  remote(
    program
      .command('cancel')
      .argument('<owner/name>')
      .argument('<number>')
      .description('cancel a queued or running build'),
  ).action(
    action(async (slugArg: string, numberArg: string, flags: ConnectionFlags) => {
      const slug = parseSlug(slugArg);
      const api = client(flags);
      const build = await api.getProjectBuild(slug, parseBuildNumber(numberArg));
      const after = await api.cancel(build.id);
      const state = after.status === 'cancelled' ? 'cancelled' : `cancel requested (${after.status})`;
      process.stdout.write(`${after.project} #${after.number} ${state}\n`);
      return EXIT.ok;
    }),
  );

  remote(
    program
      .command('approve')
      .argument('<owner/name>')
      .argument('<number>')
      .description('approve (or reject) the stage a build waits at'),
  )
    .option('--reject', 'reject instead: the stage fails (`when.status` stages may still run)')
    .option('--reason <text>', 'why, for the record: one line (shown on the build and in its log)')
    .addOption(new Option('--comment <text>', 'the same as --reason').hideHelp())
    .addOption(new Option('--message <text>', 'the same as --reason, with --reject').hideHelp())
    .action(
      action(
        async (
          slugArg: string,
          numberArg: string,
          flags: ConnectionFlags & { reject?: boolean; reason?: string; comment?: string; message?: string },
        ) => {
          const slug = parseSlug(slugArg);
          const number = parseBuildNumber(numberArg);
          if (flags.message !== undefined && !flags.reject)
            throw new UsageError('--message goes with --reject (or give --reason)');
          const given = [flags.reason, flags.comment, flags.message].filter((v) => v !== undefined);
          if (given.length > 1) throw new UsageError('give the reason once (--reason)');
          const reason = given[0];
          const api = client(flags);
          const build = await api.getProjectBuild(slug, number);
          const decided = flags.reject
            ? await api.reject(build.id, reason)
            : await api.approve(build.id, reason);
          const stage = decidedApproval(decided)?.stage;
          const after = await untilApplied(api, decided, stage);
          process.stdout.write(approvalReport(after, stage));
          return EXIT.ok;
        },
      ),
    );

  colour(
    remote(
      program
        .command('rerun')
        .argument('<owner/name>')
        .argument('<number>')
        .description('start a new build of the same commit'),
    ),
  )
    .option(
      '--failed',
      'run only the steps that did not succeed (with what needs them and later stages); reuse the rest',
    )
    .option(
      '--follow',
      "stream the new build's log, then exit 0 on success, 1 on failure, 130 when cancelled",
    )
    .action(
      action(async (slugArg: string, numberArg: string, flags: FollowFlags & { failed?: boolean }) => {
        const slug = parseSlug(slugArg);
        const number = parseBuildNumber(numberArg);
        const api = client(flags);
        const build = await api.rerun((await api.getProjectBuild(slug, number)).id, flags.failed === true);
        const what = flags.failed ? 're-run of what failed in' : 're-run of';
        process.stdout.write(`${build.project} #${build.number} ${build.status} (${what} #${number})\n`);
        return flags.follow ? followBuild(api, build, followTarget(flags)) : EXIT.ok;
      }),
    );

  // token create|list|revoke

  const token = program.command('token').description('manage API tokens (admin)');
  remote(
    token
      .command('create')
      .description('create a token; prints only the secret, so that scripts can capture it'),
  )
    .requiredOption('--name <name>', 'what the token is for')
    .addOption(
      new Option('--role <role>', 'viewers read; members trigger, cancel, approve; admins manage')
        .choices(ROLES)
        .makeOptionMandatory(),
    )
    .action(
      action(async (flags: ConnectionFlags & { name: string; role: Role }) => {
        const created = await client(flags).createToken({ name: flags.name, role: flags.role });
        process.stdout.write(`${created.token}\n`);
        process.stderr.write(
          `token ${created.id} "${created.name}" (${created.role}) created; it is shown only this once\n`,
        );
        return EXIT.ok;
      }),
    );
  listing(remote(token.command('list').description('list API tokens (same as get tokens)'))).action(
    listTokens,
  );
  remote(
    token.command('revoke').argument('<id>').description('revoke a token: it stops working at once'),
  ).action(
    action(async (idArg: string, flags: ConnectionFlags) => {
      const id = parsePositiveInt('token id', idArg);
      await client(flags).revokeToken(id);
      process.stdout.write(`token ${id} revoked\n`);
      return EXIT.ok;
    }),
  );
}

function colour(command: Command): Command {
  return command.option('--color', 'force colour').option('--no-color', 'no colour');
}

function listing(command: Command): Command {
  return colour(command).addOption(
    new Option('-o, --output <format>', 'output format').choices(['table', 'json']).default('table'),
  );
}

function projectOptions(command: Command): Command {
  return remote(command)
    .option('--branches <regex>', 'branch filter: webhooks build only refs matching it')
    .addOption(
      new Option(
        '--policy <policy>',
        'a newer build of a busy branch waits (queue) or cancels the older one (supersede)',
      ).choices(CONCURRENCY_POLICIES),
    )
    .option('--max-running <n>', 'running builds of this project at most ("none": no project limit)')
    .option('--image <image>', 'default container image ("none" clears it)')
    .addOption(
      new Option('--executor <name>', 'default executor ("none" clears it)').choices([
        ...PROJECT_EXECUTORS,
        'none',
      ]),
    )
    .option('--pipeline-path <path>', 'pipeline file in the repository (default .slipway.yml)');
}

function projectBody(flags: ProjectFlags): ProjectUpdate {
  const body: ProjectUpdate = {};
  if (flags.branches !== undefined) {
    // The server matches it with RE2: what RE2 cannot run is refused here, before any request.
    const problem = userRegexProblem(flags.branches);
    if (problem !== undefined) {
      throw new UsageError(
        `--branches "${flags.branches}": not a regular expression RE2 can run (${problem})`,
      );
    }
    body.branchFilter = flags.branches;
  }
  if (flags.policy !== undefined) body.concurrencyPolicy = flags.policy;
  if (flags.maxRunning !== undefined) {
    body.maxRunning =
      flags.maxRunning === 'none' ? null : parsePositiveInt('--max-running', flags.maxRunning);
  }
  if (flags.image !== undefined) body.defaultImage = flags.image === 'none' ? null : flags.image;
  if (flags.executor !== undefined) body.defaultExecutor = flags.executor === 'none' ? null : flags.executor;
  if (flags.pipelinePath !== undefined) body.pipelinePath = flags.pipelinePath;
  return body;
}

function stdoutStyle(flags: { color?: boolean }): Style {
  return new Style(flags.color ?? (process.stdout.isTTY === true && !process.env.NO_COLOR));
}

function followTarget(flags: { color?: boolean }) {
  return {
    out: new BufferedWriter(process.stdout),
    style: stdoutStyle(flags),
    notes: (text: string) => process.stderr.write(`${text}\n`),
    noteStyle: new Style(flags.color ?? (process.stderr.isTTY === true && !process.env.NO_COLOR)),
  };
}

function print(flags: OutputFlags, value: unknown, table: string): number {
  if (flags.output === 'json') process.stdout.write(JSON.stringify(value, null, 2) + '\n');
  else if (table.endsWith('\n')) process.stdout.write(table);
  // An empty listing says so on stderr, keeping stdout empty for scripts (as kubectl does).
  else process.stderr.write(`${table}\n`);
  return EXIT.ok;
}

/** `owner/name`, both parts non-empty, no blanks. */
export function parseSlug(text: string): string {
  if (!/^[^/\s]+\/[^/\s]+$/.test(text)) throw new UsageError(`"${text}": expected a project as owner/name`);
  return text;
}

/** A build number as people write it: `42` or `#42`. */
export function parseBuildNumber(text: string): number {
  return parsePositiveInt('build number', text.startsWith('#') ? text.slice(1) : text);
}

/** `stage/step`: split at the first slash, since stage names have none. */
export function parseStep(text: string): StepFilter {
  const slash = text.indexOf('/');
  if (slash <= 0 || slash === text.length - 1) throw new UsageError(`--step "${text}": expected stage/step`);
  return { stage: text.slice(0, slash), step: text.slice(slash + 1) };
}

function parsePositiveInt(what: string, text: string): number {
  if (!/^\d+$/.test(text) || Number(text) < 1 || !Number.isSafeInteger(Number(text))) {
    throw new UsageError(`${what} "${text}": expected a positive whole number`);
  }
  return Number(text);
}
