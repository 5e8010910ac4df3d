import type { Status } from '../../contract/index.js';

/** What a badge says of a branch. */
export type BadgeState = 'passing' | 'failing' | 'running' | 'cancelled' | 'error' | 'unknown';

/**
 * Background of each state's half. Darker than the usual shields.io palette on purpose: white
 * 11 px text on each of them has a contrast of at least 4.5:1 (WCAG AA), which #4c1 does not.
 */
export const BADGE_COLOURS: Record<BadgeState, string> = {
  passing: '#2e7d32',
  failing: '#c62828',
  running: '#1565c0',
  cancelled: '#616161',
  error: '#a84300',
  unknown: '#616161',
};
const LABEL_COLOUR = '#444';

/** The state a build's status shows as; undefined (no build) is `unknown`. */
export function badgeState(status: Status | undefined): BadgeState {
  switch (status) {
    case 'success':
      return 'passing';
    case 'failure':
      return 'failing';
    case 'error':
    case 'lost':
      return 'error';
    case 'cancelled':
      return 'cancelled';
    case 'queued':
    case 'pending':
    case 'running':
    case 'waiting':
      return 'running';
    default:
      return 'unknown';
  }
}

export interface BadgeText {
  label: string;
  state: BadgeState;
  /** Accessible name and tooltip (`acme/web main: passing`); may hold anything a user typed. */
  title: string;
}

/**
 * A flat two-part badge in the shields.io layout. Every text is escaped for XML and stripped of
 * the characters XML 1.0 forbids, so a hostile branch or slug cannot end the document early,
 * add elements or make it ill-formed.
 */
export function renderBadge({ label, state, title }: BadgeText): string {
  const left = textWidth(label) + 12;
  const right = textWidth(state) + 12;
  const width = left + right;
  const esc = {
    label: escapeXml(label),
    state: escapeXml(state),
    title: escapeXml(title),
  };
  const text = (x: number, value: string) =>
    `<text x="${x}" y="15" fill="#010101" fill-opacity=".3">${value}</text>` +
    `<text x="${x}" y="14">${value}</text>`;
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="20" role="img" aria-label="${esc.title}">` +
    `<title>${esc.title}</title>` +
    `<linearGradient id="s" x2="0" y2="100%"><stop offset="0" stop-color="#bbb" stop-opacity=".1"/><stop offset="1" stop-opacity=".1"/></linearGradient>` +
    `<clipPath id="r"><rect width="${width}" height="20" rx="3" fill="#fff"/></clipPath>` +
    `<g clip-path="url(#r)">` +
    `<rect width="${left}" height="20" fill="${LABEL_COLOUR}"/>` +
    `<rect x="${left}" width="${right}" height="20" fill="${BADGE_COLOURS[state]}"/>` +
    `<rect width="${width}" height="20" fill="url(#s)"/></g>` +
    `<g fill="#fff" text-anchor="middle" font-family="Verdana,Geneva,DejaVu Sans,sans-serif" font-size="11">` +
    text(left / 2, esc.label) +
    text(left + right / 2, esc.state) +
    `</g></svg>`
  );
}

/** `& < > " '` as entities; characters XML 1.0 does not allow (C0 controls, lone surrogates, U+FFFE/F) dropped. */
export function escapeXml(value: string): string {
  return value.replace(NOT_XML, '').replace(/[&<>"']/g, (c) => ENTITIES[c]!);
}

/* eslint-disable no-control-regex -- the characters XML 1.0 forbids are what it matches */
const NOT_XML =
  /[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;
/* eslint-enable no-control-regex */

const ENTITIES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&apos;',
};

/**
 * Width in pixels of `text` in 11 px Verdana, near enough to size the badge (the label and
 * states are short ASCII words; anything else takes a wide character's width).
 */
export function textWidth(text: string): number {
  let width = 0;
  for (const c of text) {
    if ("iljtfI.,:;|!' ".includes(c)) width += 3.9;
    else if ('mwMW'.includes(c)) width += 10.7;
    else if (/[A-Z]/.test(c)) width += 7.6;
    else width += 7;
  }
  return Math.round(width);
}
