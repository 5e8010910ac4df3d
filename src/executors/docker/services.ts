/**
 * Services and the build's network namespace. When a pipeline has services, an *infra*
 * container owns one network namespace; services and steps join it (`NetworkMode:
 * container:<infra>`), so a service listening on a port is `localhost:<port>` for every step:
 * Kubernetes pod semantics on Docker and Podman's compatible API alike.
 */
import type { ServicePlan } from '../../pipeline/types.js';
import { ExecutorError } from '../types.js';
import type { DockerBuild, DockerContext, ServiceRun } from './build.js';
import { isOfBuild, LABELS, labelFilter } from './resources.js';
import { pipeOutput } from './output.js';
import { delay, engineCall, errorText, slug } from './util.js';

export interface ServiceOptions {
  /** Image of the infra container, run with its own command (e.g. a `pause` image). */
  infraImage?: string;
  /** Bound on waiting for a service's `wait_for` port. */
  serviceTimeoutMs: number;
}

/** Starts the infra container, then the services, then waits for their `wait_for` ports. */
export async function startServices(
  ctx: DockerContext,
  build: DockerBuild,
  options: ServiceOptions,
  signal: AbortSignal | undefined,
): Promise<void> {
  const spec = build.spec;
  const ownInfraImage = options.infraImage;
  const infraImage = ownInfraImage ?? spec.image ?? spec.services.find((s) => s.image)?.image;
  if (!infraImage) {
    throw new ExecutorError(
      'service',
      'services need an image: set image on each service or on the pipeline',
    );
  }
  await ensureImage(ctx, build, infraImage, '');
  const infra = await engineCall(
    ctx.engine,
    'create the build network namespace (infra container)',
    'service',
    () =>
      ctx.client.createContainer({
        name: `${build.prefix}-infra`,
        Image: infraImage,
        // `read` on a stdin that stays open blocks forever: a keep-alive with no binary needed.
        ...(ownInfraImage ? {} : { Cmd: ['/bin/sh', '-c', 'read _'], OpenStdin: true }),
        Labels: build.labels('infra'),
      }),
  );
  build.infra = infra;
  build.infraHasShell = !ownInfraImage;
  await engineCall(ctx.engine, 'start the infra container', 'service', () => infra.start());

  for (const service of spec.services) {
    if (signal?.aborted) return;
    await startService(ctx, build, service);
  }
  for (const service of spec.services) {
    if (service.waitFor === undefined) continue;
    await waitForPort(build, service, service.waitFor, options.serviceTimeoutMs, signal);
  }
}

/**
 * Finds the infra container and services of a build an earlier process prepared, so that new
 * steps join its namespace and destroy knows them. Restarts nothing.
 */
export async function findServices(ctx: DockerContext, build: DockerBuild): Promise<void> {
  const containers = await engineCall(ctx.engine, 'list the build containers', 'service', () =>
    ctx.client.listContainers({
      all: true,
      filters: labelFilter(`${LABELS.managed}=true`, `${LABELS.build}=${build.buildId}`),
    }),
  );
  for (const c of containers) {
    if (isOfBuild(c.Labels, build.buildId, 'infra')) build.infra = ctx.client.getContainer(c.Id);
    if (isOfBuild(c.Labels, build.buildId, 'service')) {
      build.services.push({
        name: c.Labels?.[LABELS.service] ?? '',
        container: ctx.client.getContainer(c.Id),
      });
    }
  }
}

async function ensureImage(
  ctx: DockerContext,
  build: DockerBuild,
  image: string,
  what: string,
): Promise<void> {
  const missing = await ctx.images.ensure(build.images, image);
  if (missing) {
    throw new ExecutorError(
      missing.code === 'engine_unavailable' ? 'engine_unavailable' : 'image_unavailable',
      `${what}${missing.message}`,
    );
  }
}

async function startService(ctx: DockerContext, build: DockerBuild, service: ServicePlan): Promise<void> {
  const image = service.image ?? build.spec.image;
  if (!image) throw new ExecutorError('service', `service "${service.name}" has no image`);
  await ensureImage(ctx, build, image, `service "${service.name}": `);
  const what = `service "${service.name}"`;
  const container = await engineCall(ctx.engine, `create ${what}`, 'service', () =>
    ctx.client.createContainer({
      name: `${build.prefix}-svc-${slug(service.name, 40)}`,
      Image: image,
      ...(service.commands ? { Cmd: ['/bin/sh', '-e', '-c', service.commands.join('\n')] } : {}),
      Env: Object.entries(service.env).map(([k, v]) => `${k}=${v}`),
      Labels: build.labels('service', { [LABELS.service]: service.name }),
      AttachStdout: true,
      AttachStderr: true,
      HostConfig: {
        Mounts: [{ Type: 'volume', Source: build.volume ?? '', Target: ctx.workspace }],
        NetworkMode: `container:${build.infra?.id ?? ''}`,
      },
    }),
  );
  const run: ServiceRun = { name: service.name, container };
  build.services.push(run);
  const sink = build.spec.serviceSink?.(service.name);
  if (sink) {
    const output = await engineCall(ctx.engine, `attach to ${what}`, 'service', () =>
      container.attach({ stream: true, stdout: true, stderr: true }),
    );
    run.output = output;
    pipeOutput(output, sink);
  }
  await engineCall(ctx.engine, `start ${what}`, 'service', () => container.start());
}

/**
 * Waits until something listens on `port` in the build's network namespace. The probe reads
 * `/proc/net/tcp{,6}` with shell builtins only, run inside the namespace by an exec, so it
 * needs no `nc` in any image and no route from the Slipway host into the build.
 */
async function waitForPort(
  build: DockerBuild,
  service: ServicePlan,
  port: number,
  timeoutMs: number,
  signal: AbortSignal | undefined,
): Promise<void> {
  const run = build.services.find((s) => s.name === service.name);
  const prober = build.infraHasShell ? build.infra : run?.container;
  if (!run || !prober) return;
  const hex = port.toString(16).toUpperCase().padStart(4, '0');
  const script =
    'for f in /proc/net/tcp /proc/net/tcp6; do [ -r "$f" ] || continue; ' +
    `while read -r _ a _ s _; do case "$a" in *:${hex}) [ "$s" = 0A ] && exit 0;; esac; done < "$f"; ` +
    'done; exit 1';
  const deadline = Date.now() + timeoutMs;
  let lastProblem = '';
  for (;;) {
    if (signal?.aborted) throw new ExecutorError('service', 'cancelled while waiting for services');
    try {
      const exec = await prober.exec({
        Cmd: ['/bin/sh', '-c', script],
        AttachStdout: true,
        AttachStderr: true,
      });
      const stream = await exec.start({ hijack: true, stdin: false });
      await new Promise<void>((resolve) => {
        stream.on('end', resolve);
        stream.on('close', resolve);
        stream.on('error', () => resolve());
        stream.resume();
      });
      if ((await exec.inspect()).ExitCode === 0) return;
      lastProblem = '';
    } catch (error) {
      lastProblem = `; last probe failed: ${errorText(error)}`;
    }
    const state = await run.container.inspect().then(
      (i) => i.State,
      () => undefined,
    );
    if (state && !state.Running) {
      throw new ExecutorError(
        'service',
        `service "${service.name}" exited (code ${state.ExitCode ?? '?'}) before port ${port} was open`,
      );
    }
    if (Date.now() >= deadline) {
      throw new ExecutorError(
        'service',
        `service "${service.name}" did not open port ${port} within ${Math.round(timeoutMs / 1000)} s${lastProblem}`,
      );
    }
    await delay(200);
  }
}
