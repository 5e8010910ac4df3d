export type * from './client.js';
export { createDockerClient } from './client.js';
export * from './engine.js';
export * from './docker-executor.js';
