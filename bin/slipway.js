#!/usr/bin/env node
// Node 22.1+ can cache compiled modules on disk: start-up is most of a short `slipway run`.
import module from 'node:module';
if (typeof module.enableCompileCache === 'function') module.enableCompileCache();
await import('../dist/cli/bin.js');
