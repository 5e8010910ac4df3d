/**
 * Polls `fn` until it returns something truthy, and returns that. Tests wait on what they
 * can observe (a row, a file, a status), never on a fixed delay: CI machines are busy, so the
 * bound is generous and only there to end a test that would otherwise hang.
 */
export async function until<T>(fn: () => Promise<T | undefined | false>, limitMs = 60_000): Promise<T> {
  const deadline = Date.now() + limitMs;
  for (;;) {
    const value = await fn();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`condition not met within ${limitMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}
