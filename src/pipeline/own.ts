/**
 * `obj[key] = value` as an own property, also for keys such as `__proto__`: YAML allows them
 * and env names match them, and a plain assignment would change the object's prototype instead.
 */
export function setOwn(obj: Record<string, unknown>, key: string, value: unknown): void {
  Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true });
}
