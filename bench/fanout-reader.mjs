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
const NEWLINES = Buffer.from('\n\n');
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

const DATA = Buffer.from('data: ');
const RUN = Buffer.from('{"seq":');
const STEP = Buffer.from(`"step":${JSON.stringify(step)},`);
const TIME = Buffer.from('"time":');
const DT = Buffer.from('"dt":[');

/** The decimal integer at `at` in `bytes` (ASCII digits), and where it ends. */
function intAt(bytes, at) {
  let value = 0;
  let i = at;
  for (let c = bytes[i]; c >= 0x30 && c <= 0x39; c = bytes[++i]) value = value * 10 + (c - 0x30);
  intEnd = i;
  return value;
}
let intEnd = 0;

/**
 * One event (the bytes between blank lines). A `lines` event is scanned, not parsed: JSON
 * escapes every quote inside a string, so `{"seq":`, `"time":` and `"dt":[` occur only as
 * the keys of a run, and a run's line count is the length of its `dt` list. Every line's seq
 * is still checked and every line of `step` timed, without decoding a single text.
 */
function onEvent(reader, frame, now) {
  if (frame[0] === 0x3a) return; // ':' comment (heartbeat)
  const dataAt = frame.indexOf(DATA);
  const head = frame.toString('latin1', 0, dataAt < 0 ? frame.length : dataAt);
  const event = /(?:^|\n)event: (\w+)/.exec(head)?.[1] ?? 'message';
  if (event === 'end') reader.ended = true;
  else if (event === 'lag') reader.lags += 1;
  else if (event === 'lines' && dataAt >= 0) {
    for (let at = frame.indexOf(RUN, dataAt); at >= 0; at = frame.indexOf(RUN, intEnd)) {
      const seq = intAt(frame, at + RUN.length);
      const stepAt = frame.indexOf(STEP, intEnd);
      const timeAt = frame.indexOf(TIME, intEnd);
      const ours = stepAt >= 0 && stepAt < timeAt;
      let time = intAt(frame, timeAt + TIME.length);
      let i = frame.indexOf(DT, intEnd) + DT.length;
      let count = 0;
      for (;;) {
        const negative = frame[i] === 0x2d;
        const dt = intAt(frame, negative ? i + 1 : i);
        time += negative ? -dt : dt;
        seen(reader, seq + count);
        count += 1;
        if (ours) {
          reader.lines += 1;
          record(now, time);
        }
        i = intEnd + 1;
        if (frame[intEnd] !== 0x2c) break; // ',' another dt; else ']'
      }
    }
  } else if (event === 'line') {
    const text = frame.toString('utf8');
    const data = text.indexOf('data: ');
    const seq = Number(/(?:^|\n)id: (\d+)/.exec(head)[1]);
    seen(reader, seq);
    if (!text.includes(`"step":"${step}"`, data)) return;
    reader.lines += 1;
    const at = text.indexOf('"time":"', data) + 8;
    const timeText = text.slice(at, at + 24);
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
      // Bytes, never decoded: the parts of an event not yet complete wait in `parts`.
      let parts = [];
      let lastByte = 0;
      res.on('data', (chunk) => {
        const now = Date.now();
        let start = 0;
        // The blank line after an event may straddle two chunks.
        if (parts.length > 0 && lastByte === 0x0a && chunk[0] === 0x0a) {
          const frame = Buffer.concat(parts);
          onEvent(reader, frame.subarray(0, frame.length - 1), now);
          parts = [];
          start = 1;
        }
        let cut;
        while ((cut = chunk.indexOf(NEWLINES, start)) >= 0) {
          parts.push(chunk.subarray(start, cut));
          onEvent(reader, parts.length === 1 ? parts[0] : Buffer.concat(parts), now);
          parts = [];
          start = cut + 2;
        }
        if (start < chunk.length) parts.push(chunk.subarray(start));
        lastByte = chunk[chunk.length - 1];
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
