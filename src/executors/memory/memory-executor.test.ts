import { describe, expect, it } from 'vitest';
import { executorConformance, RecordingSink, type StepCommands } from '../executor.case.js';
import { runStep } from '../lifecycle.js';
import { MemoryExecutor } from './memory-executor.js';

/** The conformance cases' steps in the memory executor's instruction language. */
const MEMORY_COMMANDS: StepCommands = {
  shell: false,
  echo: (text) => `echo ${text}`,
  warn: (text) => `warn ${text}`,
  exit: (code) => `exit ${code}`,
  fail: () => 'exit 1',
  count: (n, delayMs = 0) => `count ${n} ${delayMs}`,
  printEnv: (name) => `env ${name}`,
  pwd: () => 'pwd',
  append: (file, text) => `append ${file} ${text}`,
  cat: (file) => `cat ${file}`,
  awaitFile: (file) => `await-file ${file}`,
  hang: () => 'hang',
  ignoreTerm: () => 'ignore-term',
  raw: (text) => `raw ${text}`,
  zeros: (n) => `long ${n}`,
};

// The memory engine is the executor object: a "second process" is the same instance.
executorConformance('memory', MEMORY_COMMANDS, () => {
  const executor = new MemoryExecutor({ stopGraceMs: 50 });
  return Promise.resolve({ create: () => executor, reopen: () => executor });
});

describe('MemoryExecutor', () => {
  it('refuses an unknown instruction as an internal step error', async () => {
    const ex = new MemoryExecutor();
    const h = await ex.prepare({ buildId: 'b1', project: 'p', branch: 'main', services: [] });
    const step = {
      key: 'a/b',
      stage: 'a',
      step: 'b',
      commands: ['frobnicate'],
      env: {},
      secrets: {},
      attempt: 1,
    };
    const exit = await runStep(ex, h, step, new RecordingSink(), new AbortController().signal);
    expect(exit).toEqual({
      kind: 'error',
      code: 'internal',
      message: 'memory executor: unknown instruction "frobnicate"',
    });
  });
});
