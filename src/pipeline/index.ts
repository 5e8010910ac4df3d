/**
 * The pipeline compiler: `.slipway.yml` → validated, backend-neutral `PipelinePlan`.
 * Everything other modules need from `src/pipeline` is exported here.
 */
export * from './types.js';
export {
  compilePipeline,
  validatePipeline,
  PLACEHOLDER_CONTEXT,
  type CompileInput,
  type CompileResult,
} from './compile.js';
export { formatPipelineError, type PipelineError, type PipelineErrorCode } from './errors.js';
export { pipelineJsonSchema, PipelineSchema, type PipelineFile } from './schema.js';
export { parseDuration, MAX_TIMEOUT_MS } from './duration.js';
export { builtinVariables, BUILTIN_NAMES, type BuiltinName } from './builtins.js';
export { describeMatrices, matrixEnvName } from './matrix.js';
