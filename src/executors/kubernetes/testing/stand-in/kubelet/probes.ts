/**
 * One probe attempt, as the kubelet's prober makes it: tcpSocket and httpGet from the node to
 * the pod's IP (Podman's bridge network is routed from the host, as a pod network is from its
 * node), exec inside the container (`podman exec`). The output strings are the prober's.
 */
import { connect } from 'node:net';
import type { IContainer } from 'kubernetes-models/v1/Container';
import type { IProbe } from 'kubernetes-models/v1/Probe';
import { podman } from './podman-cli.js';

export interface ProbeResult {
  ok: boolean;
  output: string;
}

export async function probeOnce(
  probe: IProbe,
  container: IContainer,
  podIP: string,
  podmanName: string,
): Promise<ProbeResult> {
  const timeoutMs = (probe.timeoutSeconds ?? 1) * 1000;
  if (probe.tcpSocket) {
    const port = resolvePort(probe.tcpSocket.port, container);
    const host = probe.tcpSocket.host ?? podIP;
    return tcpProbe(host, port, timeoutMs);
  }
  if (probe.httpGet) {
    const port = resolvePort(probe.httpGet.port, container);
    const scheme = (probe.httpGet.scheme ?? 'HTTP').toLowerCase();
    const url = `${scheme}://${probe.httpGet.host ?? podIP}:${port}${probe.httpGet.path ?? '/'}`;
    try {
      const response = await fetch(url, { signal: AbortSignal.timeout(timeoutMs), redirect: 'manual' });
      await response.body?.cancel();
      if (response.status >= 200 && response.status < 400) return { ok: true, output: '' };
      return { ok: false, output: `HTTP probe failed with statuscode: ${response.status}` };
    } catch (error) {
      return { ok: false, output: `Get "${url}": ${error instanceof Error ? error.message : String(error)}` };
    }
  }
  if (probe.exec) {
    const result = await podman(['exec', podmanName, ...(probe.exec.command ?? [])], { timeoutMs });
    return { ok: result.ok, output: result.ok ? '' : `${result.stdout}${result.stderr}`.trim() };
  }
  return { ok: false, output: 'the stand-in kubelet runs tcpSocket, httpGet and exec probes only' };
}

function resolvePort(port: number | string, container: IContainer): number {
  if (typeof port === 'number') return port;
  const named = container.ports?.find((p) => p.name === port);
  return named?.containerPort ?? Number(port);
}

function tcpProbe(host: string, port: number, timeoutMs: number): Promise<ProbeResult> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    const done = (result: ProbeResult): void => {
      socket.destroy();
      resolve(result);
    };
    socket.setTimeout(timeoutMs, () => done({ ok: false, output: `dial tcp ${host}:${port}: i/o timeout` }));
    socket.once('connect', () => done({ ok: true, output: '' }));
    socket.once('error', (error: NodeJS.ErrnoException) =>
      done({
        ok: false,
        output: `dial tcp ${host}:${port}: connect: ${error.code === 'ECONNREFUSED' ? 'connection refused' : error.message}`,
      }),
    );
  });
}
