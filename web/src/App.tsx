import type { ReactNode } from 'react';
import { useSignIn } from './api/session';
import { Shell } from './components/Shell';
import { match, useLocation } from './lib/router';
import { BuildPage } from './pages/build/BuildPage';
import { BuildsPage } from './pages/builds/BuildsPage';
import { NotFound } from './pages/NotFound';
import { ProjectFormPage } from './pages/projects/ProjectFormPage';
import { ProjectsPage } from './pages/projects/ProjectsPage';
import { QueuePage } from './pages/QueuePage';
import { SignInPage } from './pages/SignInPage';
import { TokensPage } from './pages/TokensPage';

type Route = [pattern: string, render: (params: Record<string, string>) => ReactNode];

const slug = (p: Record<string, string>) => `${p.owner}/${p.name}`;

/** Every page, by path. The server answers unknown paths with index.html, so these are real URLs. */
const ROUTES: Route[] = [
  ['/', () => <ProjectsPage />],
  ['/projects', () => <ProjectsPage />],
  ['/projects/new', () => <ProjectFormPage />],
  ['/projects/:owner/:name', (p) => <BuildsPage key={slug(p)} slug={slug(p)} />],
  ['/projects/:owner/:name/settings', (p) => <ProjectFormPage key={slug(p)} slug={slug(p)} />],
  [
    '/projects/:owner/:name/builds/:number',
    (p) => <BuildPage key={`${slug(p)}#${p.number}`} slug={slug(p)} number={Number(p.number)} />,
  ],
  ['/queue', () => <QueuePage />],
  ['/tokens', () => <TokensPage />],
];

export function App() {
  const { session } = useSignIn();
  const { pathname } = useLocation();
  if (session === null) return <SignInPage />;
  for (const [pattern, render] of ROUTES) {
    const params = match(pattern, pathname);
    if (params !== null) return <Shell>{render(params)}</Shell>;
  }
  return (
    <Shell>
      <NotFound />
    </Shell>
  );
}
