/** What a project's builds hold on the container engine, by label, for the restart tests. */
import { execFileAsync } from '../server/server-harness.js';

/** A step that prints `line 1..3`, waits until the test creates /tmp/go in its container, prints `line 4..6`, exits with `exit`. */
export const GATED_PIPELINE = (exit = 0): string =>
  [
    'image: busybox:latest',
    'steps:',
    '  - name: work',
    '    commands:',
    '      - for i in 1 2 3; do echo "line $i"; done',
    '      - while [ ! -f /tmp/go ]; do sleep 0.2; done',
    '      - for i in 4 5 6; do echo "line $i"; done',
    `      - exit ${exit}`,
    '',
  ].join('\n');

/** Ids of the step containers of a project (running or not). */
export async function stepContainers(project: string): Promise<string[]> {
  const { stdout } = await execFileAsync('podman', [
    'ps',
    '-a',
    '--filter',
    `label=slipway.project=${project}`,
    '--filter',
    'label=slipway.role=step',
    '--format',
    '{{.ID}}',
  ]);
  return stdout.trim().split('\n').filter(Boolean);
}

/** Names of every container of a project, steps and services. */
export async function containersOf(project: string): Promise<string[]> {
  const { stdout } = await execFileAsync('podman', [
    'ps',
    '-a',
    '--filter',
    `label=slipway.project=${project}`,
    '--format',
    '{{.Names}}',
  ]);
  return stdout.trim().split('\n').filter(Boolean);
}

/** Lets the gated step of a project go on (see {@link GATED_PIPELINE}). */
export async function openGate(project: string): Promise<void> {
  const [container, ...more] = await stepContainers(project);
  if (container === undefined || more.length > 0)
    throw new Error(`expected one step container of ${project}, found ${more.length + (container ? 1 : 0)}`);
  await execFileAsync('podman', ['exec', container, 'touch', '/tmp/go']);
}
