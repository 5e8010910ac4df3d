import { fileURLToPath } from 'node:url';
import { ESLint, type Linter } from 'eslint';
import tseslint from 'typescript-eslint';
import { describe, expect, it } from 'vitest';

/**
 * The store is the only place that speaks SQL, and the repository's lint config keeps it so:
 * these read the real `eslint.config.js` for a file outside and inside `src/store`, then lint
 * a query written outside the store with the rules it found.
 */
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const RULES = ['no-restricted-syntax', '@typescript-eslint/no-restricted-imports'] as const;

const OUTSIDE = `
import type { Kysely } from 'kysely';
import { sql } from 'kysely';
import type { Database } from '../store/index.js';

export async function peek(db: Kysely<Database>) {
  await sql\`select 1\`.execute(db);
  await db.transaction().execute(async (tx) => tx.deleteFrom('builds').execute());
  return db
    .selectFrom('projects')
    .selectAll()
    .execute();
}
`;

const PASSING_ALONG = `
import type { Kysely } from 'kysely';
import { getProject, type Database } from '../store/index.js';

export const project = (db: Kysely<Database>, id: number) => getProject(db, id);
`;

async function rulesFor(path: string): Promise<Partial<Linter.RulesRecord>> {
  const config = (await new ESLint({ cwd: ROOT }).calculateConfigForFile(path)) as Linter.Config;
  return Object.fromEntries(RULES.map((rule) => [rule, config.rules?.[rule]]));
}

function severity(setting: Linter.RuleEntry | undefined): unknown {
  return Array.isArray(setting) ? setting[0] : setting;
}

async function lint(code: string, rules: Partial<Linter.RulesRecord>): Promise<Linter.LintMessage[]> {
  // The typed rules need a program; these two do not, so the probe needs no file on disk.
  const eslint = new ESLint({
    cwd: ROOT,
    overrideConfigFile: true,
    overrideConfig: [
      {
        files: ['**/*.ts'],
        languageOptions: { parser: tseslint.parser },
        plugins: { '@typescript-eslint': tseslint.plugin },
        rules,
      },
    ],
  });
  const [result] = await eslint.lintText(code, { filePath: 'src/server/probe.ts' });
  return result!.messages;
}

describe('only src/store speaks SQL (eslint.config.js)', () => {
  it('refuses Kysely queries, transactions and sql`` outside src/store, and lets type imports pass', async () => {
    const rules = await rulesFor('src/server/scheduler/probe.ts');
    for (const rule of RULES) expect(severity(rules[rule])).toBe(2);
    const messages = await lint(OUTSIDE, rules);
    expect(messages.map((m) => [m.line, m.ruleId])).toEqual([
      [3, '@typescript-eslint/no-restricted-imports'],
      [8, 'no-restricted-syntax'],
      [8, 'no-restricted-syntax'],
      [10, 'no-restricted-syntax'],
    ]);
    expect(messages[0]!.message).toMatch(/SQL belongs in src\/store/);
    expect(await lint(PASSING_ALONG, rules)).toEqual([]);
  });

  it('applies neither rule inside src/store', async () => {
    const rules = await rulesFor('src/store/probe.ts');
    for (const rule of RULES) expect(rules[rule]).toBeUndefined();
  });
});
