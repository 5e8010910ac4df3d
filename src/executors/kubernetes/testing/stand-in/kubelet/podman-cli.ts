/**
 * The stand-in kubelet's only way to Podman: its CLI (`podman …` through execFile) and one
 * `podman events` stream. Errors are data: a failed command resolves with its exit code and
 * stderr, so the kubelet can turn "no such image" into a waiting reason instead of a throw.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';

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
      { maxBuffer: 64 * 1024 * 1024, timeout: options.timeoutMs ?? 0, encoding: 'utf8' },
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
      { stdio: ['ignore', 'pipe', 'ignore'] },
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
