import { describe, expect, it } from 'vitest';
import { displayName, groupsOf, roleFor, safeReturnPath, verifiedEmail } from './settings.js';
import type { RoleMapping } from './settings.js';

const none = { groups: [], emails: [] };

describe('roleFor', () => {
  const mapping: RoleMapping = {
    admin: { groups: ['ci-admins'], emails: ['Boss@Example.com'] },
    member: { groups: ['developers'], emails: ['@contractors.example'] },
    viewer: { groups: ['*'], emails: [] },
  };

  it('grants the highest role any group or e-mail rule gives', () => {
    expect(roleFor(mapping, { groups: ['developers', 'ci-admins'], email: null })).toBe('admin');
    expect(roleFor(mapping, { groups: ['developers'], email: 'boss@example.COM' })).toBe('admin');
    expect(roleFor(mapping, { groups: [], email: 'ann@contractors.example' })).toBe('member');
    expect(roleFor(mapping, { groups: [], email: 'ann@notcontractors.example' })).toBe('viewer');
  });

  it('refuses a person no rule names, and matches a domain only as a whole', () => {
    const strict: RoleMapping = {
      admin: none,
      member: { groups: ['devs'], emails: ['@a.example'] },
      viewer: none,
    };
    expect(roleFor(strict, { groups: ['Devs', 'devs-old'], email: 'x@ba.example' })).toBeUndefined();
    expect(roleFor(strict, { groups: [], email: null })).toBeUndefined();
  });
});

describe('claims', () => {
  it('reads groups from an array, a single string, or a dotted path into objects', () => {
    expect(groupsOf({ groups: ['a', 3, 'b'] }, 'groups')).toEqual(['a', 'b']);
    expect(groupsOf({ groups: 'a' }, 'groups')).toEqual(['a']);
    expect(groupsOf({ realm_access: { roles: ['r'] } }, 'realm_access.roles')).toEqual(['r']);
    expect(groupsOf({}, 'groups')).toEqual([]);
  });

  it('ignores an e-mail the IdP marks unverified', () => {
    expect(verifiedEmail({ email: 'a@b.example', email_verified: false })).toBeNull();
    expect(verifiedEmail({ email: 'a@b.example', email_verified: true })).toBe('a@b.example');
    expect(verifiedEmail({ email: 'a@b.example' })).toBe('a@b.example');
  });

  it('names a person as a git author would, or with what the IdP gave', () => {
    expect(displayName({ sub: 's', name: 'Ann Lee' }, 'ann@x.example')).toBe('Ann Lee <ann@x.example>');
    expect(displayName({ sub: 's', preferred_username: 'ann' }, null)).toBe('ann');
    expect(displayName({ sub: 's' }, 'ann@x.example')).toBe('ann@x.example');
    expect(displayName({ sub: 's-1' }, null)).toBe('s-1');
  });
});

describe('safeReturnPath', () => {
  it('keeps a local path and turns anything that could leave the site into /', () => {
    expect(safeReturnPath('/projects/acme/web?branch=main')).toBe('/projects/acme/web?branch=main');
    for (const bad of [
      '//evil.example',
      '/\\evil.example',
      'https://evil.example',
      'x',
      '',
      undefined,
      '/a\nb',
    ]) {
      expect(safeReturnPath(bad)).toBe('/');
    }
  });
});
