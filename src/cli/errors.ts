/** Exit codes of the `slipway` command. */
export const EXIT = { ok: 0, buildFailed: 1, usage: 2, cancelled: 130 } as const;

/** A mistake in how the command was called or in its input files: exit 2, message only. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}
