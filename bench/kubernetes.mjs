// Issue 12 benchmark: per-step overhead of the kubernetes executor against the docker executor
// on the same Podman, and the Kubernetes API requests a step and a build cost.
//
//   npm run bench -- kubernetes        (compiles src with tsconfig.bench.json into bench/.build)
//
// No Kubernetes API server runs on these machines: the kubernetes executor talks to the in-test
// STAND-IN API server (src/executors/kubernetes/testing/stand-in), whose kubelet runs the pods
// on the same Podman the docker executor uses. So the kubernetes figures include the stand-in's
// own cost (an HTTP API in this process, `podman` CLI calls for each container) where a real
// cluster has the API server, etcd and a kubelet: compare ratios, and read the request counts
// as what a real API server would receive.
// Cases, each in one build already prepared (the build's pod or volume exists): (a) one step,
// (b) ten steps one after another; plus the whole build of one step (prepare → step → destroy).
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ROOT, median, fmt, table } from './lib.mjs';

const RUNS = Number(process.env.BENCH_RUNS ?? 5);
const SEQUENTIAL = 10;
const IMAGE = process.env.SLIPWAY_TEST_IMAGE ?? 'localhost/busybox:latest';

export async function benchKubernetes() {
  execFileSync(process.execPath, [join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(ROOT, 'tsconfig.bench.json')], {
    stdio: 'inherit',
  });
  const built = (path) => import(pathToFileURL(join(ROOT, 'bench', '.build', path)).href);
  const { startStandIn } = await built('executors/kubernetes/testing/stand-in/index.js');
  const { createKubeApi } = await built('executors/kubernetes/client/index.js');
  const { KubernetesExecutor } = await built('executors/kubernetes/kubernetes-executor.js');
  const { createDockerExecutor } = await built('executors/docker/index.js');
  const { runStep } = await built('executors/lifecycle.js');

  const standIn = await startStandIn({ kubelet: 'podman' });
  const api = await createKubeApi({ kubeconfig: standIn.kubeconfigPath });
  const kube = new KubernetesExecutor({ api, installation: 'bench', helperImage: IMAGE, pull: 'Never', deleteGraceSeconds: 1 });
  const docker = await createDockerExecutor({ pull: 'never' });
  let seq = 0;
  const sink = { line() {} };
  const never = () => new AbortController().signal;
  const spec = () => ({ buildId: `bench-k8s-${process.pid}-${++seq}`, project: 'bench/k8s', branch: 'main', image: IMAGE, services: [] });
  const step = (i) => ({ key: `bench/s${i}`, stage: 'bench', step: `s${i}`, commands: ['echo hello'], env: {}, secrets: {}, attempt: 1 });
  const mustExit0 = (exit) => {
    if (exit?.kind !== 'exited' || exit.exitCode !== 0) throw new Error(`step ended ${JSON.stringify(exit)}`);
  };
  const timed = async (fn) => {
    const started = process.hrtime.bigint();
    await fn();
    return Number(process.hrtime.bigint() - started) / 1e6;
  };
  /** Requests the stand-in got while `fn` ran, by method and resource. */
  const counted = async (fn) => {
    const before = standIn.requests.length;
    const ms = await fn();
    const requests = standIn.requests.slice(before);
    return { ms, requests };
  };
  const steps = (ex, h, n) =>
    timed(async () => {
      for (let i = 0; i < n; i++) mustExit0(await runStep(ex, h, step(i), sink, never()));
    });
  const inBuild = async (ex, fn) => {
    const h = await ex.prepare(spec());
    try {
      return await fn(h);
    } finally {
      await ex.destroy(h);
    }
  };
  const cases = {
    a_kube: () => inBuild(kube, (h) => counted(() => steps(kube, h, 1))),
    a_docker: () => inBuild(docker, (h) => counted(() => steps(docker, h, 1))),
    b_kube: () => inBuild(kube, (h) => counted(() => steps(kube, h, SEQUENTIAL))),
    b_docker: () => inBuild(docker, (h) => counted(() => steps(docker, h, SEQUENTIAL))),
    c_kube: () => counted(() => timed(() => inBuild(kube, (h) => steps(kube, h, 1)))),
    c_docker: () => counted(() => timed(() => inBuild(docker, (h) => steps(docker, h, 1)))),
  };
  const results = {};
  const requests = {};
  try {
    for (const [name, fn] of Object.entries(cases)) {
      await fn(); // warm-up
      const samples = [];
      for (let i = 0; i < RUNS; i++) {
        const run = await fn();
        samples.push(run.ms);
        requests[name] = run.requests;
      }
      results[name] = median(samples);
    }
  } finally {
    await kube.close();
    await standIn.close();
  }
  const describe = (list) => {
    const by = {};
    for (const r of list) {
      const resource = r.path.replace(/^\/api\/v1\/namespaces\/[^/]+\//, '').replace(/^(pods|secrets|configmaps|events)\/[^/?]+/, '$1/<name>');
      const key = `${r.method} ${resource.split('?')[0]}`;
      by[key] = (by[key] ?? 0) + 1;
    }
    return by;
  };
  const perStep = (requests.b_kube.length - requests.a_kube.length) / (SEQUENTIAL - 1);
  const summary = {
    runs: RUNS,
    medianMs: results,
    ratios: {
      a_step_kube_vs_docker: results.a_kube / results.a_docker,
      b_steps_kube_vs_docker: results.b_kube / results.b_docker,
      c_build_kube_vs_docker: results.c_kube / results.c_docker,
    },
    apiRequests: {
      oneStep: requests.a_kube.length,
      perStepMarginal: perStep,
      wholeBuildOfOneStep: requests.c_kube.length,
      wholeBuildByKind: describe(requests.c_kube),
    },
  };
  console.log(
    table([
      ['case', 'kubernetes (stand-in on Podman)', 'docker (Podman)', 'ratio'],
      ['(a) 1 step in a prepared build', fmt(results.a_kube), fmt(results.a_docker), summary.ratios.a_step_kube_vs_docker.toFixed(2)],
      [`(b) ${SEQUENTIAL} steps one after another`, fmt(results.b_kube), fmt(results.b_docker), summary.ratios.b_steps_kube_vs_docker.toFixed(2)],
      ['(c) whole build of 1 step', fmt(results.c_kube), fmt(results.c_docker), summary.ratios.c_build_kube_vs_docker.toFixed(2)],
    ]),
  );
  console.log(
    `API requests: ${summary.apiRequests.oneStep} for one step, ${perStep.toFixed(1)} per further step, ` +
      `${summary.apiRequests.wholeBuildOfOneStep} for a whole one-step build:`,
  );
  for (const [kind, n] of Object.entries(summary.apiRequests.wholeBuildByKind)) console.log(`  ${n} × ${kind}`);
  return summary;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  await benchKubernetes();
}
