/**
 * A real `slipway server` child process with its request log on (no `--quiet`), stdout a
 * pipe (so the log is pino's JSON, as a service manager would collect it), for the attacks
 * whose evidence is in the log. `server-harness.ts` always starts servers quiet.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { rm } from 'node:fs/promises';
import { ROOT, SLIPWAY_BIN } from '../cli-helpers.js';
import { Api, freePort, tempDir, waitFor } from '../server/server-harness.js';

export interface LoggingServer {
  url: string;
  /** The first admin token, printed at start. */
  token: string;
  api: Api;
  /** Everything printed so far (stdout and stderr). */
  output(): string;
  /** The JSON entries of the log so far. */
  entries(): Array<Record<string, unknown>>;
  /**
   * Resolves once everything logged for the requests answered so far is in `output()`: sends a
   * marked request and waits for its "request completed" entry (the log is written in order).
   */
  flush(): Promise<void>;
  stop(): Promise<void>;
}

export async function startLoggingServer(): Promise<LoggingServer> {
  const dataDir = await tempDir('security-data');
  const port = await freePort();
  const child: ChildProcess = spawn(
    process.execPath,
    [SLIPWAY_BIN, 'server', '--data-dir', dataDir, '--port', String(port)],
    { cwd: ROOT, env: { ...process.env, NO_COLOR: '1' }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let text = '';
  child.stdout!.on('data', (chunk: Buffer) => (text += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (text += chunk.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let gone = false;
  void exited.then(() => (gone = true));
  const ready = await waitFor(
    'the server to listen and print its admin token',
    () => {
      if (gone) throw new Error(`slipway server exited before it was ready:\n${text}`);
      const url = /Slipway listening on (http:\/\/\S+)/.exec(text)?.[1];
      const token = /Created the first admin token[^\n]*\n\s*(\S+)/.exec(text)?.[1];
      return url !== undefined && token !== undefined ? { url, token } : undefined;
    },
    60_000,
    50,
  );
  const entries = () =>
    text
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as Record<string, unknown>);
  return {
    ...ready,
    api: new Api(ready.url, ready.token),
    output: () => text,
    entries,
    flush: async () => {
      const marker = `flush-${Math.random().toString(36).slice(2)}`;
      await (await fetch(`${ready.url}/healthz?${marker}`)).text();
      await waitFor(
        `the log entries of ${marker}`,
        () => {
          const all = entries();
          const reqId = all.find((e) =>
            (e.req as { url?: string } | undefined)?.url?.includes(marker),
          )?.reqId;
          return reqId !== undefined && all.some((e) => e.reqId === reqId && e.msg === 'request completed')
            ? true
            : undefined;
        },
        30_000,
        25,
      );
    },
    stop: async () => {
      if (!gone) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
        await exited;
        clearTimeout(timer);
      }
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}
