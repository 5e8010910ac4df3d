import { connect } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ServicePlan } from '../../pipeline/types.js';
import { ExecutorError } from '../types.js';
import type { GroupEnd, ProcessGroup } from './process-group.js';

/**
 * Services the local executor can run: those with `commands` (their image is ignored, as a
 * step's is). Throws before anything starts if one can only be run from an image.
 */
export function checkServices(services: ServicePlan[]): void {
  for (const s of services) {
    if (s.commands && s.commands.length > 0) continue;
    const image = s.image ? ` (image ${s.image})` : '';
    throw new ExecutorError(
      'service',
      `the local executor cannot run service "${s.name}"${image}: it has no commands; use the docker executor`,
    );
  }
}

/**
 * Waits until 127.0.0.1:`port` accepts a TCP connection. Fails early if the service exits
 * first, and with an ExecutorError('service') after `timeoutMs`.
 */
export async function waitForPort(
  name: string,
  port: number,
  proc: ProcessGroup,
  timeoutMs: number,
  signal?: AbortSignal,
): Promise<void> {
  let ended: GroupEnd | undefined;
  void proc.done.then((end) => (ended = end));
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    signal?.throwIfAborted();
    if (await canConnect(port, Math.min(1000, Math.max(1, deadline - Date.now())))) return;
    if (ended) {
      const how = ended.kind === 'exited' ? `exited with code ${ended.exitCode}` : ended.message;
      throw new ExecutorError('service', `service "${name}" ${how} before port ${port} accepted connections`);
    }
    if (Date.now() >= deadline) {
      throw new ExecutorError(
        'service',
        `service "${name}" did not accept connections on port ${port} within ${timeoutMs} ms`,
      );
    }
    await sleep(100, undefined, signal ? { signal } : undefined);
  }
}

function canConnect(port: number, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    const finish = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => finish(false));
    socket.once('connect', () => finish(true));
    socket.once('error', () => finish(false));
  });
}
