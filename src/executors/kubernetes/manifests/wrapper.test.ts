/**
 * The step wrapper run for real: the exact argv of a step's ephemeral container, in the test
 * image with Podman (a temp dir bind-mounted where the pod's volumes would be), and under
 * dash on the host for POSIX-ness. Stopping is driven by the stop file, as the downwardAPI
 * volume would deliver the pod's `slipway.dev/stop` annotation.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, describe, expect, it } from 'vitest';
import { TEST_IMAGE } from '../../docker/testing/test-engine.js';
import { stepCommand } from './wrapper.js';

const dirs: string[] = [];
const containers: string[] = [];
afterAll(() => {
  for (const name of containers) spawnSync('podman', ['rm', '-f', '-t', '0', name]);
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

interface Run {
  lines: string[];
  /** stderr, which the Kubernetes log API merges into the step's log. */
  errors: string[];
  /** Resolves when a line equal to `text` has come out. */
  line(text: string): Promise<void>;
  exit: Promise<number>;
  control: string;
  /** SIGTERM to the wrapper (what the kubelet does when the pod is deleted). */
  terminate(): void;
}

type Runner = (commands: string[], name: string, grace: number, stopFile?: string) => Run;

let serial = 0;

function start(
  command: string,
  args: string[],
  control: string,
  workspace: string,
  terminate: (child: ChildProcess) => void,
  ownGroup = false,
): Run {
  const child = spawn(command, args, {
    cwd: workspace,
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: ownGroup,
  });
  if (ownGroup) {
    // As in a container, whose PID 1 takes everything with it: what the step left behind (a
    // `sleep 600` of a killed step shell) would otherwise hold the output pipe open.
    child.on('exit', () => {
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        // Nothing left.
      }
    });
  }
  const lines: string[] = [];
  const errors: string[] = [];
  createInterface({ input: child.stderr }).on('line', (line) => errors.push(line));
  const waiting = new Map<string, () => void>();
  createInterface({ input: child.stdout }).on('line', (line) => {
    lines.push(line);
    waiting.get(line)?.();
  });
  const exit = new Promise<number>((resolve, reject) => {
    child.on('error', reject);
    // After 'close', every line has been read.
    child.on('close', (code, signal) => resolve(code ?? (signal ? -1 : -2)));
  });
  return {
    lines,
    errors,
    control,
    exit,
    terminate: () => terminate(child),
    line: (text) =>
      lines.includes(text)
        ? Promise.resolve()
        : Promise.race([
            new Promise<void>((resolve) => waiting.set(text, resolve)),
            exit.then((code) => {
              throw new Error(`exited ${code} before printing ${text}: ${lines.join(' | ')}`);
            }),
          ]),
  };
}

function dirsFor(stopFile: string | undefined): { control: string; workspace: string } {
  const root = mkdtempSync(join(tmpdir(), 'slipway-wrapper-'));
  dirs.push(root);
  const control = join(root, 'control');
  const workspace = join(root, 'workspace');
  spawnSync('mkdir', ['-p', control, workspace]);
  if (stopFile !== undefined) writeFileSync(join(control, 'stop'), stopFile);
  return { control, workspace };
}

const podman: Runner = (commands, name, grace, stopFile) => {
  const { control, workspace } = dirsFor(stopFile);
  const container = `slipway-wrapper-test-${process.pid}-${serial++}`;
  containers.push(container);
  const argv = stepCommand(commands, name, grace);
  const args = [
    'run',
    '--rm',
    '--name',
    container,
    '-v',
    `${control}:/slipway/control:ro`,
    '-v',
    `${workspace}:/workspace`,
  ];
  args.push('-w', '/workspace', '--entrypoint', argv[0]!, TEST_IMAGE, ...argv.slice(1));
  return start('podman', args, control, workspace, () => {
    spawnSync('podman', ['kill', '--signal', 'TERM', container]);
  });
};

const dash: Runner = (commands, name, grace, stopFile) => {
  const { control, workspace } = dirsFor(stopFile);
  // The same argv with /bin/dash for /bin/sh, and the control directory as the optional 4th argument.
  const argv = stepCommand(commands, name, grace).slice(1);
  return start('/bin/dash', [...argv, control], control, workspace, (child) => child.kill('SIGTERM'), true);
};

function stop(run: Run, names: string): void {
  // Replaced at once, as the kubelet replaces a downwardAPI file.
  writeFileSync(join(run.control, 'stop.new'), names);
  renameSync(join(run.control, 'stop.new'), join(run.control, 'stop'));
}

describe.each([
  ['podman run --rm (test image, busybox sh)', podman],
  ['dash on the host', dash],
])('step wrapper under %s', (_label, run) => {
  it('exits with the step status and passes its output through: 0, 3, and a failing command under -e', async () => {
    const ok = run(['echo one', 'echo two'], 'step-a-1', 1);
    const three = run(['echo before', 'exit 3'], 'step-a-1', 1);
    const failing = run(['echo start', 'false', 'echo not-here'], 'step-a-1', 1);
    expect(await ok.exit).toBe(0);
    expect(ok.lines).toEqual(['one', 'two']);
    expect(await three.exit).toBe(3);
    expect(three.lines).toEqual(['before']);
    expect(await failing.exit).toBe(1);
    expect(failing.lines).toEqual(['start']);
  });

  it('keeps quotes, $, backslashes and newlines of the commands as they are', async () => {
    const r = run(
      [
        `printf '%s\\n' "it's \\"quoted\\"" '$HOME stays' 'back\\slash \\n' "tab\there"`,
        `x='two\nlines'`,
        `printf '%s\\n' "$x" "$(printf '%s' '$(not run)')"`,
        'cat <<"EOF"\n  indented $x `no` \\\nEOF',
      ],
      'step-a-1',
      1,
    );
    expect(await r.exit).toBe(0);
    expect(r.lines).toEqual([
      `it's "quoted"`,
      '$HOME stays',
      'back\\slash \\n',
      'tab\there',
      'two',
      'lines',
      '$(not run)',
      '  indented $x `no` \\',
    ]);
  });

  it('a stop file naming the container stops the step: SIGTERM honoured → 143', async () => {
    const r = run(['echo started', 'sleep 600'], 'step-a-1', 30);
    await r.line('started');
    stop(r, 'step-b-2 step-a-1 step-c-3');
    expect([143, 137]).toContain(await r.exit);
    // Well before the 30 s grace: SIGTERM ended it.
    expect(await r.exit).toBe(143);
    expect(r.errors).toEqual([]);
  });

  it('a step that traps and ignores SIGTERM is killed after the grace → 137', async () => {
    const r = run(["trap '' TERM", 'echo started', 'sleep 600', 'echo not-here'], 'step-a-1', 1);
    await r.line('started');
    stop(r, 'step-a-1');
    expect(await r.exit).toBe(137);
    expect(r.lines).toEqual(['started']);
    // No "Killed"/"Terminated" job report of the wrapper's shell in the step's log.
    expect(r.errors).toEqual([]);
  });

  it('a stop file naming other containers does nothing (whole words: step-a-1 is not step-a-12)', async () => {
    const r = run(
      ['echo started', 'sleep 2', 'echo survived', 'exit 5'],
      'step-a-1',
      1,
      'step-a-12 xstep-a-1 step-a-1x\n',
    );
    expect(await r.exit).toBe(5);
    expect(r.lines).toEqual(['started', 'survived']);
  });

  it('SIGTERM to the wrapper (the pod deleted) is forwarded to the step', async () => {
    const r = run(['echo started', 'sleep 600'], 'step-a-1', 30);
    await r.line('started');
    r.terminate();
    expect(await r.exit).toBe(143);
  });
});
