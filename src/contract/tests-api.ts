/**
 * The calls of test reports (shapes in `tests.ts`), and how a test is named to people. Apart
 * from the schemas so that the web UI takes these without TypeBox.
 */
import { projectPath, type Endpoint } from './api.js';
import type { BuildTests, ProjectTests, TestHistory } from './tests.js';

export const testEndpoints = {
  build: (buildId: number, limit?: number): Endpoint<BuildTests> => ({
    method: 'GET',
    path: `/builds/${buildId}/tests${limit === undefined ? '' : `?limit=${limit}`}`,
  }),
  project: (slug: string, query: { builds?: number; limit?: number } = {}): Endpoint<ProjectTests> => {
    const params = new URLSearchParams();
    if (query.builds !== undefined) params.set('builds', String(query.builds));
    if (query.limit !== undefined) params.set('limit', String(query.limit));
    const qs = params.toString();
    return { method: 'GET', path: `${projectPath(slug)}/tests${qs ? `?${qs}` : ''}` };
  },
  history: (slug: string, key: string, limit?: number): Endpoint<TestHistory> => ({
    method: 'GET',
    path: `${projectPath(slug)}/tests/${encodeURIComponent(key)}${limit === undefined ? '' : `?limit=${limit}`}`,
  }),
} as const;

/** `suite › classname › name`, leaving out a part that the next ones repeat (Jest, Vitest). */
export function testLabel(t: { suite: string; classname: string; name: string }): string {
  const parts = [t.suite, t.classname, t.name].filter((p) => p !== '');
  return parts
    .filter((p, i) => !parts.slice(i + 1).some((later) => later === p || later.startsWith(`${p} `)))
    .join(' › ');
}
