import type { ReactNode } from 'react';
import { isAdmin, useSession } from '../api/session';
import { Link, navigate, useLocation } from '../lib/router';
import { Logo } from './Logo';

function NavLink({ to, children }: { to: string; children: ReactNode }) {
  const { pathname } = useLocation();
  const current = to === '/' ? pathname === '/' || pathname.startsWith('/projects') : pathname.startsWith(to);
  return (
    <Link to={to} aria-current={current ? 'page' : undefined}>
      {children}
    </Link>
  );
}

/** Header with navigation and who is signed in; the page below it. */
export function Shell({ children }: { children: ReactNode }) {
  const { me, signOut } = useSession();
  return (
    <>
      <a className="skip-link" href="#main">
        Skip to content
      </a>
      <header className="top">
        <Link to="/" className="brand">
          <Logo /> Slipway
        </Link>
        <nav aria-label="Main">
          <NavLink to="/">Projects</NavLink>
          <NavLink to="/queue">Queue</NavLink>
          {isAdmin(me) && <NavLink to="/tokens">Tokens</NavLink>}
        </nav>
        <div className="whoami">
          <span
            title={me.signedInWith !== undefined ? `signed in with ${me.signedInWith}` : `token #${me.id}`}
          >
            {me.name} <span className="role">{me.role}</span>
          </span>
          <button
            type="button"
            className="link-button"
            onClick={() => {
              signOut();
              navigate('/');
            }}
          >
            Sign out
          </button>
        </div>
      </header>
      <main id="main" tabIndex={-1}>
        {children}
      </main>
    </>
  );
}
