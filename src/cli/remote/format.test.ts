import { describe, expect, it } from 'vitest';
import type { Build, BuildDetail, Project, Queue } from '../../contract/index.js';
import { Style } from '../output.js';
import {
  buildDetailText,
  buildsTable,
  formatElapsed,
  formatRelative,
  projectsTable,
  queueText,
  renderTable,
} from './format.js';

const NOW = Date.parse('2024-05-01T12:00:00Z');
const ago = (seconds: number) => new Date(NOW - seconds * 1000).toISOString();
const plain = new Style(false);

function build(overrides: Partial<Build> = {}): Build {
  return {
    id: 1,
    project: 'acme/web',
    number: 1,
    status: 'success',
    reason: null,
    branch: 'main',
    commit: '0123456789abcdef0123456789abcdef01234567',
    tag: null,
    event: 'push',
    trigger: 'webhook',
    triggeredBy: null,
    rerunOf: null,
    createdAt: ago(200),
    startedAt: ago(180),
    finishedAt: ago(100),
    durationMs: 80_000,
    ...overrides,
  };
}

describe('formatRelative', () => {
  it.each([
    [0, 'just now'],
    [4, 'just now'],
    [59, '59s ago'],
    [180, '3m ago'],
    [3599, '59m ago'],
    [7200, '2h ago'],
    [86_400 * 5, '5d ago'],
    [86_400 * 90, '2024-02-01'],
  ])('%i seconds ago → %s', (seconds, text) => {
    expect(formatRelative(ago(seconds), NOW)).toBe(text);
  });

  it('copes with no time, bad times and a server clock ahead of ours', () => {
    expect(formatRelative(null, NOW)).toBe('-');
    expect(formatRelative('yesterday', NOW)).toBe('-');
    expect(formatRelative(ago(-30), NOW)).toBe('just now');
  });
});

describe('formatElapsed', () => {
  it('uses the recorded duration, else the time so far, else a dash', () => {
    expect(formatElapsed({ startedAt: ago(100), finishedAt: null, durationMs: 62_000 }, NOW)).toBe('1m2s');
    expect(formatElapsed({ startedAt: ago(75), finishedAt: null, durationMs: null }, NOW)).toBe('1m15s');
    expect(formatElapsed({ startedAt: null, finishedAt: null, durationMs: null }, NOW)).toBe('-');
  });
});

describe('tables', () => {
  it('aligns columns on the widest cell and trims trailing blanks', () => {
    const text = renderTable(
      [
        { header: 'A', value: (r: string[]) => r[0] ?? '' },
        { header: 'LONG HEADER', value: (r: string[]) => r[1] ?? '' },
        { header: 'C', value: (r: string[]) => r[2] ?? '' },
      ],
      [
        ['wide cell', 'x', ''],
        ['y', 'z', 'last'],
      ],
      plain,
    );
    expect(text).toBe(
      ['A          LONG HEADER  C', 'wide cell  x', 'y          z            last', ''].join('\n'),
    );
  });

  it('keeps alignment when cells are coloured', () => {
    const colour = new Style(true);
    const text = buildsTable(
      [build({ status: 'failure' }), build({ number: 12, status: 'running' })],
      colour,
      NOW,
      false,
    );
    // eslint-disable-next-line no-control-regex
    const visible = text.replace(/\u001b\[\d+m/g, '');
    expect(visible.split('\n')[1]).toBe('1       failure  main    0123456789ab  3m ago   1m20s');
    expect(text).toContain('\u001b[31mfailure\u001b[0m');
  });

  it('lists builds with commit, relative start and duration; the project only across projects', () => {
    const builds = [
      build({ number: 42, status: 'running', startedAt: ago(30), finishedAt: null, durationMs: null }),
      build({
        number: 41,
        project: 'acme/api',
        commit: null,
        startedAt: null,
        finishedAt: null,
        durationMs: null,
        status: 'queued',
      }),
    ];
    expect(buildsTable(builds, plain, NOW, false)).toBe(
      [
        'NUMBER  STATUS   BRANCH  COMMIT        STARTED  DURATION',
        '42      running  main    0123456789ab  30s ago  30s',
        '41      queued   main    -             -        -',
        '',
      ].join('\n'),
    );
    expect(buildsTable(builds, plain, NOW, true).split('\n')[2]).toBe(
      'acme/api  41      queued   main    -             -        -',
    );
  });

  it('lists projects with their last build', () => {
    const project: Project = {
      id: 1,
      slug: 'acme/web',
      repoUrl: 'https://git.example.com/acme/web.git',
      branchFilter: 'main|release/.*',
      defaultExecutor: null,
      defaultImage: null,
      concurrencyPolicy: 'supersede',
      maxRunning: null,
      maxLogBytes: null,
      pipelinePath: '.slipway.yml',
      createdAt: ago(1000),
      updatedAt: ago(1000),
      lastBuild: build({ number: 7 }),
    };
    expect(projectsTable([project, { ...project, slug: 'acme/new', lastBuild: null }], plain, NOW)).toBe(
      [
        'PROJECT   REPO                                  BRANCHES         POLICY     LAST BUILD  DURATION',
        'acme/web  https://git.example.com/acme/web.git  main|release/.*  supersede  #7 success  1m20s',
        'acme/new  https://git.example.com/acme/web.git  main|release/.*  supersede  -           -',
        '',
      ].join('\n'),
    );
  });

  it('shows a build as facts and a stage/step tree', () => {
    const detail: BuildDetail = {
      ...build({
        number: 42,
        status: 'failure',
        reason: { code: 'exit_code', message: 'test/unit failed' },
        tag: 'v1.0',
      }),
      stages: [
        {
          name: 'build',
          status: 'success',
          reason: null,
          startedAt: ago(180),
          finishedAt: ago(170),
          durationMs: 10_000,
          steps: [
            {
              name: 'compile',
              status: 'success',
              exitCode: 0,
              attempts: 1,
              reason: null,
              startedAt: ago(180),
              finishedAt: ago(170),
              durationMs: 10_000,
              logLines: 3,
              allowFailure: false,
              maxAttempts: 1,
              reusedFrom: { buildId: 40, number: 41 },
            },
          ],
        },
        {
          name: 'test',
          status: 'failure',
          reason: null,
          startedAt: ago(170),
          finishedAt: ago(100),
          durationMs: 70_000,
          steps: [
            {
              name: 'unit',
              status: 'failure',
              exitCode: 1,
              attempts: 2,
              reason: { code: 'exit_code', message: 'exit code 1' },
              startedAt: ago(170),
              finishedAt: ago(100),
              durationMs: 70_000,
              logLines: 9,
              allowFailure: false,
              maxAttempts: 1,
            },
            {
              name: 'lint',
              status: 'cancelled',
              exitCode: null,
              attempts: 1,
              reason: null,
              startedAt: ago(170),
              finishedAt: ago(160),
              durationMs: 500,
              logLines: 0,
              allowFailure: false,
              maxAttempts: 1,
            },
          ],
        },
      ],
    };
    expect(buildDetailText(detail, plain, NOW)).toBe(
      [
        'acme/web #42  failure',
        '  branch    main',
        '  commit    0123456789ab (tag v1.0)',
        '  event     push',
        '  created   3m ago',
        '  started   3m ago',
        '  duration  1m20s',
        '  reason    test/unit failed',
        '',
        'STAGE/STEP  STATUS     DURATION  EXIT  NOTE',
        'build       success    10s',
        '└─ compile  success    10s       0     reused from #41',
        'test        failure    1m10s',
        '├─ unit     failure    1m10s     1     exit code 1; 2 attempts',
        '└─ lint     cancelled  500ms',
        '',
      ].join('\n'),
    );
  });

  it('shows the queue with why each build waits', () => {
    const queue: Queue = {
      running: [
        build({ number: 5, status: 'running', startedAt: ago(60), finishedAt: null, durationMs: null }),
      ],
      queued: [
        {
          ...build({
            number: 6,
            status: 'queued',
            createdAt: ago(30),
            startedAt: null,
            finishedAt: null,
            durationMs: null,
          }),
          waitingFor: 'branch_lock',
        },
        {
          ...build({
            number: 3,
            project: 'acme/api',
            status: 'queued',
            createdAt: ago(10),
            startedAt: null,
            finishedAt: null,
            durationMs: null,
          }),
          waitingFor: 'global_limit',
        },
      ],
      limits: { global: 1 },
    };
    expect(queueText(queue, plain, NOW)).toBe(
      [
        'PROJECT   NUMBER  STATUS   BRANCH  SINCE    WAITING FOR',
        'acme/web  5       running  main    1m ago',
        'acme/web  6       queued   main    30s ago  another build of main is running',
        'acme/api  3       queued   main    10s ago  global limit of 1 running builds reached',
        '1 running, 2 queued (global limit 1)',
        '',
      ].join('\n'),
    );
    expect(queueText({ running: [], queued: [], limits: { global: 4 } }, plain, NOW)).toBe(
      '0 running, 0 queued (global limit 4)\n',
    );
  });
});
