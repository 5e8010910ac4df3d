import type { Migration } from 'kysely';
import type { DialectName } from '../db.js';
import { initial } from './0001_initial.js';
import { control } from './0002_control.js';
import { secretsArtifacts } from './0003_secrets_artifacts.js';
import { webhooks } from './0004_webhooks.js';
import { installation } from './0005_installation.js';
import { approvalSlots } from './0006_approval_slots.js';
import { sessions } from './0007_sessions.js';
import { stepPolicy } from './0008_step_policy.js';
import { logLimit } from './0009_log_limit.js';
import { resume } from './0010_resume.js';
import { attemptExit } from './0011_attempt_exit.js';
import { badges } from './0012_badges.js';
import { email } from './0013_email.js';
import { schedules } from './0014_schedules.js';
import { commitStatus } from './0015_commit_status.js';
import { oidcUsers } from './0016_oidc_users.js';
import { commitAuthor } from './0017_commit_author.js';
import { checkRuns } from './0018_check_runs.js';
import { caches } from './0019_caches.js';
import { rerunFailed } from './0020_rerun_failed.js';
import { testReports } from './0021_test_reports.js';

/**
 * Every migration, by name; Kysely runs them in name order. Listed here rather than found
 * by reading a directory, so that they work from `dist/`, a bundle or a single-file build.
 * Append only: a released migration is never edited, a change is a new one.
 */
export function migrations(dialect: DialectName): Record<string, Migration> {
  return {
    '0001_initial': initial(dialect),
    '0002_control': control(dialect),
    '0003_secrets_artifacts': secretsArtifacts(dialect),
    '0004_webhooks': webhooks(dialect),
    '0005_installation': installation(),
    '0006_approval_slots': approvalSlots(dialect),
    '0007_sessions': sessions(dialect),
    '0008_step_policy': stepPolicy(),
    '0009_log_limit': logLimit(),
    '0010_resume': resume(),
    '0011_attempt_exit': attemptExit(),
    '0012_badges': badges(dialect),
    '0013_email': email(dialect),
    '0014_schedules': schedules(dialect),
    '0015_commit_status': commitStatus(dialect),
    '0016_oidc_users': oidcUsers(dialect),
    '0017_commit_author': commitAuthor(),
    '0018_check_runs': checkRuns(dialect),
    '0019_caches': caches(dialect),
    '0020_rerun_failed': rerunFailed(dialect),
    '0021_test_reports': testReports(dialect),
  };
}
