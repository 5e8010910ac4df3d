import type { StageRecord } from '../../store/index.js';
import type { LogStore } from '../logs/types.js';

/**
 * The failing step of a build and its last stored lines, as a failure message quotes them
 * (the e-mail, a GitHub check run's output). Read from the log store, never live output.
 */

/** Lines of the failing step quoted in a message. */
export const TAIL_LINES = 20;
/** A quoted line longer than this is cut: a minified bundle on one line is no help in a message. */
const LINE_CHARS = 400;
/** Lines read from the store at a time while looking for the tail. */
const PAGE = 2000;

/** The step a failure message quotes: the first that failed (or errored) and was not allowed to. */
export function failingStep(records: readonly StageRecord[]): { stage: string; step: string } | null {
  const steps = records.flatMap((stage) => stage.steps.map((step) => ({ stage: stage.name, step })));
  const failed = (allowed: boolean) =>
    steps.find(
      ({ step }) => (step.status === 'failure' || step.status === 'error') && step.allowFailure === allowed,
    );
  const found = failed(false) ?? failed(true);
  return found === undefined ? null : { stage: found.stage, step: found.step.name };
}

/**
 * The last `count` stored lines of one step. Read from the log store, where secrets were
 * already masked before anything was written: never from live output. Pages through the log
 * keeping only a ring of `count` lines, so a 100k-line log costs time, not memory.
 */
export async function stepTail(
  logs: LogStore,
  buildId: number,
  stage: string,
  step: string,
  count = TAIL_LINES,
): Promise<string[]> {
  const tail: string[] = [];
  let after = 0;
  for (;;) {
    const page = await logs.read(buildId, after, PAGE);
    if (page.length === 0) return tail;
    for (const line of page) {
      if (line.stage !== stage || line.step !== step) continue;
      tail.push(line.text.length > LINE_CHARS ? `${line.text.slice(0, LINE_CHARS)}…` : line.text);
      if (tail.length > count) tail.shift();
    }
    after = page[page.length - 1]!.seq;
  }
}

/** Control characters (ANSI colours of a log line, say) are dropped; tabs stay. */
export function printable(text: string): string {
  // eslint-disable-next-line no-control-regex -- these are exactly what is removed
  return text.replace(/\u001b\[[0-9;?]*[A-Za-z]/g, '').replace(/[\u0000-\u0008\u000b-\u001f\u007f]/g, '');
}
