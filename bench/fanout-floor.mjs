// The floor of the fan-out benchmark (bench/server.mjs, case c): a minimal HTTP server, run as
// its own process, that serves the same SSE readers (bench/fanout-reader.mjs) the same lines
// in the very same `lines` frames and batch sizes as Slipway, and nothing else: no step, no
// splitting, no masking, no store, no feed. Each batch is encoded once (the contract's own
// toLogBatch, from dist/) and its bytes written to every socket without waiting for any
// (as Slipway writes a live batch). Every line is stamped when the burst starts, so a line's
// delay is the time to encode and push the burst up to it: what Slipway's delay cannot go
// below on this machine with this reader.
//
//   node bench/fanout-floor.mjs <lines> <batch lines>
//
// Prints `listening <port>`; GET /logs follows (any query), POST /go starts the burst.
import { createServer } from 'node:http';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ROOT } from './lib.mjs';

const { toLogBatch } = await import(pathToFileURL(join(ROOT, 'dist', 'contract', 'log-stream.js')).href);
const lines = Number(process.argv[2] ?? 100_000);
const batchLines = Number(process.argv[3] ?? 2000);
const readers = new Set();
const END = `event: end\ndata: {}\n\n`;

async function burst() {
  const time = Date.now();
  for (let first = 1; first <= lines; first += batchLines) {
    const batch = [];
    for (let seq = first; seq < first + batchLines && seq <= lines; seq++)
      batch.push({ seq, stage: 'default', step: 'out', stream: 'stdout', n: seq, time, text: String(seq) });
    const frame = Buffer.from(
      `id: ${batch.at(-1).seq}\nevent: lines\ndata: ${JSON.stringify(toLogBatch(batch))}\n\n`,
      'utf8',
    );
    for (const res of readers) res.write(frame);
    // One batch per turn of the event loop, as Slipway's writer hands them out.
    await new Promise((resolve) => setImmediate(resolve));
  }
  for (const res of readers) res.end(END);
}

const server = createServer((req, res) => {
  if (req.method === 'POST' && req.url === '/go') {
    res.end('ok');
    void burst();
    return;
  }
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
  res.flushHeaders();
  readers.add(res);
  res.on('close', () => readers.delete(res));
});
server.listen(0, '127.0.0.1', () => console.log(`listening ${server.address().port}`));
