/**
 * Worker thread entry of `ReportParser`: parses each JUnit file it is sent and answers with
 * the bounded result. A 50 MB report takes seconds of CPU; here it holds this thread, not the
 * server's event loop.
 */
import { parentPort } from 'node:worker_threads';
import { decodeParts, parseJUnit, type JUnitLimits, type ParsedReport } from './junit.js';

/** One parse: an id to match the answer with, the file's bytes in pieces (transferred), the limits. */
export interface ParseRequest {
  id: number;
  bytes: readonly Uint8Array[];
  limits: JUnitLimits;
}

/**
 * The answers to a request: its kept cases in slices of `CASES_PER_MESSAGE`, then the report
 * without them. The server's thread takes each message in a task of its own: 10,000 cases in
 * one message were one stall of tens of ms (their copy out of the message, on a busy machine).
 */
export type ParseAnswer = { id: number; cases: ParsedReport['cases'] } | { id: number; report: ParsedReport };

export const CASES_PER_MESSAGE = 500;

/** Sent once loaded: the time bound counts from here, not from start-up. */
export const READY = 'ready';

parentPort?.postMessage(READY);

parentPort?.on('message', (request: ParseRequest) => {
  const report = parseJUnit(decodeParts(request.bytes), request.limits);
  const answer = (message: ParseAnswer) => parentPort?.postMessage(message);
  for (let at = 0; at < report.cases.length; at += CASES_PER_MESSAGE)
    answer({ id: request.id, cases: report.cases.slice(at, at + CASES_PER_MESSAGE) });
  answer({ id: request.id, report: { ...report, cases: [] } });
});
