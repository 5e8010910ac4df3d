/**
 * The calls of a project's status badge switch (`GET|PUT /projects/{owner}/{name}/badge`),
 * apart from the schemas so that the web UI takes them without TypeBox. The badge itself is
 * served outside the API, at `path`.
 */
import { projectPath, type Endpoint } from './api.js';

export interface BadgeSettings {
  /** The badge answers without a token. */
  public: boolean;
  /** Where the badge is served: `/badges/{owner}/{name}.svg`. */
  path: string;
}

const badgePath = (slug: string) => `${projectPath(slug)}/badge`;

export const badgeEndpoints = {
  get: (slug: string): Endpoint<BadgeSettings> => ({ method: 'GET', path: badgePath(slug) }),
  set: (slug: string, isPublic: boolean): Endpoint<BadgeSettings> => ({
    method: 'PUT',
    path: badgePath(slug),
    body: { public: isPublic },
  }),
} as const;

/** The Markdown that shows a branch's badge, linked to the project's builds, for a README. */
export function badgeMarkdown(origin: string, slug: string, branch = 'main'): string {
  const query = branch === 'main' ? '' : `?branch=${encodeURIComponent(branch)}`;
  return `[![build](${origin}/badges/${slug}.svg${query})](${origin}/projects/${slug})`;
}
