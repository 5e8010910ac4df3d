import { availableParallelism, hostname } from 'node:os';
import { join, resolve } from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { Kysely } from 'kysely';
import { DEFAULT_BUILD_USER, ensureOwnDirectory, resolveBuildUser } from '../executors/local/build-user.js';
import { LocalExecutor } from '../executors/local/local-executor.js';
import type { Executor } from '../executors/types.js';
import {
  createInitialAdminToken,
  installationId,
  migrateToLatest,
  openDatabase,
  type Database,
  type Build,
} from '../store/index.js';
import { buildApp } from './api/app.js';
import { executorRoutes } from './api/routes/executors.js';
import { hookSettingsRoutes, registerHookRoutes, scriptsPipelineSource } from './hooks/index.js';
import { createBlobStore } from '../blobs/index.js';
import { createArtifactCollector, registerArtifactRoutes } from './artifacts/index.js';
import { CacheService } from './caches/service.js';
import { registerCacheRoutes } from './caches/routes.js';
import { createReportCollector } from './reports/collector.js';
import { registerReportRoutes } from './reports/routes.js';
import { BlobLogStore } from './logs/blob-log-store.js';
import { FsLogStore } from './logs/fs-log-store.js';
import type { LogStore } from './logs/types.js';
import { registerRetentionRoutes, startRetention } from './retention.js';
import { startMirrorPruning } from './sources/git-mirror.js';
import { DEFAULT_SCHEDULE_INTERVAL_MS, registerScheduleRoutes, ScheduleRunner } from './schedules/index.js';
import { badgeRoutes, badgeSettingsRoutes } from './badges/index.js';
import { OidcProvider, authMethodRoutes, oidcRoutes } from './auth/oidc/index.js';
import type { OidcSettings } from './auth/oidc/index.js';
import { loadSecretKey, registerSecretRoutes, secretsFor } from './secrets/index.js';
import { gitRepoUrl, sealStoredRepoCredentials } from './secrets/repo-credentials.js';
import { createNotifierHub } from './notify/index.js';
import { createSmtpTransport, EmailNotifier, registerEmailRoutes, type SmtpConfig } from './email/index.js';
import { CommitStatusNotifier, registerCommitStatusRoutes } from './commit-status/index.js';
import { LogHub } from './logs/log-hub.js';
import { Metrics } from './metrics.js';
import { DatabaseBuildControl } from './scheduler/build-control.js';
import { ExecutorIds, ExecutorPool } from './scheduler/executor-pool.js';
import { reconcile } from './scheduler/reconciler.js';
import { Scheduler } from './scheduler/scheduler.js';
import { prettyLogStream } from './console-log.js';
import { makePrivateDir } from './data-dir.js';
import { collectWhenIdle } from './idle-memory.js';
import type { ErrorLog } from './internal-error.js';

export interface ServerConfig {
  host: string;
  port: number;
  dataDir: string;
  /** `sqlite:<path>` or `postgres://…`; default SQLite under the data dir. */
  database?: string;
  /**
   * `auto` (docker if an engine answers, else builds end `error`: never local), `local` (host
   * processes as `buildUser`: only when named), `docker` or `kubernetes`.
   */
  executor: 'auto' | 'local' | 'docker' | 'kubernetes';
  /** kubernetes: makes the executor (the CLI builds it from its options: cluster, namespace). */
  createKubernetes?: () => Promise<Executor>;
  /**
   * local: who steps run as; default `slipway-build`, created when the server is root and it
   * does not exist. `self` runs them as the server's user (they can then change its data).
   */
  buildUser?: string;
  /**
   * local: where workspaces and the clones moved into them live, outside the data dir;
   * default `/var/tmp/slipway-workspaces-<installation>`.
   */
  workspaceRoot?: string;
  engine?: string;
  /** Bound on the container engine's answers while finding it (`--engine-timeout`); see engine.ts. */
  engineTimeoutMs?: number;
  /** Active builds at once across all projects (and replicas sharing the database). */
  globalLimit?: number;
  /** Lease owner id of this process; stable across restarts of the same replica. */
  replicaId?: string;
  /**
   * How long a claimed build stays ours without renewal (renewed every third of it); a dead
   * replica's builds are taken over once it ran out. Default 30 s.
   */
  leaseMs?: number;
  pollMs?: number;
  /** How often to reconcile (take over builds whose lease expired); shorter than the lease. Default 15 s. */
  reconcileMs?: number;
  retentionMs?: number;
  /** How often to look for due schedules (`--schedule-interval`); default 10 s. A pass also runs at start-up. */
  scheduleMs?: number;
  /** Address people reach the server at, for links in notifications. */
  publicUrl?: string;
  /** The SMTP server e-mail notifications go through; none: no e-mail. */
  email?: SmtpConfig;
  /**
   * Where logs and artifacts live: a directory (shared storage lets replicas serve each
   * other's logs) or `s3://bucket/prefix`. Default: under the data dir.
   */
  blobs?: string;
  /** Retention defaults: keep the newest N builds and/or builds of the last D days per project. */
  keepBuilds?: number;
  keepDays?: number;
  /** Cap on one build's log in bytes, unless its project sets one (default 64 MiB). */
  maxLogBytes?: number;
  /** Artifact size limits in bytes. */
  artifactMaxFile?: number;
  artifactMaxBuild?: number;
  /** Step caches: bytes a project keeps, days one is kept unused, the branch others fall back to. */
  cacheMaxProject?: number;
  cacheMaxAgeDays?: number;
  cacheDefaultBranch?: string;
  /** Largest webhook delivery in bytes (default 5 MiB). */
  hookBodyLimit?: number;
  /** Directory of the built web UI, if any. */
  webRoot?: string;
  /** Sign-in with an OpenID Provider (`--oidc-*`); tokens work either way. */
  oidc?: OidcSettings;
  /** Told things an operator must see (the initial admin token, the address). */
  announce?: (line: string) => void;
  quiet?: boolean;
  /**
   * The request log as one readable line per request instead of pino's JSON; default: when
   * stdout is a terminal (JSON stays for log collectors).
   */
  prettyLog?: boolean;
  /**
   * The server owns its process (`slipway server`): once quiet after work, it collects garbage
   * and gives the memory back (idle-memory.ts). Not for a server started inside another program.
   */
  collectWhenIdle?: boolean;
}

export interface RunningServer {
  url: string;
  app: FastifyInstance;
  db: Kysely<Database>;
  scheduler: Scheduler;
  /**
   * Stops the server. By default running builds are cancelled and end `cancelled`. With
   * `detach` (SIGTERM, an upgrade) they are left running for a successor to re-attach, after
   * waiting up to `drainMs` for them to end first.
   */
  close(options?: CloseOptions): Promise<void>;
}

export interface CloseOptions {
  detach?: boolean;
  drainMs?: number;
}

/**
 * Starts `slipway server`: database (migrated), executors, log store, reconciliation of what
 * a previous run left, the scheduler, and the HTTP API.
 */
export async function startServer(config: ServerConfig): Promise<RunningServer> {
  const announce = config.announce ?? ((line: string) => process.stderr.write(`${line}\n`));
  const dataDir = resolve(config.dataDir);
  const loose = await makePrivateDir(dataDir);
  if (loose !== undefined) announce(loose);
  const db = openDatabase(config.database ?? `sqlite:${join(dataDir, 'slipway.db')}`);
  try {
    await migrateToLatest(db);
  } catch (error) {
    await db.destroy();
    throw error;
  }
  const initial = await createInitialAdminToken(db);
  if (initial) {
    announce(`Created the first admin token (shown only this once; store it now):\n\n  ${initial.token}\n`);
  }

  const installation = await installationId(db);
  const workspaceRoot = resolve(config.workspaceRoot ?? `/var/tmp/slipway-workspaces-${installation}`);
  const executors = await createExecutors(config, workspaceRoot, announce).catch(async (error: unknown) => {
    await db.destroy();
    throw error;
  });
  const blobs = createBlobStore(config.blobs ?? join(dataDir, 'blobs'), { baseDir: dataDir });
  const caches = new CacheService({
    db,
    blobs,
    scratch: join(dataDir, 'cache-scratch'),
    options: {
      ...(config.cacheMaxProject !== undefined ? { maxProjectBytes: config.cacheMaxProject } : {}),
      ...(config.cacheMaxAgeDays !== undefined ? { maxAgeMs: config.cacheMaxAgeDays * 86_400_000 } : {}),
      ...(config.cacheDefaultBranch !== undefined ? { defaultBranch: config.cacheDefaultBranch } : {}),
    },
  });
  // Files take appends well; object stores take immutable chunk objects.
  const logs: LogStore = config.blobs?.startsWith('s3://')
    ? new BlobLogStore(blobs)
    : new FsLogStore(join(config.blobs !== undefined ? resolve(dataDir, config.blobs) : dataDir, 'logs'));
  if (!config.blobs?.startsWith('s3://')) {
    // Logs and artifacts of every build: outside the data dir (--blobs DIR) as private as in it.
    const base = config.blobs !== undefined ? resolve(dataDir, config.blobs) : join(dataDir, 'blobs');
    for (const [dir, what] of [
      [base, 'blob dir'],
      [join(config.blobs !== undefined ? base : dataDir, 'logs'), 'log dir'],
    ] as const) {
      const warning = await makePrivateDir(dir, what);
      if (warning !== undefined) announce(warning);
    }
  }
  const { cipher } = await loadSecretKey({ dataDir });
  // Repository URLs stored with credentials before they were secrets: sealed now (idempotent).
  const sealedUrls = await sealStoredRepoCredentials(db, cipher);
  if (sealedUrls > 0)
    announce(`sealed the credentials of ${sealedUrls} repository URL(s) as project secrets`);
  const retentionDefaults = { keepBuilds: config.keepBuilds ?? null, keepDays: config.keepDays ?? null };
  const hub = new LogHub();
  const metrics = new Metrics();
  // With a fixed port, host:port names the same replica across restarts (its builds are
  // recognised at once); with a random port only the lease expiry can tell.
  const owner = config.replicaId ?? `${hostname()}:${config.port === 0 ? `pid${process.pid}` : config.port}`;
  const ids = new ExecutorIds(installation);
  const scriptsWorkRoot = join(dataDir, 'scripts');
  const commitStatuses = new CommitStatusNotifier({ db, cipher, logs });
  const email =
    config.email === undefined
      ? undefined
      : new EmailNotifier({
          db,
          logs,
          transport: createSmtpTransport(config.email),
          from: config.email.from,
          ...(config.email.password !== undefined && { redact: [config.email.password] }),
        });
  if (config.email !== undefined)
    announce(
      `e-mail notifications through ${config.email.host}:${config.email.port} (TLS: ${config.email.tls}) from ${config.email.from}`,
    );
  const notifier = createNotifierHub(db, {
    ...(config.publicUrl !== undefined ? { baseUrl: config.publicUrl } : {}),
    extra: () => [commitStatuses, ...(email !== undefined ? [email] : [])],
    onError: (error, context) =>
      announce(
        `notify (build ${context.buildId}): ${error instanceof Error ? error.message : String(error)}`,
      ),
  });
  const leaseMs = config.leaseMs ?? 30_000;
  const globalLimit = config.globalLimit ?? Math.max(2, availableParallelism());
  // The server's structured log is the HTTP app's pino logger, made below (the app needs the
  // scheduler); an internal error of a build before it exists is announced instead.
  let appLog: ErrorLog | undefined = undefined;
  const log: ErrorLog = {
    error: (fields, message) =>
      appLog !== undefined
        ? appLog.error(fields, message)
        : announce(`${message} (id ${String(fields.errorId)}): ${describeError(fields.err)}`),
  };
  const scheduler = new Scheduler({
    db,
    executors,
    logs,
    hub,
    owner,
    ids,
    // The local executor moves a build's clone into its workspace: it must not be made in
    // the data dir, which the build user cannot reach (and must not).
    workRoot: config.executor === 'local' ? join(workspaceRoot, 'checkouts') : join(dataDir, 'work'),
    mirrors: join(dataDir, 'mirrors'),
    globalLimit,
    leaseMs,
    pollMs: config.pollMs ?? 1000,
    onStepFinished: (status) => metrics.stepFinished(status),
    onBuildStarted: (build) => notifier.onBuildStarted(build.id),
    onStageChanged: (build) => notifier.onStageChanged(build.id),
    log,
    onLogLinesDropped: (lines) => metrics.logLinesDropped(lines),
    onBuildFinished: (build) => {
      metrics.buildFinished(build.status, build.durationMs === null ? null : build.durationMs / 1000);
      notifier.onBuildFinished(build.id);
    },
    pipelineSource: scriptsPipelineSource(db, { workRoot: scriptsWorkRoot }),
    secretsFor: secretsFor({ db, cipher }),
    repoUrlFor: (project) => gitRepoUrl(db, cipher, project),
    ...(config.maxLogBytes !== undefined ? { maxLogBytes: config.maxLogBytes } : {}),
    artifacts: createArtifactCollector({
      db,
      blobs,
      limits: {
        ...(config.artifactMaxFile !== undefined ? { maxFileBytes: config.artifactMaxFile } : {}),
        ...(config.artifactMaxBuild !== undefined ? { maxBuildBytes: config.artifactMaxBuild } : {}),
      },
    }),
    reports: createReportCollector({ db }),
    caches,
    onError: (error) => announce(`scheduler: ${error instanceof Error ? error.message : String(error)}`),
  });
  const reconcileOptions = {
    db,
    executors: executors.all(),
    logs,
    hub,
    owner,
    ids,
    leaseMs,
    activeHere: () => scheduler.activeIds(),
    resume: (build: Build, previousOwner: string) => scheduler.resume(build, previousOwner),
  };
  try {
    const first = await reconcile(reconcileOptions, true);
    const changed = first.lost.length + first.requeued.length + first.removed.length + first.failed.length;
    if (changed + first.resumed.length > 0) {
      announce(
        `reconciled: ${first.resumed.length} build(s) resumed, ${first.lost.length} lost, ${first.requeued.length} re-queued, ` +
          `${first.removed.length} leftover(s) removed${first.failed.length ? `, ${first.failed.length} removal(s) failed (retried): ${first.failed.join('; ')}` : ''}`,
      );
    }
  } catch (error) {
    // The periodic pass tries again; a server that cannot start helps nobody.
    announce(
      `reconcile at start-up failed (retried every ${(config.reconcileMs ?? 15_000) / 1000} s): ${error instanceof Error ? error.message : String(error)}`,
    );
  }
  scheduler.start();
  let reconciling = false;
  const reconcileTimer = setInterval(() => {
    if (reconciling) return;
    reconciling = true;
    reconcile(reconcileOptions, false)
      .catch((error: unknown) =>
        announce(`reconcile: ${error instanceof Error ? error.message : String(error)}`),
      )
      .finally(() => (reconciling = false));
  }, config.reconcileMs ?? 15_000);

  const stopRetention = startRetention(
    {
      db,
      logs,
      blobs,
      defaults: retentionDefaults,
      onError: (error) => announce(`retention: ${error instanceof Error ? error.message : String(error)}`),
    },
    config.retentionMs ?? 10 * 60_000,
  );
  // Mirrors of deleted projects (and of a project's former URL) go with the retention passes.
  const stopMirrorPruning = startMirrorPruning(
    db,
    join(dataDir, 'mirrors'),
    config.retentionMs ?? 10 * 60_000,
    (error) => announce(`mirrors: ${error instanceof Error ? error.message : String(error)}`),
  );
  const control = new DatabaseBuildControl(db, () => scheduler.kick(), {
    queued: (build) => notifier.onBuildQueued(build.id),
    finished: (build) => notifier.onBuildFinished(build.id),
  });
  const oidc = config.oidc === undefined ? undefined : new OidcProvider(config.oidc);
  const app = buildApp({
    cipher,
    db,
    control,
    logs,
    hub,
    metrics,
    globalLimit,
    logger: config.quiet
      ? false
      : (config.prettyLog ?? process.stdout.isTTY === true)
        ? { stream: prettyLogStream(process.stdout) }
        : true,
    rootPlugins: [
      (root) =>
        registerHookRoutes(root, {
          db,
          control,
          metrics,
          scriptsWorkRoot,
          sealer: cipher,
          ...(config.hookBodyLimit !== undefined ? { bodyLimit: config.hookBodyLimit } : {}),
        }),
      (root) => badgeRoutes(root, { db }),
      (root) => {
        if (oidc !== undefined) oidcRoutes(root, { db, provider: oidc, log: (line) => root.log.warn(line) });
      },
    ],
    apiPlugins: [
      (api) => hookSettingsRoutes(api, { db, scriptsWorkRoot, sealer: cipher }),
      (api) => registerSecretRoutes(api, { db, cipher }),
      (api) => registerArtifactRoutes(api, { db, blobs }),
      (api) => registerReportRoutes(api, { db }),
      (api) => registerCacheRoutes(api, { db, caches }),
      (api) => registerRetentionRoutes(api, { db, defaults: retentionDefaults }),
      (api) => registerScheduleRoutes(api, { db }),
      (api) => registerEmailRoutes(api, { db, smtpConfigured: email !== undefined }),
      (api) => badgeSettingsRoutes(api, { db }),
      (api) => registerCommitStatusRoutes(api, { db }),
      (api) => executorRoutes(api, executors),
      (api) => authMethodRoutes(api, oidc),
    ],
    ...(config.webRoot !== undefined ? { webRoot: config.webRoot } : {}),
  });
  appLog = app.log;
  // Due ticks (also those missed while no server ran: once each) start builds through the
  // manual trigger's path, inside the transaction that claims the tick.
  const schedules = new ScheduleRunner({
    db,
    trigger: (trx, project, input) => new DatabaseBuildControl(trx).trigger(project, input),
    onQueued: (build) => {
      scheduler.kick();
      notifier.onBuildQueued(build.id);
    },
    onError: (error, schedule) =>
      announce(`schedule ${schedule.id}: ${error instanceof Error ? error.message : String(error)}`),
  });
  const address = await app.listen({ host: config.host, port: config.port });
  const url = address.replace('[::1]', 'localhost');
  schedules.start(config.scheduleMs ?? DEFAULT_SCHEDULE_INTERVAL_MS);
  const stopIdleCollector = config.collectWhenIdle ? collectWhenIdle() : () => undefined;
  announce(
    `Slipway listening on ${url} (database ${redactDb(config.database ?? 'sqlite')}, executor ${executors.defaultName}, replica ${owner})`,
  );

  let closing: Promise<void> | undefined;
  return {
    url,
    app,
    db,
    scheduler,
    close: (options = {}) =>
      (closing ??= (async () => {
        clearInterval(reconcileTimer);
        stopIdleCollector();
        await schedules.stop();
        await stopRetention();
        await stopMirrorPruning();
        // Builds first when they drain: followers keep seeing them until they end.
        if (options.detach) await scheduler.detach(options.drainMs ?? 0);
        await app.close();
        if (!options.detach) await scheduler.stop();
        // A cluster watch would keep the process alive; steps run on either way.
        for (const executor of executors.all()) await executor.close?.().catch(() => undefined);
        commitStatuses.close();
        email?.close();
        await notifier.close();
        await db.destroy();
      })()),
  };
}

async function createExecutors(
  config: ServerConfig,
  workspaceRoot: string,
  announce: (line: string) => void,
): Promise<ExecutorPool> {
  const available = new Map<string, Executor>();
  const unavailable = new Map<string, string>();
  const details = new Map<string, string>();
  if (config.executor === 'kubernetes') {
    if (!config.createKubernetes)
      throw new Error('--executor kubernetes: no way to reach a cluster was given');
    const kubernetes = await config.createKubernetes();
    available.set('kubernetes', kubernetes);
    details.set('kubernetes', `pods in namespace ${(kubernetes as { namespace?: string }).namespace ?? '?'}`);
    unavailable.set('local', 'the server was started with --executor kubernetes');
    unavailable.set('docker', 'the server was started with --executor kubernetes');
  } else if (config.executor === 'local') {
    const local = await createLocalExecutor(config.buildUser ?? DEFAULT_BUILD_USER, workspaceRoot, announce);
    available.set('local', local.executor);
    details.set('local', local.detail);
    unavailable.set('docker', 'the server was started with --executor local');
  } else {
    unavailable.set(
      'local',
      'builds run as host processes only when the server is started with --executor local',
    );
    const { createDockerExecutor, EngineUnavailableError } = await import('../executors/docker/index.js');
    try {
      available.set(
        'docker',
        await createDockerExecutor({
          ...(config.engine !== undefined ? { engine: config.engine } : {}),
          ...(config.engineTimeoutMs !== undefined ? { engineTimeoutMs: config.engineTimeoutMs } : {}),
        }),
      );
    } catch (error) {
      if (config.executor === 'docker') throw error;
      const why =
        error instanceof EngineUnavailableError
          ? `no container engine answered: ${error.summary}`
          : error instanceof Error
            ? error.message
            : String(error);
      unavailable.set(
        'docker',
        `${why}. Start a container engine (Docker or Podman; see slipway doctor) and restart the server, ` +
          'or pass --executor local to run builds as host processes on purpose',
      );
      announce(
        `The docker executor is unavailable (${why}). Builds end \`error\` until the server starts with a ` +
          'container engine answering; --executor local runs them as host processes instead (see `slipway doctor`).',
      );
    }
  }
  if (config.executor !== 'kubernetes') {
    unavailable.set(
      'kubernetes',
      'builds run as Kubernetes pods only when the server is started with --executor kubernetes',
    );
  }
  const defaultName = config.executor === 'auto' ? 'docker' : config.executor;
  return new ExecutorPool(available, unavailable, defaultName, details);
}

/**
 * The local executor of `--executor local`: steps run as the build user (created if need be)
 * in workspaces under `workspaceRoot`, which is the server's, 0711, outside the data dir.
 */
async function createLocalExecutor(
  buildUser: string,
  workspaceRoot: string,
  announce: (line: string) => void,
): Promise<{ executor: LocalExecutor; detail: string }> {
  const resolved = await resolveBuildUser(buildUser);
  await ensureOwnDirectory(workspaceRoot, 0o711);
  await ensureOwnDirectory(join(workspaceRoot, 'checkouts'), 0o700);
  if (resolved.kind === 'self') {
    announce(
      `warning: --build-user self: builds run as host processes as ${resolved.name} (uid ${resolved.uid}), ` +
        "the server's own user: they can read and change the server's data (database, secret key). " +
        'For trusted builds only.',
    );
    return {
      executor: new LocalExecutor({ tmpRoot: workspaceRoot }),
      detail: `host processes as ${resolved.name}, the server's own user (--build-user self): builds can read and change the server's data`,
    };
  }
  const { user, created } = resolved;
  if (created) {
    announce(
      `Created the build user ${user.name} (uid ${user.uid}; useradd --system, no home, no login shell).`,
    );
  }
  announce(
    `Local executor: builds run as host processes as user ${user.name} (uid ${user.uid}), ` +
      `with what that user may do on this host; workspaces in ${workspaceRoot}.`,
  );
  return {
    executor: new LocalExecutor({ tmpRoot: workspaceRoot, runAs: user }),
    detail: `host processes as user ${user.name} (uid ${user.uid}): a build reads what that user can read and shares the host's network`,
  };
}

/** An error with its stack, for a line on stderr. */
function describeError(error: unknown): string {
  return error instanceof Error ? (error.stack ?? error.message) : String(error);
}

function redactDb(url: string): string {
  return url.replace(/\/\/[^@/]*@/, '//***@');
}
