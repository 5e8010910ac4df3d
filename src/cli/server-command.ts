import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Option, type Command } from 'commander';
import { engineTimeoutFrom, engineTimeoutOption } from './engine-timeout.js';
import { LEASE_ENV, leaseSettingsFrom, RECONCILE_INTERVAL_ENV } from './lease-options.js';
import { UsageError } from './errors.js';
import {
  kubernetesExecutorFrom,
  kubernetesSettings,
  withKubernetesOptions,
  type KubernetesCliOptions,
} from './kubernetes-options.js';
import { MAX_TIMEOUT_MS, parseDuration } from '../pipeline/duration.js';
import { oidcSettingsFrom, withOidcOptions, type OidcCliOptions } from './oidc-options.js';
import { smtpConfigFrom, withSmtpOptions, type SmtpCliOptions } from './smtp-options.js';

interface ServerOptions extends KubernetesCliOptions, SmtpCliOptions, OidcCliOptions {
  host: string;
  port: string;
  dataDir: string;
  database?: string;
  executor: 'auto' | 'local' | 'docker' | 'kubernetes';
  buildUser: string;
  pull?: string;
  workspaceRoot?: string;
  engine?: string;
  engineTimeout?: string;
  globalLimit?: string;
  replicaId?: string;
  publicUrl?: string;
  blobs?: string;
  keepBuilds?: string;
  maxLogBytes?: string;
  keepDays?: string;
  artifactMaxFile?: string;
  artifactMaxBuild?: string;
  cacheMaxProject?: string;
  cacheMaxAge?: string;
  cacheDefaultBranch?: string;
  hookBodyLimit?: string;
  drainTimeout?: string;
  lease?: string;
  reconcileInterval?: string;
  scheduleInterval?: string;
  quiet: boolean;
}

/**
 * `slipway server`: runs until SIGINT/SIGTERM, then stops taking builds and leaves the running
 * ones to its successor (which re-attaches to their steps), after draining them for up to
 * `--drain-timeout`. A second signal stops at once.
 */
export function registerServerCommand(program: Command, exit: (code: number) => void): void {
  withOidcOptions(withSmtpOptions(withKubernetesOptions(program.command('server'))))
    .description('start the Slipway server (API, web UI, scheduler)')
    .option('--host <address>', 'address to listen on', process.env.SLIPWAY_HOST ?? '127.0.0.1')
    .option('--port <port>', 'port to listen on', process.env.SLIPWAY_PORT ?? '8080')
    .option(
      '--data-dir <dir>',
      'where the database, logs and workspaces live',
      process.env.SLIPWAY_DATA_DIR ?? '.slipway-data',
    )
    .option(
      '--database <url>',
      'sqlite:<path> or postgres://… (default: SQLite in the data dir)',
      process.env.SLIPWAY_DATABASE,
    )
    .addOption(
      new Option(
        '--executor <name>',
        'auto or docker: steps in containers (auto: builds end `error` while no engine answers); ' +
          'local: builds run as host processes with the rights of the build user; ' +
          'kubernetes: each build is a pod in --namespace',
      )
        .choices(['auto', 'local', 'docker', 'kubernetes'])
        .default(process.env.SLIPWAY_EXECUTOR ?? 'auto'),
    )
    .option(
      '--build-user <name>',
      'local: the unprivileged user builds run as (created when the server is root); ' +
        "`self` = the server's own user: builds can read and change the server's data",
      process.env.SLIPWAY_BUILD_USER ?? 'slipway-build',
    )
    .option(
      '--workspace-root <dir>',
      'local: where build workspaces live, outside the data dir (default /var/tmp/slipway-workspaces-<installation>)',
      process.env.SLIPWAY_WORKSPACE_ROOT,
    )
    .option('--engine <address>', 'docker: engine address (default: DOCKER_HOST, then the usual sockets)')
    .addOption(engineTimeoutOption())
    .addOption(
      new Option('--pull <policy>', 'kubernetes: when nodes pull images').choices([
        'missing',
        'always',
        'never',
      ]),
    )
    .option(
      '--global-limit <n>',
      'builds running at once across all projects (default: number of CPUs, at least 2)',
    )
    .option(
      '--replica-id <id>',
      'name of this server process among replicas sharing a database (default: host:port)',
    )
    .option(
      '--public-url <url>',
      'address people reach the server at, for links in notifications',
      process.env.SLIPWAY_PUBLIC_URL,
    )
    .option(
      '--blobs <where>',
      'logs and artifacts: a directory or s3://bucket/prefix (default: in the data dir)',
      process.env.SLIPWAY_BLOBS,
    )
    .option('--keep-builds <n>', 'retention: keep the newest N builds per project (default: all)')
    .option('--keep-days <d>', 'retention: keep builds of the last D days per project (default: all)')
    .option('--max-log-bytes <bytes>', "cap on one build's log; past it output is dropped (default 64 MiB)")
    .option('--artifact-max-file <bytes>', 'largest artifact file (default 100 MiB)')
    .option('--artifact-max-build <bytes>', 'all artifacts of a build together (default 1 GiB)')
    .option('--cache-max-project <bytes>', "step caches a project keeps; least recently used go first (default 2 GiB)")
    .option('--cache-max-age <days>', 'a step cache not restored for this many days is removed (default 7)')
    .option('--cache-default-branch <name>', "branch whose caches builds of other branches fall back to (default main)")
    .option('--hook-body-limit <bytes>', 'largest webhook delivery accepted (default 5 MiB)')
    .option(
      '--drain-timeout <duration>',
      'on SIGTERM/SIGINT, wait this long (90s, 5m, 1h30m) for running builds to end before leaving ' +
        'the rest running for the next server to re-attach (default 0: leave them at once)',
      process.env.SLIPWAY_DRAIN_TIMEOUT,
    )
    .option(
      '--lease <duration>',
      'replicas: how long a build stays with a server that stopped renewing it (it renews every third); ' +
        `then another replica takes it over and re-attaches (env ${LEASE_ENV}; default 30s, at least 2s)`,
    )
    .option(
      '--reconcile-interval <duration>',
      'replicas: how often to look for builds whose lease expired, shorter than the lease ' +
        `(env ${RECONCILE_INTERVAL_ENV}; default 15s or half the lease)`,
    )
    .option(
      '--schedule-interval <duration>',
      'how often to look for due schedules (default 10s; ticks missed while down run once at start-up)',
    )
    .option('--quiet', 'no request log', false)
    .action(async (options: ServerOptions) => {
      // Any user may read /proc/<pid>/cmdline, builds on the local executor too: hide options
      // such as --database postgres://user:password@… from the process list.
      process.title = 'slipway server';
      const port = Number(options.port);
      if (!Number.isInteger(port) || port < 0 || port > 65535)
        throw new UsageError(`--port "${options.port}": expected 0-65535`);
      const globalLimit = options.globalLimit === undefined ? undefined : Number(options.globalLimit);
      if (globalLimit !== undefined && (!Number.isInteger(globalLimit) || globalLimit < 1)) {
        throw new UsageError(`--global-limit "${options.globalLimit}": expected a whole number of 1 or more`);
      }
      const engineTimeout = engineTimeoutFrom(options.engineTimeout);
      const drainMs = options.drainTimeout === undefined ? 0 : parseDuration(options.drainTimeout.trim());
      if (drainMs === undefined || drainMs > MAX_TIMEOUT_MS) {
        throw new UsageError(
          `--drain-timeout "${options.drainTimeout}": expected a duration such as 90s, 5m or 1h30m (at most 168h)`,
        );
      }
      const { leaseMs, reconcileMs } = leaseSettingsFrom(options);
      const scheduleMs =
        options.scheduleInterval === undefined ? undefined : parseDuration(options.scheduleInterval.trim());
      if (
        options.scheduleInterval !== undefined &&
        (scheduleMs === undefined || scheduleMs < 1000 || scheduleMs > 3_600_000)
      ) {
        throw new UsageError(
          `--schedule-interval "${options.scheduleInterval}": expected a duration from 1s to 1h, such as 10s`,
        );
      }
      // Checked before anything starts: a bad option is a usage error, not a half-started server.
      if (options.executor === 'kubernetes') kubernetesSettings(options);
      const oidc = oidcSettingsFrom(options, options.publicUrl);
      const email = smtpConfigFrom(options);
      const { startServer } = await import('../server/server.js');
      const server = await startServer({
        host: options.host,
        port,
        dataDir: options.dataDir,
        ...(options.database !== undefined ? { database: options.database } : {}),
        executor: options.executor,
        ...(options.executor === 'kubernetes'
          ? { createKubernetes: () => kubernetesExecutorFrom(options) }
          : {}),
        buildUser: options.buildUser,
        ...(options.workspaceRoot !== undefined ? { workspaceRoot: options.workspaceRoot } : {}),
        ...(options.engine !== undefined ? { engine: options.engine } : {}),
        ...engineTimeout,
        ...(globalLimit !== undefined ? { globalLimit } : {}),
        leaseMs,
        reconcileMs,
        ...(scheduleMs !== undefined ? { scheduleMs } : {}),
        ...(options.replicaId !== undefined ? { replicaId: options.replicaId } : {}),
        ...(options.publicUrl !== undefined ? { publicUrl: options.publicUrl } : {}),
        ...(email !== undefined ? { email } : {}),
        ...(options.blobs !== undefined ? { blobs: options.blobs } : {}),
        ...optionalCount('--keep-builds', options.keepBuilds, 'keepBuilds'),
        ...optionalCount('--keep-days', options.keepDays, 'keepDays'),
        ...optionalCount('--max-log-bytes', options.maxLogBytes, 'maxLogBytes'),
        ...optionalCount('--artifact-max-file', options.artifactMaxFile, 'artifactMaxFile'),
        ...optionalCount('--artifact-max-build', options.artifactMaxBuild, 'artifactMaxBuild'),
        ...optionalCount('--cache-max-project', options.cacheMaxProject, 'cacheMaxProject'),
        ...optionalCount('--cache-max-age', options.cacheMaxAge, 'cacheMaxAgeDays'),
        ...(options.cacheDefaultBranch !== undefined ? { cacheDefaultBranch: options.cacheDefaultBranch } : {}),
        ...optionalCount('--hook-body-limit', options.hookBodyLimit, 'hookBodyLimit'),
        ...(webRoot() !== undefined ? { webRoot: webRoot()! } : {}),
        quiet: options.quiet,
        ...(oidc !== undefined ? { oidc } : {}),
        collectWhenIdle: true,
      }).catch((error: unknown) => {
        const code = (error as NodeJS.ErrnoException).code;
        if (code === 'EADDRINUSE')
          throw new UsageError(`port ${port} on ${options.host} is in use; choose another with --port`);
        if (code === 'EACCES')
          throw new UsageError(`not allowed to listen on ${options.host}:${port}; choose a port above 1023`);
        throw error;
      });
      await new Promise<void>((resolve) => {
        const stop = (signal: NodeJS.Signals) => {
          process.stderr.write(
            `${signal}: stopping; running builds are left for the next server to re-attach` +
              `${drainMs > 0 ? ` (after up to ${options.drainTimeout} for them to end)` : ''}…\n`,
          );
          // A second signal while draining: leave the builds now (they are re-attached later).
          const again = () => {
            process.stderr.write('stopping now\n');
            exit(0);
          };
          process.once('SIGINT', again);
          process.once('SIGTERM', again);
          void server.close({ detach: true, drainMs }).then(resolve, resolve);
        };
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
      });
      exit(0);
    });
}

function optionalCount<K extends string>(
  option: string,
  value: string | undefined,
  key: K,
): Partial<Record<K, number>> {
  if (value === undefined) return {};
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1)
    throw new UsageError(`${option} "${value}": expected a whole number of 1 or more`);
  return { [key]: n } as Partial<Record<K, number>>;
}

/** The built web UI, when present (`web/dist`, next to `dist/`). */
function webRoot(): string | undefined {
  const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'web', 'dist');
  return existsSync(join(root, 'index.html')) ? root : undefined;
}
