import type { TokenRole } from '../../store/index.js';

/** Roles in increasing power: each one may do everything the ones before it may. */
export const ROLES = ['viewer', 'member', 'admin'] as const satisfies readonly TokenRole[];

const RANK: Record<TokenRole, number> = { viewer: 0, member: 1, admin: 2 };

/** Whether a token of role `actual` may use a route that needs at least `needed`. */
export function hasRole(actual: TokenRole, needed: TokenRole): boolean {
  return RANK[actual] >= RANK[needed];
}
