/**
 * The subset of the Docker Engine API client (dockerode) that the docker executor needs.
 * Declared here rather than importing dockerode's types everywhere, so tests and alternative
 * clients fit, and so the executor's reach into the engine is visible in one place. A
 * `new Dockerode(...)` instance satisfies it; so does Podman's compatible socket behind one.
 */
import Dockerode from 'dockerode';

/** Labels keyed by name, as the engine stores them. */
export type Labels = Record<string, string>;

export interface ContainerCreateOptions {
  name?: string;
  Image: string;
  Cmd?: string[];
  Entrypoint?: string[];
  Env?: string[];
  WorkingDir?: string;
  Labels?: Labels;
  AttachStdout?: boolean;
  AttachStderr?: boolean;
  OpenStdin?: boolean;
  Tty?: boolean;
  StopTimeout?: number;
  HostConfig?: {
    Mounts?: Array<{ Type: 'volume'; Source: string; Target: string; ReadOnly?: boolean }>;
    /** `container:<id>` joins that container's network namespace (how services share localhost). */
    NetworkMode?: string;
    /** Runs a tiny init (tini / catatonit) as PID 1 so SIGTERM reaches the step's shell. */
    Init?: boolean;
  };
}

export interface ContainerSummary {
  Id: string;
  Names?: string[];
  State?: string;
  Labels?: Labels | null;
}

export interface ContainerInspect {
  Id: string;
  State: {
    Running: boolean;
    /** `created` (never started), `running`, `exited`, … */
    Status?: string;
    ExitCode?: number;
    Error?: string;
    /** The kernel killed it for exceeding its memory limit. */
    OOMKilled?: boolean;
    /** RFC 3339; `0001-01-01T00:00:00Z` when it never started. */
    StartedAt?: string;
  };
  Config?: { Labels?: Labels | null };
}

export interface VolumeSummary {
  Name: string;
  Labels?: Labels | null;
}

export interface NetworkSummary {
  Id: string;
  Name: string;
  Labels?: Labels | null;
}

export interface EngineVersion {
  Version: string;
  ApiVersion?: string;
  Os?: string;
  Arch?: string;
  Components?: Array<{ Name: string; Version: string }>;
}

export interface DockerExec {
  start(options: { hijack?: boolean; stdin?: boolean; Detach?: boolean }): Promise<NodeJS.ReadableStream>;
  inspect(): Promise<{ ExitCode: number | null; Running: boolean }>;
}

export interface DockerContainer {
  readonly id: string;
  start(): Promise<unknown>;
  /** With `stream: true` and no TTY: the multiplexed stdout/stderr stream (see demux.ts). */
  attach(options: { stream: true; stdout: boolean; stderr: boolean }): Promise<NodeJS.ReadableStream>;
  /**
   * The multiplexed output (no TTY) logged so far, from the first byte: the engine keeps it, so
   * it outlives whoever started the container. Not `follow`: Podman 4.3's follow skips entries
   * of a fast writer (and ends early on an exited container). dockerode answers a Buffer (the
   * whole log in memory); `readLog` (steps.ts) streams it through {@link modem} when there is one.
   */
  logs(options: {
    follow: false;
    stdout: boolean;
    stderr: boolean;
    abortSignal?: AbortSignal;
  }): Promise<Buffer | NodeJS.ReadableStream>;
  /** dockerode's transport, when the client is dockerode: lets a log be streamed, not buffered. */
  readonly modem?: DockerModem;
  wait(): Promise<{ StatusCode: number; Error?: { Message?: string } | null }>;
  kill(options: { signal: string }): Promise<unknown>;
  remove(options: { force?: boolean; v?: boolean }): Promise<unknown>;
  inspect(): Promise<ContainerInspect>;
  /** Extracts a tar stream at `path` inside the container (also into volumes mounted there). */
  putArchive(file: NodeJS.ReadableStream, options: { path: string }): Promise<unknown>;
  /** A tar stream of `path` inside the container (volumes mounted there included); symlinks are not followed. */
  getArchive(options: { path: string }): Promise<NodeJS.ReadableStream>;
  exec(options: {
    Cmd: string[];
    AttachStdout?: boolean;
    AttachStderr?: boolean;
    Env?: string[];
  }): Promise<DockerExec>;
}

/** The part of dockerode's `docker-modem` used to stream a request's answer. */
export interface DockerModem {
  dial(
    options: {
      path: string;
      method: 'GET';
      isStream: true;
      abortSignal?: AbortSignal;
      statusCodes: Record<number, true | string>;
      options: Record<string, unknown>;
    },
    callback: (error: unknown, data: NodeJS.ReadableStream) => void,
  ): void;
}

/**
 * Lets a caller abandon one request (a probe with a deadline). dockerode honours `abortSignal`
 * on `ping` and `version` although its typings leave it out.
 */
export interface RequestOptions {
  abortSignal?: AbortSignal;
}

export interface DockerClient {
  ping(options?: RequestOptions): Promise<unknown>;
  version(options?: RequestOptions): Promise<EngineVersion>;
  createContainer(options: ContainerCreateOptions): Promise<DockerContainer>;
  getContainer(id: string): DockerContainer;
  /** `filters` is the engine's JSON-encoded filter map, e.g. `{"label":["a=b"]}`. */
  listContainers(options: { all?: boolean; filters?: string }): Promise<ContainerSummary[]>;
  createVolume(options: { Name: string; Labels?: Labels }): Promise<unknown>;
  getVolume(name: string): { remove(): Promise<unknown> };
  listVolumes(options: { filters?: string }): Promise<{ Volumes?: VolumeSummary[] | null }>;
  listNetworks(options: { filters?: string }): Promise<NetworkSummary[]>;
  getNetwork(id: string): { remove(): Promise<unknown> };
  getImage(name: string): { inspect(): Promise<unknown> };
  /** A stream of JSON progress objects; a failure may arrive in it as `{ error }`. */
  pull(image: string): Promise<NodeJS.ReadableStream>;
}

/** Where an engine listens: a Unix socket (or Windows pipe), or TCP with optional TLS. */
export type EngineEndpoint =
  | { kind: 'socket'; address: string; socketPath: string }
  | {
      kind: 'tcp';
      address: string;
      protocol: 'http' | 'https';
      host: string;
      port: number;
      ca?: Buffer;
      cert?: Buffer;
      key?: Buffer;
    };

/**
 * A dockerode client for an endpoint. `timeoutMs` bounds every request: use it only for
 * short probes (ping, version), never for the long-lived attach/wait of a step.
 */
export function createDockerClient(
  endpoint: EngineEndpoint,
  options: { timeoutMs?: number } = {},
): DockerClient {
  const timeout = options.timeoutMs !== undefined ? { timeout: options.timeoutMs } : {};
  if (endpoint.kind === 'socket') return new Dockerode({ socketPath: endpoint.socketPath, ...timeout });
  return new Dockerode({
    protocol: endpoint.protocol,
    host: endpoint.host,
    port: endpoint.port,
    ...(endpoint.ca ? { ca: endpoint.ca } : {}),
    ...(endpoint.cert ? { cert: endpoint.cert } : {}),
    ...(endpoint.key ? { key: endpoint.key } : {}),
    ...timeout,
  });
}
