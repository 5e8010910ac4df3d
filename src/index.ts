export type * from './pipeline/types.js';
export type * from './executors/types.js';
export type * from './orchestrator/types.js';
