import type { BuildContext } from '../types.js';

/** The build every compiler test compiles for. */
export const TEST_CONTEXT: BuildContext = {
  buildId: 'b-42',
  buildNumber: 42,
  project: 'acme/rocket',
  branch: 'main',
  commit: '4b825dc642cb6eb9a060e54bf8d69288fbee4904',
  event: 'push',
  workspace: '/workspace',
};
