/**
 * The stand-in kubelet's plumbing: Podman leftovers of crashed test runs, the node's address,
 * API timestamps and abortable waits.
 */
import { networkInterfaces } from 'node:os';
import { podman } from './podman-cli.js';

/** Every Podman object the stand-in kubelet makes carries this label (`=1`). */
export const STAND_IN_LABEL = 'slipway-stand-in';

export interface InspectedContainer {
  Id: string;
  Image: string;
  ImageName?: string;
  State: {
    Status: string;
    Running: boolean;
    ExitCode: number;
    OOMKilled: boolean;
    StartedAt: string;
    FinishedAt: string;
  };
}

/** Removes stand-in pods and containers whose test process is gone (a crashed earlier run). */
export async function removeLeftovers(): Promise<void> {
  const listed = await podman(['pod', 'ps', '--filter', `label=${STAND_IN_LABEL}=1`, '--format', 'json']);
  if (!listed.ok) return;
  const pods = JSON.parse(listed.stdout || '[]') as { Id: string; Labels?: Record<string, string> }[];
  const stale = pods.filter((pod) => !processAlive(Number(pod.Labels?.[`${STAND_IN_LABEL}.pid`])));
  if (stale.length > 0) await podman(['pod', 'rm', '-f', '-t', '0', ...stale.map((pod) => pod.Id)]);
  const containers = await podman(['ps', '-a', '--filter', `label=${STAND_IN_LABEL}=1`, '--format', 'json']);
  if (!containers.ok) return;
  const list = JSON.parse(containers.stdout || '[]') as { Id: string; Labels?: Record<string, string> }[];
  const orphans = list.filter((c) => !processAlive(Number(c.Labels?.[`${STAND_IN_LABEL}.pid`])));
  if (orphans.length > 0) await podman(['rm', '-f', '-t', '0', ...orphans.map((c) => c.Id)]);
}

export async function removeWhere(filter: string): Promise<void> {
  const pods = await podman(['pod', 'ps', '-q', '--filter', filter]);
  const podIds = pods.stdout.split('\n').filter(Boolean);
  if (podIds.length > 0) await podman(['pod', 'rm', '-f', '-t', '0', ...podIds]);
  const containers = await podman(['ps', '-aq', '--filter', filter]);
  const ids = containers.stdout.split('\n').filter(Boolean);
  if (ids.length > 0) await podman(['rm', '-f', '-t', '0', ...ids]);
}

export function processAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The node's address: the first external IPv4 that is not a container bridge. */
export function nodeIP(): string | undefined {
  for (const [name, addresses] of Object.entries(networkInterfaces())) {
    if (/^(podman|veth|cni|docker|lo)/.test(name)) continue;
    const found = addresses?.find((address) => address.family === 'IPv4' && !address.internal);
    if (found) return found.address;
  }
  return undefined;
}

/** An API timestamp: RFC 3339 with a second's precision. */
export function seconds(date: Date): string {
  return date.toISOString().replace(/\.\d+Z$/, 'Z');
}

/** The client's abortable wait: one copy for the client and the stand-in. */
export { sleep } from '../../../client/timing.js';

export function aborted(signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) resolve();
    else signal.addEventListener('abort', () => resolve(), { once: true });
  });
}
