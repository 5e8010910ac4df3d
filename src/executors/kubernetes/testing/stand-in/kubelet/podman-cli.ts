/**
 * The stand-in kubelet's ways to Podman: its CLI (`podman …` through execFile), one `podman
 * events` stream, and for the reads it repeats most (inspect, exists) Podman's REST socket when
 * its service runs: a CLI call starts a process of its own, which on a busy machine of two
 * cores costs more than the work it does. Errors are data: a failed command resolves with its
 * exit code and stderr, so the kubelet can turn "no such image" into a waiting reason instead
 * of a throw.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { createInterface } from 'node:readline';

/**
 * The CLI's working directory: conmon, which `podman run` starts for each container, writes a
 * file `oom` into it when the container is OOM-killed (the real OOM test): not into the
 * repository the tests run from.
 */
const PODMAN_CWD = tmpdir();

export interface PodmanResult {
  ok: boolean;
  /** The process's exit code (-1 when it could not be started or was killed). */
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `podman <args>` and resolves with what it said; never rejects. */
export function podman(args: string[], options: { timeoutMs?: number } = {}): Promise<PodmanResult> {
  return new Promise((resolve) => {
    execFile(
      'podman',
      args,
      { maxBuffer: 64 * 1024 * 1024, timeout: options.timeoutMs ?? 0, encoding: 'utf8', cwd: PODMAN_CWD },
      (error, stdout, stderr) => {
        if (!error) return resolve({ ok: true, code: 0, stdout, stderr });
        const code = typeof error.code === 'number' ? error.code : -1;
        resolve({ ok: false, code, stdout, stderr: stderr || error.message });
      },
    );
  });
}

/** Like {@link podman}, but a failure is an Error naming the command and what Podman said. */
export async function podmanOrThrow(args: string[]): Promise<string> {
  const result = await podman(args);
  if (!result.ok) {
    throw new Error(`podman ${args.slice(0, 3).join(' ')} failed (${result.code}): ${result.stderr.trim()}`);
  }
  return result.stdout;
}

/** Where Podman's service may listen (rootful, then rootless); the first that answers is used. */
function socketCandidates(): string[] {
  const runtime = process.env.XDG_RUNTIME_DIR;
  return ['/run/podman/podman.sock', ...(runtime ? [`${runtime}/podman/podman.sock`] : [])];
}

interface RestAnswer {
  status: number;
  body: string;
}

function restCall(socketPath: string, path: string, method = 'GET'): Promise<RestAnswer | undefined> {
  return new Promise((resolve) => {
    const req = request({ socketPath, path, method, headers: { host: 'podman' } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }),
      );
      res.on('error', () => resolve(undefined));
    });
    req.on('error', () => resolve(undefined));
    req.end();
  });
}

let socket: Promise<string | undefined> | undefined;

/** The socket of a Podman service that answers, looked for once per process. */
function podmanSocket(): Promise<string | undefined> {
  socket ??= (async () => {
    for (const candidate of socketCandidates()) {
      const pong = await restCall(candidate, '/_ping');
      if (pong?.status === 200) return candidate;
    }
    return undefined;
  })();
  return socket;
}

/** The libpod API, in a version Podman 4 and 5 both serve. */
const LIBPOD = '/v4.0.0/libpod';

/**
 * `podman <kind> inspect <name>` as one object (what the CLI prints as `[object]`): through the
 * REST socket when there is one, else the CLI. Undefined when there is no such thing.
 */
export async function podmanInspect(kind: 'container' | 'pod' | 'image', name: string): Promise<unknown> {
  const at = await podmanSocket();
  if (at !== undefined) {
    const answer = await restCall(at, `${LIBPOD}/${kind}s/${encodeURIComponent(name)}/json`);
    if (answer !== undefined) {
      if (answer.status !== 200) return undefined;
      return JSON.parse(answer.body) as unknown;
    }
  }
  const result = await podman([kind, 'inspect', name, '--format', 'json']);
  if (!result.ok) return undefined;
  const parsed = JSON.parse(result.stdout) as unknown;
  return Array.isArray(parsed) ? (parsed[0] as unknown) : parsed;
}

/** `podman <kind> exists <name>`, through the REST socket when there is one. */
export async function podmanExists(kind: 'container' | 'image', name: string): Promise<boolean> {
  const at = await podmanSocket();
  if (at !== undefined) {
    const answer = await restCall(at, `${LIBPOD}/${kind}s/${encodeURIComponent(name)}/exists`);
    if (answer !== undefined) return answer.status === 204;
  }
  return (await podman([kind, 'exists', name])).ok;
}

/**
 * A change through the REST socket (`method` `path` under the libpod API) when there is one,
 * else `podman <cli>`. Resolves whether it worked; never rejects.
 */
async function podmanChange(method: 'POST' | 'DELETE', path: string, cli: string[]): Promise<boolean> {
  const at = await podmanSocket();
  if (at !== undefined) {
    const answer = await restCall(at, `${LIBPOD}${path}`, method);
    if (answer !== undefined) return answer.status >= 200 && answer.status < 300;
  }
  return (await podman(cli)).ok;
}

/**
 * Starts, stops (`graceSeconds` before SIGKILL), SIGKILLs or force-removes a Podman pod. Stop
 * and kill go through the CLI: the REST API does nothing (304) to a pod that is not wholly
 * running, and a build pod whose step ended is "degraded", not running.
 */
export async function podmanPod(
  action: 'start' | 'stop' | 'kill' | 'rm',
  name: string,
  graceSeconds = 10,
): Promise<boolean> {
  const at = `/pods/${encodeURIComponent(name)}`;
  switch (action) {
    case 'start':
      return podmanChange('POST', `${at}/start`, ['pod', 'start', name]);
    case 'stop':
      return (await podman(['pod', 'stop', '-t', String(graceSeconds), name])).ok;
    case 'kill':
      return (await podman(['pod', 'kill', '-s', 'KILL', name])).ok;
    case 'rm':
      return podmanChange('DELETE', `${at}?force=true`, ['pod', 'rm', '-f', name]);
  }
}

/** Stops (`graceSeconds` before SIGKILL) or SIGKILLs a Podman container. */
export function podmanContainer(action: 'stop' | 'kill', name: string, graceSeconds = 10): Promise<boolean> {
  const at = `/containers/${encodeURIComponent(name)}`;
  return action === 'stop'
    ? podmanChange('POST', `${at}/stop?timeout=${graceSeconds}`, ['stop', '-t', String(graceSeconds), name])
    : podmanChange('POST', `${at}/kill?signal=KILL`, ['kill', '-s', 'KILL', name]);
}

/** One line of `podman events --format json` (only the fields the kubelet reads). */
export interface PodmanEvent {
  ID?: string;
  Name?: string;
  Status?: string;
  Type?: string;
  ContainerExitCode?: number;
  Attributes?: Record<string, string> | null;
}

/**
 * Follows `podman events` for containers carrying `label` (from `since`, so that nothing that
 * happened between the kubelet's start and the stream's is missed) and hands each event to
 * `onEvent`. If the stream ends while not closed (Podman restarted), it is started again from
 * the last event's time.
 */
export class PodmanEventStream {
  private child: ChildProcess | undefined;
  private closed = false;
  private since: string;

  constructor(
    private readonly label: string,
    private readonly onEvent: (event: PodmanEvent) => void,
    since: Date,
  ) {
    this.since = since.toISOString();
    this.start();
  }

  private start(): void {
    const child = spawn(
      'podman',
      [
        'events',
        '--format',
        'json',
        '--filter',
        'type=container',
        '--filter',
        `label=${this.label}`,
        '--since',
        this.since,
      ],
      { stdio: ['ignore', 'pipe', 'ignore'], cwd: PODMAN_CWD },
    );
    this.child = child;
    const lines = createInterface({ input: child.stdout });
    lines.on('line', (line) => {
      let event: PodmanEvent & { Time?: string };
      try {
        event = JSON.parse(line) as PodmanEvent & { Time?: string };
      } catch {
        return;
      }
      if (event.Time) this.since = event.Time;
      this.onEvent(event);
    });
    child.on('error', () => undefined);
    child.on('exit', () => {
      if (this.closed) return;
      setTimeout(() => {
        if (!this.closed) this.start();
      }, 1000).unref();
    });
  }

  close(): void {
    this.closed = true;
    this.child?.kill('SIGTERM');
  }
}
