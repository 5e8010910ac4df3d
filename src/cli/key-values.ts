import { UsageError } from './errors.js';

const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Parses repeated `NAME=VALUE` options; `NAME` alone takes the value from `fallback` (the host env). */
export function parseKeyValues(
  option: string,
  entries: string[],
  fallback?: Record<string, string | undefined>,
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const entry of entries) {
    const eq = entry.indexOf('=');
    const name = eq === -1 ? entry : entry.slice(0, eq);
    if (!NAME.test(name)) {
      throw new UsageError(
        `${option} "${entry}": expected NAME=VALUE with NAME made of letters, digits and _`,
      );
    }
    if (eq !== -1) out[name] = entry.slice(eq + 1);
    else if (fallback?.[name] !== undefined) out[name] = fallback[name];
    else throw new UsageError(`${option} "${entry}": no value given and $${name} is not set`);
  }
  return out;
}
