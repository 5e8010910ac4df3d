/**
 * Finding a container engine that speaks the Docker Engine API: Docker, or Podman's compatible
 * socket. The order is the one users expect from the docker CLI, with Podman after Docker:
 *
 *   1. `--engine` (an explicit address; only it is tried),
 *   2. `DOCKER_HOST`,
 *   3. `/var/run/docker.sock`,
 *   4. `/run/podman/podman.sock` (rootful Podman),
 *   5. `$XDG_RUNTIME_DIR/podman/podman.sock` (rootless Podman).
 *
 * An address is alive when it answers `GET /_ping` (Podman answers it in ~0.1 s even on a loaded
 * machine), tried a few times with a short backoff before it counts as dead. Only then is
 * `GET /version` asked, with a generous bound: Podman 4.3 takes 2–3 s for it under load, and a
 * slow or failing `/version` leaves the engine usable with its version unknown (and why).
 * The first candidate that answers `_ping` wins. When none does, {@link EngineUnavailableError}
 * lists every address with why it failed and how to start one.
 */
import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { ExecutorError } from '../types.js';
import type { DockerClient, EngineEndpoint, EngineVersion } from './client.js';
import { createDockerClient } from './client.js';

export type EngineSource = 'engine option' | 'DOCKER_HOST' | 'default';

export interface EngineInfo {
  endpoint: EngineEndpoint;
  /** The address as given or found, e.g. `unix:///run/podman/podman.sock`. */
  address: string;
  source: EngineSource;
  /** `unknown` when `/version` did not answer in time (see `versionError`). */
  product: 'docker' | 'podman' | 'unknown';
  /** Engine version, e.g. `4.3.1` for Podman, `27.3.1` for Docker; `unknown` with `versionError`. */
  version: string;
  apiVersion?: string;
  /** Why the version is unknown although the engine answered `_ping`; the engine is usable. */
  versionError?: string;
}

export interface EngineAttempt {
  address: string;
  source: EngineSource;
  reason: string;
}

export interface DiscoverOptions {
  /** Explicit engine address (`--engine`): `unix:///path`, `/path`, `tcp://host:port`, `http(s)://…`. */
  engine?: string;
  /** Environment to read `DOCKER_HOST`, `DOCKER_TLS_VERIFY`, … from; default `process.env`. */
  env?: NodeJS.ProcessEnv;
  /**
   * Bound on each `_ping` try. Default: `engineTimeoutMs` when given (someone who says the
   * engine is slow means every answer), else {@link DEFAULT_PING_TIMEOUT_MS}.
   */
  pingTimeoutMs?: number;
  /** `_ping` tries before an address counts as not answering; default {@link DEFAULT_PING_TRIES}. */
  pingTries?: number;
  /**
   * Bound on the engine's other answers once it is alive (`/version`): `--engine-timeout`,
   * `SLIPWAY_ENGINE_TIMEOUT`. Default {@link DEFAULT_ENGINE_TIMEOUT_MS}.
   */
  engineTimeoutMs?: number;
  /** Replaces the default socket paths (steps 3–5), e.g. in tests. */
  defaultSockets?: string[];
}

/** Each `_ping` try; Podman answers in ~0.1 s on a machine at load 8, so this is headroom, not a guess. */
export const DEFAULT_PING_TIMEOUT_MS = 5_000;
/** `_ping` tries before an address counts as dead: one lost answer is not a dead engine. */
export const DEFAULT_PING_TRIES = 3;
/** `/version` and details: Podman 4.3 needs 2–3 s for `/version` under load. */
export const DEFAULT_ENGINE_TIMEOUT_MS = 30_000;

/** How to get an engine running, printed under the list of failed addresses. */
export const START_ENGINE_HINT = [
  'Start a container engine, then try again:',
  '  Docker:  sudo systemctl start docker',
  '  Podman:  podman system service --time=0 unix:///run/podman/podman.sock &',
  '           (rootless: systemctl --user start podman.socket)',
  '  or, in this repository: sudo scripts/setup-podman.sh (installs and configures Podman)',
  'or point Slipway at a running one with --engine <address> or DOCKER_HOST.',
].join('\n');

/**
 * No engine answered `_ping`. `attempts` says what was tried, in order, and why each failed.
 * The hint on starting an engine is left out when every address was there but unusable
 * (permission denied, not a socket, not an engine): starting one would not help.
 */
export class EngineUnavailableError extends ExecutorError {
  constructor(
    readonly attempts: EngineAttempt[],
    options: { hint?: boolean } = {},
  ) {
    const lines = attempts.map((a) => `  ${a.address} (${a.source}): ${a.reason}`);
    const hint = options.hint ?? true;
    super(
      'engine_unavailable',
      `no container engine answered. Tried:\n${lines.join('\n')}${hint ? `\n${START_ENGINE_HINT}` : ''}`,
    );
    this.name = 'EngineUnavailableError';
  }

  /** One line for messages elsewhere: every address tried with why it failed. */
  get summary(): string {
    return this.attempts.map((a) => `${a.address} (${a.source}): ${a.reason}`).join('; ');
  }
}

/** The default socket paths, in order, for this environment. */
export function defaultSocketPaths(env: NodeJS.ProcessEnv = process.env): string[] {
  const paths = ['/var/run/docker.sock', '/run/podman/podman.sock'];
  if (env.XDG_RUNTIME_DIR) paths.push(path.join(env.XDG_RUNTIME_DIR, 'podman', 'podman.sock'));
  return paths;
}

/**
 * Parses an engine address. TLS material for `tcp://` comes from `DOCKER_CERT_PATH` when
 * `DOCKER_TLS_VERIFY` is set, as with the docker CLI.
 */
export function parseEngineAddress(address: string, env: NodeJS.ProcessEnv = process.env): EngineEndpoint {
  const trimmed = address.trim();
  if (trimmed.startsWith('unix://')) {
    const socketPath = trimmed.slice('unix://'.length);
    if (!socketPath.startsWith('/')) throw invalidAddress(address, 'a unix socket path must be absolute');
    return { kind: 'socket', address: trimmed, socketPath };
  }
  if (trimmed.startsWith('npipe://')) {
    return { kind: 'socket', address: trimmed, socketPath: trimmed.slice('npipe:'.length) };
  }
  if (trimmed.startsWith('/')) return { kind: 'socket', address: `unix://${trimmed}`, socketPath: trimmed };
  const match = /^(tcp|http|https):\/\/([^/:]+|\[[^\]]+\])(?::(\d+))?\/?$/.exec(trimmed);
  if (!match) {
    throw invalidAddress(address, 'expected unix:///path, /path, tcp://host:port or http(s)://host:port');
  }
  const [, scheme, host = '', port] = match;
  const tls = scheme === 'https' || (scheme === 'tcp' && isSet(env.DOCKER_TLS_VERIFY));
  const endpoint: EngineEndpoint = {
    kind: 'tcp',
    address: trimmed,
    protocol: tls ? 'https' : 'http',
    host: host.replace(/^\[|\]$/g, ''),
    port: port ? Number(port) : tls ? 2376 : 2375,
  };
  if (tls && env.DOCKER_CERT_PATH) {
    const dir = env.DOCKER_CERT_PATH;
    try {
      endpoint.ca = readFileSync(path.join(dir, 'ca.pem'));
      endpoint.cert = readFileSync(path.join(dir, 'cert.pem'));
      endpoint.key = readFileSync(path.join(dir, 'key.pem'));
    } catch (error) {
      throw new ExecutorError('engine_unavailable', `cannot read TLS files from DOCKER_CERT_PATH=${dir}`, {
        cause: error,
      });
    }
  }
  return endpoint;
}

/** Finds the first engine that answers `_ping`; throws {@link EngineUnavailableError} if none does. */
export async function discoverEngine(options: DiscoverOptions = {}): Promise<EngineInfo> {
  const env = options.env ?? process.env;
  const candidates: Array<{ address: string; source: EngineSource }> = [];
  if (options.engine !== undefined && options.engine.trim() !== '') {
    candidates.push({ address: options.engine, source: 'engine option' });
  } else {
    if (env.DOCKER_HOST) candidates.push({ address: env.DOCKER_HOST, source: 'DOCKER_HOST' });
    for (const socket of options.defaultSockets ?? defaultSocketPaths(env)) {
      candidates.push({ address: `unix://${socket}`, source: 'default' });
    }
  }
  const attempts: EngineAttempt[] = [];
  let startingOneWouldHelp = candidates.length === 0;
  for (const candidate of candidates) {
    const result = await probe(candidate.address, candidate.source, { ...options, env });
    if (!('reason' in result)) return result;
    attempts.push({ address: result.address, source: result.source, reason: result.reason });
    startingOneWouldHelp ||= result.absent;
  }
  throw new EngineUnavailableError(attempts, { hint: startingOneWouldHelp });
}

export type ProbeOptions = Pick<DiscoverOptions, 'env' | 'pingTimeoutMs' | 'pingTries' | 'engineTimeoutMs'>;

/**
 * Probes one address: alive when it answers `_ping` (retried), then its version (bounded by
 * `engineTimeoutMs`; a version that does not come leaves it usable). Returns what answered, or
 * why nothing did. Never throws.
 */
export async function probeEngine(
  address: string,
  source: EngineSource,
  options: ProbeOptions = {},
): Promise<EngineInfo | EngineAttempt> {
  const result = await probe(address, source, options);
  return 'reason' in result
    ? { address: result.address, source: result.source, reason: result.reason }
    : result;
}

/** A failed probe; `absent` when nothing is there at all, so starting an engine would help. */
type FailedProbe = EngineAttempt & { absent: boolean };

async function probe(
  address: string,
  source: EngineSource,
  options: ProbeOptions,
): Promise<EngineInfo | FailedProbe> {
  const env = options.env ?? process.env;
  const engineTimeoutMs = options.engineTimeoutMs ?? DEFAULT_ENGINE_TIMEOUT_MS;
  const pingTimeoutMs = options.pingTimeoutMs ?? options.engineTimeoutMs ?? DEFAULT_PING_TIMEOUT_MS;
  const tries = Math.max(1, options.pingTries ?? DEFAULT_PING_TRIES);
  let endpoint: EngineEndpoint;
  try {
    endpoint = parseEngineAddress(address, env);
  } catch (error) {
    return { address, source, reason: errorText(error), absent: false };
  }
  if (endpoint.kind === 'socket' && !endpoint.socketPath.startsWith('//')) {
    try {
      if (!statSync(endpoint.socketPath).isSocket()) {
        return { address: endpoint.address, source, reason: 'exists but is not a socket', absent: false };
      }
    } catch (error) {
      return {
        address: endpoint.address,
        source,
        reason: describeConnectError(error, pingTimeoutMs),
        absent: errorCode(error) === 'ENOENT',
      };
    }
  }
  // No request timeout in the client: every call below is bounded by its own deadline, which
  // tells "no answer in time" apart from "the engine closed the connection".
  const client = createDockerClient(endpoint);
  const alive = await pingUntilAnswered(client, pingTimeoutMs, tries);
  if (alive !== true) return { address: endpoint.address, source, ...alive };
  try {
    const version = await answerWithin((abortSignal) => client.version({ abortSignal }), engineTimeoutMs);
    return { endpoint, address: endpoint.address, source, ...describeVersion(version) };
  } catch (error) {
    return {
      endpoint,
      address: endpoint.address,
      source,
      product: 'unknown',
      version: 'unknown',
      versionError: `it answered _ping, but /version: ${describeConnectError(error, engineTimeoutMs)}`,
    };
  }
}

/** Pause before the second `_ping` try; doubled before each further one. */
const PING_BACKOFF_MS = 250;

/**
 * `_ping` until it answers, up to `tries` times. Only failures that another try may change
 * (no answer, connection refused or closed) are retried: a missing socket or a refusal by
 * permissions stays what it is.
 */
async function pingUntilAnswered(
  client: DockerClient,
  timeoutMs: number,
  tries: number,
): Promise<true | { reason: string; absent: boolean }> {
  let last: unknown;
  let tried = 0;
  while (tried < tries) {
    if (tried > 0) await sleep(PING_BACKOFF_MS * 2 ** (tried - 1));
    tried += 1;
    try {
      await answerWithin((abortSignal) => client.ping({ abortSignal }), timeoutMs);
      return true;
    } catch (error) {
      last = error;
      if (!mayAnswerLater(error)) break;
    }
  }
  const statusCode = (last as { statusCode?: unknown } | null)?.statusCode;
  if (typeof statusCode === 'number') {
    return {
      reason: `answered _ping with HTTP ${statusCode} (not a Docker Engine API?): ${errorText(last)}`,
      absent: false,
    };
  }
  const code = errorCode(last);
  const after = tried > 1 ? ` after ${tried} tries` : '';
  if (last instanceof NoAnswerError) {
    return { reason: `no answer to _ping within ${timeoutMs} ms${after}`, absent: true };
  }
  if (code === 'ECONNRESET' || code === 'EPIPE' || /socket hang up/i.test(errorText(last))) {
    return {
      reason: `closed the connection without answering _ping (${errorText(last)})${after}`,
      absent: true,
    };
  }
  return {
    reason: describeConnectError(last, timeoutMs),
    absent: code === 'ENOENT' || code === 'ECONNREFUSED',
  };
}

function mayAnswerLater(error: unknown): boolean {
  if (error instanceof NoAnswerError) return true;
  if (typeof (error as { statusCode?: unknown } | null)?.statusCode === 'number') return false;
  const code = errorCode(error);
  return (
    code === 'ECONNREFUSED' ||
    code === 'ECONNRESET' ||
    code === 'EPIPE' ||
    code === 'EAGAIN' ||
    /socket hang up/i.test(errorText(error))
  );
}

/** The engine did not answer within the bound (ours, not the socket's). */
class NoAnswerError extends Error {
  constructor(readonly ms: number) {
    super(`no answer within ${ms} ms`);
    this.name = 'NoAnswerError';
  }
}

/**
 * Runs one engine call with a deadline: at `ms` the request is aborted (so the connection is
 * not left behind) and the call fails with {@link NoAnswerError}, whatever the client does with
 * the abort.
 */
async function answerWithin<T>(call: (signal: AbortSignal) => Promise<T>, ms: number): Promise<T> {
  const controller = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      reject(new NoAnswerError(ms));
      controller.abort();
    }, ms);
  });
  const answer = call(controller.signal);
  // The call's own rejection after our abort is expected; nobody else awaits it.
  answer.catch(() => undefined);
  try {
    return await Promise.race([answer, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function errorCode(error: unknown): unknown {
  return (error as { code?: unknown } | null)?.code;
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** Product and version from `GET /version` (Podman names itself in `Components`). */
export function describeVersion(
  version: EngineVersion,
): Pick<EngineInfo, 'product' | 'version' | 'apiVersion'> {
  const podman = version.Components?.find((c) => /podman/i.test(c.Name));
  return {
    product: podman ? 'podman' : 'docker',
    version: podman?.Version ?? version.Version,
    ...(version.ApiVersion ? { apiVersion: version.ApiVersion } : {}),
  };
}

/** Words for why an address did not answer. */
export function describeConnectError(error: unknown, timeoutMs: number): string {
  if (error instanceof NoAnswerError) return `no answer within ${error.ms} ms`;
  const code = errorCode(error);
  const message = errorText(error);
  switch (code) {
    case 'ENOENT':
      return 'no socket there';
    case 'ECONNREFUSED':
      return 'connection refused (nothing listening; a stale socket?)';
    case 'EACCES':
    case 'EPERM':
      return 'permission denied (run as root, or join the docker group)';
    case 'ETIMEDOUT':
    case 'ESOCKETTIMEDOUT':
      return `no answer within ${timeoutMs} ms`;
    default:
      if (/timeout/i.test(message)) return `no answer within ${timeoutMs} ms`;
      return message;
  }
}

export interface ExecutorAvailability {
  name: 'local' | 'docker' | 'kubernetes';
  usable: boolean;
  /** What it would use (engine address and version), or why it cannot be used. */
  detail: string;
  /** What it isolates a build from (see {@link ISOLATION}). */
  isolation: string;
}

/** What `slipway doctor` prints: which executors work on this machine, and why not. */
export interface DoctorReport {
  executors: ExecutorAvailability[];
  /** The engine the docker executor would use, if any. */
  engine?: EngineInfo;
}

/** What each executor isolates a build from, as `slipway doctor` says it. */
export const ISOLATION = {
  local:
    'isolation: none from the host. Steps are host processes of one user:\n' +
    '`slipway run` runs them as you, `slipway server --executor local` as its build user\n' +
    '(--build-user, default slipway-build). A step can read and change what that user can,\n' +
    'and shares the host network and process list.',
  docker:
    'isolation: a fresh container per step: its own file system and processes, the workspace a\n' +
    "per-build volume, the engine's default network (one namespace per build with services);\n" +
    "no host files mounted. As strong as the engine: root in a step is root on the host's kernel\n" +
    'unless the engine runs rootless or remaps users.',
  kubernetes:
    'isolation: a pod per build in the build namespace, run as the ServiceAccount slipway-build\n' +
    '(no API token mounted, no RBAC binding); each step a container of that pod in its own image,\n' +
    "sharing the pod's network (services on localhost) and workspace emptyDir. As strong as the\n" +
    "cluster's nodes and admission policy (the manifests label the namespace pod-security baseline).",
} as const;

/** Checks whether the local and docker executors are usable here, and what each isolates. Never throws. */
export async function doctorReport(options: DiscoverOptions = {}): Promise<DoctorReport> {
  const executors: ExecutorAvailability[] = [
    {
      name: 'local',
      usable: true,
      detail: 'runs steps as host processes in a temporary workspace',
      isolation: ISOLATION.local,
    },
  ];
  let engine: EngineInfo | undefined;
  try {
    engine = await discoverEngine(options);
    executors.push({
      name: 'docker',
      usable: true,
      detail: describeEngine(engine),
      isolation: ISOLATION.docker,
    });
  } catch (error) {
    executors.push({
      name: 'docker',
      usable: false,
      detail: error instanceof Error ? error.message : String(error),
      isolation: ISOLATION.docker,
    });
  }
  // The kubernetes section needs the cluster's options: `kubernetesDoctorReport` (install/doctor.ts).
  return engine ? { executors, engine } : { executors };
}

/** `podman 4.3.1 at unix:///run/podman/podman.sock (default)`, or with the version unknown and why. */
export function describeEngine(engine: EngineInfo): string {
  const where = `${engine.address} (${engine.source})`;
  if (engine.versionError !== undefined) return `engine at ${where}, version unknown: ${engine.versionError}`;
  return `${engine.product} ${engine.version} at ${where}`;
}

/** Plain-text rendering of a {@link DoctorReport}, one executor per paragraph. */
export function formatDoctorReport(report: DoctorReport): string {
  return report.executors
    .map((e) => {
      const [first = '', ...rest] = `${e.detail}\n${e.isolation}`.split('\n');
      const head = `${e.usable ? 'ok  ' : 'no  '} ${e.name.padEnd(10)} ${first}`;
      return [head, ...rest.map((l) => `${' '.repeat(16)}${l}`)].join('\n');
    })
    .join('\n');
}

/** A client for a discovered engine, without request timeouts (steps attach and wait for long). */
export function clientFor(engine: EngineInfo): DockerClient {
  return createDockerClient(engine.endpoint);
}

function invalidAddress(address: string, why: string): ExecutorError {
  return new ExecutorError('engine_unavailable', `invalid engine address "${address}": ${why}`);
}

function isSet(value: string | undefined): boolean {
  return value !== undefined && value !== '' && value !== '0';
}
