/** Status badges: `/badges/{owner}/{name}.svg` and the per-project switch that makes one public. */
export { badgeRoutes, badgeSettingsRoutes, badgePath, DEFAULT_BADGE_BRANCH } from './routes.js';
export type { BadgeRouteDeps } from './routes.js';
export { isBadgePublic, setBadgePublic, branchStatus } from '../../store/badges.js';
export { badgeState, renderBadge, escapeXml, BADGE_COLOURS } from './svg.js';
export type { BadgeState, BadgeText } from './svg.js';
