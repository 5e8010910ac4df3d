/**
 * Worker thread entry of `CompilePool`: compiles each pipeline it is sent and answers with the
 * result. Runs in its own thread so that a file that is slow to compile holds this thread, not
 * the server's event loop; the pool terminates it when it takes too long.
 */
import { parentPort } from 'node:worker_threads';
import { compilePipeline, type CompileInput } from './compile.js';

/** One compile request: an id to match the answer with, and the compiler's input. */
export interface CompileRequest {
  id: number;
  input: CompileInput;
}

/** Sent once the compiler is loaded: the pool's time bound counts from here, not from start-up. */
export const READY = 'ready';

parentPort?.postMessage(READY);

parentPort?.on('message', (request: CompileRequest) => {
  // compilePipeline reports bad files as errors; a throw here is a compiler bug, and the pool
  // turns the worker's 'error' event into a failed compile.
  parentPort?.postMessage({ id: request.id, result: compilePipeline(request.input) });
});
