/**
 * The request loop of Slipway's small helper processes (`node -e`, CommonJS): the local
 * executor's watcher and the server's git helper. Each reads one JSON request a line from its
 * stdin, written by the Slipway process that started it (never by a build), and hands it to
 * `handle`, a statement of the helper's source in which `req` is the request. A line that is
 * not JSON is skipped.
 */
export function requestLoopSource(handle: string): string {
  return String.raw`let input = '';
process.stdin.setEncoding('utf8');
process.stdin.on('error', () => {});
process.stdin.on('data', (d) => {
  input += d;
  let end;
  while ((end = input.indexOf('\n')) >= 0) {
    const line = input.slice(0, end);
    input = input.slice(end + 1);
    let req;
    try { req = JSON.parse(line); } catch { continue; }
    ${handle}
  }
});`;
}
