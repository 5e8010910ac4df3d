/**
 * Which containers the kernel OOM killer hit, read from the kernel log (`/dev/kmsg`), as
 * cAdvisor's oomparser does for the kubelet. Podman 4.3 on this host's hybrid cgroups (v1
 * memory controller, runc) reports `State.OOMKilled: false` for a container the memory cgroup
 * killed, and the container's cgroup (whose `memory.oom_control` counts the kill) is gone by
 * the time its exit is seen; the kernel's `oom-kill:… task_memcg=/…/libpod-<id>` record stays.
 *
 * The device is read non-blocking from where the last read stopped, so each look costs only the
 * records written since. Where /dev/kmsg cannot be read, only Podman's own flag counts.
 */
import { constants } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';

export class OomLog {
  private readonly killed = new Set<string>();
  private handle: Promise<FileHandle | undefined>;
  private reading: Promise<void> = Promise.resolve();

  constructor(path = '/dev/kmsg') {
    this.handle = open(path, constants.O_RDONLY | constants.O_NONBLOCK).catch(() => undefined);
  }

  /** Whether the OOM killer killed a process of this container (full Podman ID). */
  async wasKilled(containerId: string): Promise<boolean> {
    this.reading = this.reading.then(() => this.readNew());
    await this.reading;
    return this.killed.has(containerId);
  }

  private async readNew(): Promise<void> {
    const handle = await this.handle;
    if (!handle) return;
    const buffer = Buffer.alloc(8192);
    for (;;) {
      let bytes: number;
      try {
        ({ bytesRead: bytes } = await handle.read(buffer, 0, buffer.length, null));
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        if (code === 'EPIPE') continue; // records overwritten before we read them: go on
        return; // EAGAIN: nothing new
      }
      if (bytes === 0) return;
      const record = buffer.toString('utf8', 0, bytes);
      if (!record.includes('oom-kill:')) continue;
      const match = /task_memcg=[^,\n]*libpod-([0-9a-f]{64})/.exec(record);
      if (match?.[1]) this.killed.add(match[1]);
    }
  }

  async close(): Promise<void> {
    await this.reading;
    const handle = await this.handle;
    this.handle = Promise.resolve(undefined);
    await handle?.close();
  }
}
