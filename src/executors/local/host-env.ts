/**
 * Host variables a step inherits by default: what a shell needs to find programs and behave
 * (PATH, HOME, locale, temp dir), and nothing else, so the server's own credentials
 * (database URL, cloud keys) do not leak into every build.
 */
export const DEFAULT_INHERITED_ENV: readonly string[] = [
  'PATH',
  'HOME',
  'USER',
  'LOGNAME',
  'SHELL',
  'LANG',
  'LANGUAGE',
  'LC_*',
  'TZ',
  'TMPDIR',
  'TERM',
];

/** Which host variables to pass on: all of them, or names (a trailing `*` matches a prefix). */
export type InheritEnv = 'all' | readonly string[];

/** Host env first (filtered), then `extra` (e.g. PWD), then the step's own env, which wins. */
export function stepEnvironment(
  inherit: InheritEnv,
  extra: Record<string, string>,
  own: Record<string, string>,
  host: NodeJS.ProcessEnv = process.env,
): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [name, value] of Object.entries(host)) {
    if (value !== undefined && (inherit === 'all' || inherit.some((p) => matches(p, name))))
      env[name] = value;
  }
  return Object.assign(env, extra, own);
}

function matches(pattern: string, name: string): boolean {
  return pattern.endsWith('*') ? name.startsWith(pattern.slice(0, -1)) : pattern === name;
}
