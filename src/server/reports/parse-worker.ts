/**
 * Worker thread entry of `ReportParser`: parses each JUnit file it is sent and answers with
 * the bounded result. A 50 MB report takes seconds of CPU; here it holds this thread, not the
 * server's event loop.
 */
import { parentPort } from 'node:worker_threads';
import { parseJUnit, type JUnitLimits } from './junit.js';

/** One parse: an id to match the answer with, the file's bytes (transferred), the limits. */
export interface ParseRequest {
  id: number;
  bytes: Uint8Array;
  limits: JUnitLimits;
}

/** Sent once loaded: the time bound counts from here, not from start-up. */
export const READY = 'ready';

parentPort?.postMessage(READY);

parentPort?.on('message', (request: ParseRequest) => {
  const text = new TextDecoder('utf-8').decode(request.bytes);
  parentPort?.postMessage({ id: request.id, report: parseJUnit(text, request.limits) });
});
