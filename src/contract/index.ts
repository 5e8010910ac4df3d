/**
 * The shared words of Slipway — statuses, reason codes, roles, executor names, API error codes,
 * duration formatting, the API's JSON shapes and routes, the event-stream parser — in one
 * place that the server, the CLI and the web UI all import. It depends on nothing but
 * `@sinclair/typebox` (no Node or DOM APIs, nothing else of `src/`): a lint rule keeps it so.
 *
 * The web UI imports the modules it needs one by one (`contract/status.js`, …) so that its
 * bundle only takes TypeBox in when it uses a schema.
 */
export * from './status.js';
export * from './reasons.js';
export * from './roles.js';
export * from './executors.js';
export * from './project.js';
export * from './api-errors.js';
export * from './duration.js';
export * from './sse.js';
export * from './log-stream.js';
export * from './dto.js';
export * from './api.js';
