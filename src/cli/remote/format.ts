import {
  formatDuration,
  type Approval,
  type Build,
  type BuildDetail,
  type Project,
  type Queue,
  type Status,
  type TokenInfo,
} from '../../contract/index.js';
import type { Style } from '../output.js';

/** One column of {@link renderTable}: its header, its text, and how to colour a cell. */
export interface Column<T> {
  header: string;
  value: (row: T) => string;
  /** Receives the cell already padded, so colour codes never upset the alignment. */
  colour?: (row: T, padded: string) => string;
}

/** A kubectl-style table: bold headers, columns two spaces apart, no trailing blanks. */
export function renderTable<T>(columns: Column<T>[], rows: readonly T[], style: Style): string {
  const cells = rows.map((row) => columns.map((column) => column.value(row)));
  const widths = columns.map((column) => column.header.length);
  for (const row of cells) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.length)));
  const last = columns.length - 1;
  const pad = (text: string, i: number) => (i === last ? text : text.padEnd(widths[i] ?? 0));
  const lines = [
    columns
      .map((column, i) => style.bold(pad(column.header, i)))
      .join('  ')
      .trimEnd(),
  ];
  rows.forEach((row, r) => {
    const line = columns.map((column, i) => {
      const padded = pad(cells[r]?.[i] ?? '', i);
      return column.colour ? column.colour(row, padded) : padded;
    });
    lines.push(line.join('  ').trimEnd());
  });
  return lines.join('\n') + '\n';
}

/** `3m ago`, `2h ago`, `5d ago`; a date beyond 60 days; `-` when there is no time. */
export function formatRelative(iso: string | null | undefined, now: number): string {
  if (!iso) return '-';
  const time = Date.parse(iso);
  if (Number.isNaN(time)) return '-';
  // A server clock slightly ahead of ours would otherwise print "-2s ago".
  const seconds = Math.max(0, Math.floor((now - time) / 1000));
  if (seconds < 5) return 'just now';
  if (seconds < 60) return `${seconds}s ago`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes}m ago`;
  const hours = Math.floor(minutes / 60);
  if (hours < 24) return `${hours}h ago`;
  const days = Math.floor(hours / 24);
  if (days <= 60) return `${days}d ago`;
  return new Date(time).toISOString().slice(0, 10);
}

/** How long a build (or stage, or step) took, or has been running so far; `-` before it starts. */
export function formatElapsed(
  record: { startedAt: string | null; finishedAt: string | null; durationMs: number | null },
  now: number,
): string {
  if (record.durationMs !== null) return formatDuration(record.durationMs);
  if (!record.startedAt) return '-';
  const end = record.finishedAt ? Date.parse(record.finishedAt) : now;
  return formatDuration(Math.max(0, end - Date.parse(record.startedAt)));
}

/** A commit as people read it: the first 12 hex digits. */
export function shortCommit(commit: string | null): string {
  return commit ? commit.slice(0, 12) : '-';
}

/** Green for success, red for failure/error/lost, yellow for cancelled/waiting, dim for the rest. */
export function colourStatus(style: Style, status: Status, text: string = status): string {
  switch (status) {
    case 'success':
      return style.green(text);
    case 'failure':
    case 'error':
    case 'lost':
      return style.red(text);
    case 'cancelled':
    case 'waiting':
      return style.yellow(text);
    case 'running':
      return style.bold(text);
    default:
      return style.dim(text);
  }
}

/** Why a queued build waits, in words (the API sends a code). */
export function describeWaiting(waitingFor: string | null, build: Build, queue: Queue): string {
  switch (waitingFor) {
    case null:
      return 'about to start';
    case 'approval':
      return `a person to approve (slipway approve ${build.project} ${build.number} [--reject])`;
    case 'branch_lock':
      return `another build of ${build.branch} is running`;
    case 'project_limit':
      return 'project limit of running builds reached';
    case 'global_limit':
      return `global limit of ${queue.limits.global} running builds reached`;
    default:
      return waitingFor;
  }
}

/**
 * One approval record in words: `deploy approved by alice 3m ago — "looks good"`, or
 * `deploy waiting for a person since 2m ago`. `buildWaits`: the build is still `waiting` (else
 * an undecided approval was never decided: the build ended first).
 */
export function approvalText(approval: Approval, now: number, buildWaits: boolean): string {
  if (approval.decision === 'waiting')
    return buildWaits
      ? `${approval.stage} waiting for a person since ${formatRelative(approval.requestedAt, now)}`
      : `${approval.stage} never decided`;
  const comment = approval.comment ? ` — "${approval.comment}"` : '';
  const slot = approval.resumedAt === null && buildWaits ? ' (waits for a running slot)' : '';
  return `${approval.stage} ${approval.decision} by ${approval.by ?? 'someone'} ${formatRelative(approval.at, now)}${comment}${slot}`;
}

/** `slipway get projects`. */
export function projectsTable(projects: readonly Project[], style: Style, now: number): string {
  return renderTable<Project>(
    [
      { header: 'PROJECT', value: (p) => p.slug },
      { header: 'REPO', value: (p) => p.repoUrl },
      { header: 'BRANCHES', value: (p) => p.branchFilter },
      { header: 'POLICY', value: (p) => p.concurrencyPolicy },
      {
        header: 'LAST BUILD',
        value: (p) => (p.lastBuild ? `#${p.lastBuild.number} ${p.lastBuild.status}` : '-'),
        colour: (p, text) => (p.lastBuild ? colourStatus(style, p.lastBuild.status, text) : text),
      },
      { header: 'DURATION', value: (p) => (p.lastBuild ? formatElapsed(p.lastBuild, now) : '-') },
    ],
    projects,
    style,
  );
}

/** `slipway get builds`; the PROJECT column only when the list spans projects. */
export function buildsTable(
  builds: readonly Build[],
  style: Style,
  now: number,
  withProject: boolean,
): string {
  const columns: Column<Build>[] = [
    { header: 'NUMBER', value: (b) => String(b.number) },
    { header: 'STATUS', value: (b) => b.status, colour: (b, text) => colourStatus(style, b.status, text) },
    { header: 'BRANCH', value: (b) => b.branch },
    { header: 'COMMIT', value: (b) => shortCommit(b.commit) },
    { header: 'STARTED', value: (b) => formatRelative(b.startedAt, now) },
    { header: 'DURATION', value: (b) => formatElapsed(b, now) },
  ];
  if (withProject) columns.unshift({ header: 'PROJECT', value: (b) => b.project });
  return renderTable(columns, builds, style);
}

interface TreeRow {
  name: string;
  status: Status;
  duration: string;
  exit: string;
  note: string;
}

/**
 * `slipway get build`: a header with the build's facts, then its stages and steps as a tree.
 * `rerunOfNumber` is the project number of the build this one re-runs (the API gives its id).
 */
export function buildDetailText(
  build: BuildDetail,
  style: Style,
  now: number,
  rerunOfNumber?: number,
): string {
  const facts: [string, string][] = [
    ['branch', build.branch],
    ['commit', shortCommit(build.commit) + (build.tag ? ` (tag ${build.tag})` : '')],
    ['event', build.event + (build.triggeredBy ? `, by ${build.triggeredBy}` : '')],
    ['created', formatRelative(build.createdAt, now)],
    ['started', formatRelative(build.startedAt, now)],
    ['duration', formatElapsed(build, now)],
  ];
  if (build.rerunOf !== null)
    facts.push([
      're-run of',
      (rerunOfNumber !== undefined ? `#${rerunOfNumber}` : `build id ${build.rerunOf}`) +
        (build.rerunFailed ? ' (what failed; the rest reused)' : ''),
    ]);
  for (const approval of build.approvals ?? [])
    facts.push(['approval', approvalText(approval, now, build.status === 'waiting')]);
  if (build.reason) facts.push(['reason', build.reason.message]);
  const width = Math.max(...facts.map(([key]) => key.length));
  let text = `${style.bold(`${build.project} #${build.number}`)}  ${colourStatus(style, build.status)}\n`;
  for (const [key, value] of facts) text += `  ${key.padEnd(width)}  ${value}\n`;
  if (build.stages.length === 0) return text;

  const rows: TreeRow[] = [];
  for (const stage of build.stages) {
    rows.push({
      name: stage.name,
      status: stage.status,
      duration: formatElapsed(stage, now),
      exit: '',
      note: stage.reason?.message ?? '',
    });
    stage.steps.forEach((step, i) => {
      const notes = [step.reason?.message ?? ''];
      if (step.attempts > 1) notes.push(`${step.attempts} attempts`);
      if (step.reusedFrom) notes.push(`reused from #${step.reusedFrom.number}`);
      rows.push({
        name: `${i === stage.steps.length - 1 ? '└─' : '├─'} ${step.name}`,
        status: step.status,
        duration: formatElapsed(step, now),
        exit: step.exitCode === null ? '' : String(step.exitCode),
        note: notes.filter(Boolean).join('; '),
      });
    });
  }
  return (
    text +
    '\n' +
    renderTable<TreeRow>(
      [
        { header: 'STAGE/STEP', value: (r) => r.name },
        { header: 'STATUS', value: (r) => r.status, colour: (r, t) => colourStatus(style, r.status, t) },
        { header: 'DURATION', value: (r) => r.duration },
        { header: 'EXIT', value: (r) => r.exit },
        { header: 'NOTE', value: (r) => r.note },
      ],
      rows,
      style,
    )
  );
}

/** `slipway get queue`: running builds first, then queued ones with why they wait. */
export function queueText(queue: Queue, style: Style, now: number): string {
  const summary = `${queue.running.length} running, ${queue.queued.length} queued (global limit ${queue.limits.global})\n`;
  if (queue.running.length === 0 && queue.queued.length === 0) return summary;
  const rows = [
    ...queue.running.map((build) => ({ build, since: build.startedAt ?? build.createdAt, waiting: '' })),
    ...queue.queued.map((entry) => ({
      build: entry,
      since: entry.createdAt,
      waiting: describeWaiting(entry.waitingFor, entry, queue),
    })),
  ];
  return (
    renderTable<(typeof rows)[number]>(
      [
        { header: 'PROJECT', value: (r) => r.build.project },
        { header: 'NUMBER', value: (r) => String(r.build.number) },
        {
          header: 'STATUS',
          value: (r) => r.build.status,
          colour: (r, t) => colourStatus(style, r.build.status, t),
        },
        { header: 'BRANCH', value: (r) => r.build.branch },
        { header: 'SINCE', value: (r) => formatRelative(r.since, now) },
        { header: 'WAITING FOR', value: (r) => r.waiting },
      ],
      rows,
      style,
    ) + summary
  );
}

/** `slipway get tokens`. Never shows a secret: the API has none to show. */
export function tokensTable(tokens: readonly TokenInfo[], style: Style, now: number): string {
  return renderTable<TokenInfo>(
    [
      { header: 'ID', value: (t) => String(t.id) },
      { header: 'NAME', value: (t) => t.name },
      { header: 'ROLE', value: (t) => t.role },
      { header: 'CREATED', value: (t) => formatRelative(t.createdAt, now) },
      { header: 'LAST USED', value: (t) => (t.lastUsedAt ? formatRelative(t.lastUsedAt, now) : 'never') },
    ],
    tokens,
    style,
  );
}
