import type { Command } from 'commander';
import type { Executor, ExecutorResource } from '../executors/types.js';
import { engineTimeoutFrom, engineTimeoutOption } from './engine-timeout.js';
import { EXIT } from './errors.js';
import {
  kubernetesExecutorFrom,
  withKubernetesOptions,
  type KubernetesCliOptions,
} from './kubernetes-options.js';

/** `slipway doctor` and `slipway gc`: what can run here, and clean-up of leftovers. */
export function registerMaintenanceCommands(program: Command, exit: (code: number) => void): void {
  withKubernetesOptions(program.command('doctor'))
    .description('report which executors are usable on this machine, and why not')
    .option('--engine <address>', 'docker: engine address to check')
    .addOption(engineTimeoutOption())
    .action(async (options: { engine?: string; engineTimeout?: string } & KubernetesCliOptions) => {
      const timeout = engineTimeoutFrom(options.engineTimeout);
      const { doctorReport, formatDoctorReport } = await import('../executors/docker/index.js');
      const { kubernetesDoctorFromConfig } = await import('../executors/kubernetes/install/doctor.js');
      const [report, kubernetes] = await Promise.all([
        doctorReport({
          ...(options.engine !== undefined ? { engine: options.engine } : {}),
          ...timeout,
        }),
        kubernetesDoctorFromConfig({
          ...(options.kubeconfig !== undefined ? { kubeconfig: options.kubeconfig } : {}),
          ...(options.context !== undefined ? { context: options.context } : {}),
          ...(options.namespace !== undefined ? { namespace: options.namespace } : {}),
        }),
      ]);
      report.executors.push(kubernetes);
      process.stdout.write(formatDoctorReport(report) + '\n');
      exit(EXIT.ok);
    });

  withKubernetesOptions(program.command('gc'))
    .description(
      'list and remove what builds that no longer run left behind (containers, volumes, workspaces)',
    )
    .option('--executor <name>', 'local, docker, kubernetes, or all (local and docker)', 'all')
    .option('--engine <address>', 'docker: engine address')
    .addOption(engineTimeoutOption())
    .option('--dry-run', 'only list what would be removed', false)
    .option('--all', 'also stop and remove builds that are still running (other `slipway run`s too)', false)
    .action(
      async (
        options: {
          executor: string;
          engine?: string;
          engineTimeout?: string;
          dryRun: boolean;
          all: boolean;
        } & KubernetesCliOptions,
      ) => {
        const timeout = engineTimeoutFrom(options.engineTimeout);
        const executors: Executor[] = [];
        if (options.executor === 'local' || options.executor === 'all') {
          const { LocalExecutor } = await import('../executors/local/local-executor.js');
          executors.push(new LocalExecutor());
        }
        if (options.executor === 'docker' || options.executor === 'all') {
          const { createDockerExecutor, EngineUnavailableError } =
            await import('../executors/docker/index.js');
          try {
            executors.push(
              await createDockerExecutor({
                ...(options.engine !== undefined ? { engine: options.engine } : {}),
                ...timeout,
              }),
            );
          } catch (error) {
            if (options.executor === 'docker') throw error;
            const why = error instanceof EngineUnavailableError ? error.summary : String(error);
            process.stderr.write(`docker: skipped, no container engine answered (${why})\n`);
          }
        }
        if (options.executor === 'kubernetes') {
          executors.push(await kubernetesExecutorFrom(options));
        }
        let removed = 0;
        for (const executor of executors) {
          const byBuild = groupByBuild(await executor.listResources());
          for (const [buildId, resources] of byBuild) {
            const running = resources.some((r) => r.running);
            const what = resources.map((r) => `${r.kind} ${r.id}`).join(', ');
            if (running && !options.all) {
              process.stdout.write(`keep    ${executor.name} ${buildId} (still running: ${what})\n`);
              continue;
            }
            process.stdout.write(
              `${options.dryRun ? 'would remove' : 'remove'}  ${executor.name} ${buildId}: ${what}\n`,
            );
            if (!options.dryRun) await executor.removeResources(buildId);
            removed += 1;
          }
        }
        for (const executor of executors) await executor.close?.();
        process.stdout.write(`${removed} build(s) ${options.dryRun ? 'to clean up' : 'cleaned up'}\n`);
        exit(EXIT.ok);
      },
    );
}

function groupByBuild(resources: ExecutorResource[]): Map<string, ExecutorResource[]> {
  const out = new Map<string, ExecutorResource[]>();
  for (const resource of resources)
    out.set(resource.buildId, [...(out.get(resource.buildId) ?? []), resource]);
  return out;
}
