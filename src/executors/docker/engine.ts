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
 * Each candidate is pinged with a short timeout; the first that answers wins. When none does,
 * {@link EngineUnavailableError} lists every address with why it failed and how to start one.
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
  product: 'docker' | 'podman';
  /** Engine version, e.g. `4.3.1` for Podman, `27.3.1` for Docker. */
  version: string;
  apiVersion?: string;
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
  /** Per-candidate ping timeout; default 2000 ms. */
  pingTimeoutMs?: number;
  /** Replaces the default socket paths (steps 3–5), e.g. in tests. */
  defaultSockets?: string[];
}

/** How to get an engine running, printed under the list of failed addresses. */
export const START_ENGINE_HINT = [
  'Start a container engine, then try again:',
  '  Docker:  sudo systemctl start docker',
  '  Podman:  podman system service --time=0 unix:///run/podman/podman.sock &',
  '           (rootless: systemctl --user start podman.socket)',
  '  or, in this repository: sudo scripts/setup-podman.sh (installs and configures Podman)',
  'or point Slipway at a running one with --engine <address> or DOCKER_HOST.',
].join('\n');

/** No engine answered. `attempts` says what was tried, in order, and why each failed. */
export class EngineUnavailableError extends ExecutorError {
  constructor(readonly attempts: EngineAttempt[]) {
    const lines = attempts.map((a) => `  ${a.address} (${a.source}): ${a.reason}`);
    super(
      'engine_unavailable',
      `no container engine answered. Tried:\n${lines.join('\n')}\n${START_ENGINE_HINT}`,
    );
    this.name = 'EngineUnavailableError';
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

/** Finds the first engine that answers; throws {@link EngineUnavailableError} if none does. */
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
  for (const candidate of candidates) {
    const result = await probeEngine(candidate.address, candidate.source, env, options.pingTimeoutMs ?? 2000);
    if ('reason' in result) attempts.push(result);
    else return result;
  }
  throw new EngineUnavailableError(attempts);
}

/** Pings one address; returns what answered, or why nothing did. */
export async function probeEngine(
  address: string,
  source: EngineSource,
  env: NodeJS.ProcessEnv = process.env,
  timeoutMs = 2000,
): Promise<EngineInfo | EngineAttempt> {
  let endpoint: EngineEndpoint;
  try {
    endpoint = parseEngineAddress(address, env);
  } catch (error) {
    return { address, source, reason: error instanceof Error ? error.message : String(error) };
  }
  if (endpoint.kind === 'socket' && !endpoint.socketPath.startsWith('//')) {
    try {
      if (!statSync(endpoint.socketPath).isSocket()) {
        return { address: endpoint.address, source, reason: 'exists but is not a socket' };
      }
    } catch (error) {
      return { address: endpoint.address, source, reason: describeConnectError(error, timeoutMs) };
    }
  }
  const client = createDockerClient(endpoint, { timeoutMs });
  try {
    await client.ping();
    const version = await client.version();
    return { endpoint, address: endpoint.address, source, ...describeVersion(version) };
  } catch (error) {
    return { address: endpoint.address, source, reason: describeConnectError(error, timeoutMs) };
  }
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
  const code = (error as { code?: unknown } | null)?.code;
  const message = error instanceof Error ? error.message : String(error);
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
}

/** What `slipway doctor` prints: which executors work on this machine, and why not. */
export interface DoctorReport {
  executors: ExecutorAvailability[];
  /** The engine the docker executor would use, if any. */
  engine?: EngineInfo;
}

/** Checks which executors are usable here. Never throws. */
export async function doctorReport(options: DiscoverOptions = {}): Promise<DoctorReport> {
  const executors: ExecutorAvailability[] = [
    { name: 'local', usable: true, detail: 'runs steps as host processes in a temporary workspace' },
  ];
  let engine: EngineInfo | undefined;
  try {
    engine = await discoverEngine(options);
    executors.push({
      name: 'docker',
      usable: true,
      detail: `${engine.product} ${engine.version} at ${engine.address} (${engine.source})`,
    });
  } catch (error) {
    executors.push({
      name: 'docker',
      usable: false,
      detail: error instanceof Error ? error.message : String(error),
    });
  }
  executors.push({ name: 'kubernetes', usable: false, detail: 'not implemented yet' });
  return engine ? { executors, engine } : { executors };
}

/** Plain-text rendering of a {@link DoctorReport}, one executor per paragraph. */
export function formatDoctorReport(report: DoctorReport): string {
  return report.executors
    .map((e) => {
      const [first = '', ...rest] = e.detail.split('\n');
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
