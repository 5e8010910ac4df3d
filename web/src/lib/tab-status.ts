import { useEffect } from 'react';
import type { Status } from '../api/types';
import { ICONS } from '../components/Status';

/** The favicon's colour of each status (the light theme's status colours). */
export const FAVICON_COLOURS: Record<Status, string> = {
  queued: '#5b6470',
  pending: '#1f5fbf',
  running: '#1f5fbf',
  waiting: '#9a6700',
  success: '#1a7f37',
  failure: '#b42318',
  error: '#b42318',
  cancelled: '#5b6470',
  skipped: '#5b6470',
  lost: '#8250df',
};

/** `● running — acme/web #42`: what a build's tab says (`useTitle` adds the app's name). */
export function buildTabTitle(status: Status, slug: string, number: number): string {
  return `${ICONS[status]} ${status} — ${slug} #${number}`;
}

/** A 16×16 SVG favicon: a disc of the status's colour (a ring while it runs). */
export function statusFavicon(status: Status): string {
  const colour = FAVICON_COLOURS[status];
  const active = status === 'running' || status === 'pending';
  const shape = active
    ? `<circle cx="8" cy="8" r="6" fill="none" stroke="${colour}" stroke-width="3"/><circle cx="8" cy="8" r="2.5" fill="${colour}"/>`
    : `<circle cx="8" cy="8" r="7" fill="${colour}"/>`;
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16">${shape}</svg>`;
  return `data:image/svg+xml,${encodeURIComponent(svg)}`;
}

/**
 * Shows `status` in the tab's favicon while the page is shown (none: the app's own icon), so a
 * build left running in a background tab can be watched from the tab strip. The app's icon
 * comes back when the page goes.
 */
export function useStatusFavicon(status: Status | undefined): void {
  useEffect(() => {
    if (status === undefined) return;
    const link = document.querySelector<HTMLLinkElement>('link[rel~="icon"]');
    if (link === null) return;
    const original = link.getAttribute('href');
    link.setAttribute('href', statusFavicon(status));
    link.dataset.status = status;
    return () => {
      if (original !== null) link.setAttribute('href', original);
      delete link.dataset.status;
    };
  }, [status]);
}
