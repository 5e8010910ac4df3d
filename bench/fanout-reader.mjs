// Worker thread of the fan-out benchmark (bench/server.mjs, case c): follows one build's live
// log with `count` SSE connections and records, per line of step `step`, the delay from the
// line's time to its arrival here. The readers run in several threads so that the benchmark
// measures the server rather than its own parsing.
//
// It reads both formats: `lines` events (a LogBatch per event, the default) and `line` events
// (one LogLine each, older servers or `format=line`). A stream ended with `lag` (or closed
// without `end`) is reopened with Last-Event-ID, as the CLI and the web UI do.
import { Agent, request as httpRequest } from 'node:http';
import { parentPort, workerData } from 'node:worker_threads';

const { url, token, count, step, histogramSize } = workerData;
const histogram = new Uint32Array(histogramSize);
const agent = new Agent({ keepAlive: false, maxSockets: Infinity });
const readers = Array.from({ length: count }, () => ({
  lines: 0,
  lastSeq: 0,
  gaps: 0,
  duplicates: 0,
  lags: 0,
  reconnects: 0,
  ended: false,
}));
let connected = 0;
let lastTimeText = '';
let lastTime = 0;

function record(now, time) {
  histogram[Math.min(histogramSize - 1, Math.max(0, now - time))] += 1;
}

function seen(reader, seq) {
  if (seq <= reader.lastSeq) reader.duplicates += 1;
  else if (seq !== reader.lastSeq + 1) reader.gaps += 1;
  reader.lastSeq = Math.max(reader.lastSeq, seq);
}

/** One event (the text between blank lines). Receive-side work is kept small. */
function onEvent(reader, frame, now) {
  if (frame.startsWith(':')) return;
  const dataAt = frame.indexOf('\ndata: ');
  const head = dataAt < 0 ? frame : frame.slice(0, dataAt);
  const event = /(?:^|\n)event: (\w+)/.exec(head)?.[1] ?? 'message';
  if (event === 'end') reader.ended = true;
  else if (event === 'lag') reader.lags += 1;
  else if (event === 'lines') {
    const batch = JSON.parse(frame.slice(dataAt + 7));
    for (const run of batch.runs) {
      let time = run.time;
      for (let i = 0; i < run.text.length; i++) {
        seen(reader, run.seq + i);
        time += run.dt[i];
        if (run.step !== step) continue;
        reader.lines += 1;
        record(now, time);
      }
    }
  } else if (event === 'line') {
    const seq = Number(/(?:^|\n)id: (\d+)/.exec(head)[1]);
    seen(reader, seq);
    if (!frame.includes(`"step":"${step}"`, dataAt)) return;
    reader.lines += 1;
    const at = frame.indexOf('"time":"', dataAt) + 8;
    const timeText = frame.slice(at, at + 24);
    if (timeText !== lastTimeText) {
      lastTimeText = timeText;
      lastTime = Date.parse(timeText);
    }
    record(now, lastTime);
  }
}

function follow(reader, first) {
  return new Promise((resolve, reject) => {
    const headers = { authorization: `Bearer ${token}`, accept: 'text/event-stream' };
    if (reader.lastSeq > 0) headers['last-event-id'] = String(reader.lastSeq);
    const req = httpRequest(url, { agent, headers }, (res) => {
      if (res.statusCode !== 200) return reject(new Error(`SSE answered ${res.statusCode}`));
      if (first && ++connected === count) parentPort.postMessage({ type: 'connected' });
      res.setEncoding('utf8');
      let buffer = '';
      res.on('data', (chunk) => {
        const now = Date.now();
        buffer += chunk;
        let start = 0;
        let cut;
        while ((cut = buffer.indexOf('\n\n', start)) >= 0) {
          onEvent(reader, buffer.slice(start, cut), now);
          start = cut + 2;
        }
        buffer = buffer.slice(start);
      });
      res.on('end', () => resolve(reader.ended));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

async function run(reader) {
  let first = true;
  while (!(await follow(reader, first))) {
    first = false;
    if (++reader.reconnects > 1000) throw new Error('a reader reconnected 1000 times');
  }
}

const done = await Promise.allSettled(readers.map(run));
agent.destroy();
const failed = done.find((d) => d.status === 'rejected');
parentPort.postMessage({
  type: 'done',
  error: failed ? String(failed.reason?.stack ?? failed.reason) : undefined,
  readers,
  histogram,
});
