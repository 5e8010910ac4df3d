/**
 * The engine's health while steps are followed: an engine that died may leave the connections
 * of `wait` and `logs` open (Podman's conmon keeps them), so nobody would ever hear of it.
 */
import type { DockerClient } from './client.js';
import type { EngineInfo } from './engine.js';
import { errorText, withTimeout } from './util.js';

/** Failed health pings in a row before followed steps end with `error`: one lost answer is not a dead engine. */
export const ENGINE_CHECK_MISSES = 3;

export class EngineWatch {
  private readonly watchers = new Set<(reason: string) => void>();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly client: DockerClient,
    private readonly checkMs: number,
    private readonly timeoutMs: number,
    private readonly engine?: EngineInfo,
  ) {}

  /**
   * Calls `onLost` when the engine stops answering pings ({@link ENGINE_CHECK_MISSES} in a row,
   * each bounded by the timeout). One timer serves every watcher and runs only while there is
   * one; a tick while a ping is still out is skipped, not counted. Returns an unsubscribe.
   */
  watch(onLost: (reason: string) => void): () => void {
    this.watchers.add(onLost);
    if (!this.timer) {
      let failures = 0;
      let busy = false;
      this.timer = setInterval(() => {
        if (busy) return;
        busy = true;
        void withTimeout(this.client.ping(), this.timeoutMs, `no answer to ping within ${this.timeoutMs} ms`)
          .then(
            () => {
              failures = 0;
            },
            (error: unknown) => {
              failures += 1;
              if (failures < ENGINE_CHECK_MISSES) return;
              failures = 0;
              const where = this.engine ? ` at ${this.engine.address}` : '';
              const reason = `the engine${where} stopped answering (${ENGINE_CHECK_MISSES} pings in a row failed; last: ${errorText(error)})`;
              for (const watcher of [...this.watchers]) watcher(reason);
            },
          )
          .finally(() => {
            busy = false;
          });
      }, this.checkMs);
      this.timer.unref();
    }
    return () => {
      this.watchers.delete(onLost);
      if (this.watchers.size === 0 && this.timer) {
        clearInterval(this.timer);
        this.timer = undefined;
      }
    };
  }
}
