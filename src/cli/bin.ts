import { main } from './main.js';

const code = await main(process.argv.slice(2));
process.exitCode = code;
// Everything a command starts is stopped before main() resolves; if some handle still keeps
// the event loop alive, do not let it hang the command (the output is already written).
setTimeout(() => process.exit(code), 2000).unref();
