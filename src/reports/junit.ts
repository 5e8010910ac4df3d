/**
 * JUnit XML test reports, as pytest, Jest (jest-junit), gotestsum, Maven Surefire and Vitest
 * write them, read into bounded test cases. Pure and synchronous: the server runs it in a
 * worker thread (`parse-pool.ts`) so that a big report holds that thread, not the event loop.
 *
 * Safety: `fast-xml-parser` does no I/O, so external entities are never resolved (it refuses
 * a DOCTYPE that declares one), and entities declared in a DOCTYPE are expanded one level
 * only (a "billion laughs" file stays as written); the expansion limits below bound even that.
 * Every text kept is cut at a limit, and the cut says so.
 */
import { XMLParser, XMLValidator, type ProcessEntitiesOptions } from 'fast-xml-parser';

/** What a test case came to. `error`: the test could not run to its assertion (JUnit's `<error>`). */
export type TestStatus = 'passed' | 'failed' | 'error' | 'skipped';

export interface ParsedCase {
  /** The innermost `<testsuite name>` around it; '' when none. */
  suite: string;
  classname: string;
  name: string;
  file?: string;
  status: TestStatus;
  /** From `time` (seconds); null when absent or not a number. */
  durationMs: number | null;
  /** The failure's (or error's, or skip's) message: `message` attribute, else the first line of its text. */
  message?: string;
  /** Failed or errored cases only: the failure's text, reruns, and the case's and suite's output. */
  output?: string;
  /** The test tool itself re-ran it and it passed (Surefire's `<flakyFailure>`/`<flakyError>`). */
  flaky: boolean;
}

export interface ReportTotals {
  tests: number;
  failures: number;
  errors: number;
  skipped: number;
  /** The sum of the cases' times. */
  timeMs: number;
}

export interface ParsedReport {
  /** The cases kept, at most `maxCases`; the totals count every case. */
  cases: ParsedCase[];
  totals: ReportTotals;
  /** Cases counted but not kept (over `maxCases`). */
  dropped: number;
  /** What was cut, for the step's log (`3 messages cut at 4 KiB`). */
  notes: string[];
  /** Set when the file is not a JUnit report: `3:7: not XML: …`; then there are no cases. */
  error?: string;
}

export interface JUnitLimits {
  /** Cases kept from this file. */
  maxCases: number;
  /** Characters kept of each message. */
  maxMessageChars: number;
  /** Characters kept of each failed case's output. */
  maxOutputChars: number;
  /** Characters kept of a suite, class or test name. */
  maxNameChars: number;
}

export const DEFAULT_JUNIT_LIMITS: JUnitLimits = {
  maxCases: 10_000,
  maxMessageChars: 4 * 1024,
  maxOutputChars: 64 * 1024,
  maxNameChars: 1000,
};

/** The elements that may repeat: always arrays, so one and many read the same. */
const REPEATED = new Set([
  'testsuites',
  'testsuite',
  'testcase',
  'failure',
  'error',
  'skipped',
  'flakyFailure',
  'flakyError',
  'rerunFailure',
  'rerunError',
  'system-out',
  'system-err',
]);

const ATTR = '@_';
const TEXT = '#text';

/**
 * Bounds of the entities a DOCTYPE declares. `appliesTo: 'external'` (read by the parser, not
 * yet in its types) keeps `&lt;` and `&#10;`, which big reports hold by the ten thousand, out
 * of the count; the default counts them too and refuses a 30 MB Surefire report.
 */
const ENTITY_LIMITS: ProcessEntitiesOptions & { appliesTo: 'external' } = {
  enabled: true,
  maxEntityCount: 100,
  maxEntitySize: 10_000,
  maxTotalExpansions: 10_000,
  maxExpandedLength: 1_000_000,
  appliesTo: 'external',
};

function newParser(): XMLParser {
  return new XMLParser({
    ignoreAttributes: false,
    attributeNamePrefix: ATTR,
    textNodeName: TEXT,
    parseTagValue: false,
    parseAttributeValue: false,
    trimValues: false,
    ignoreDeclaration: true,
    ignorePiTags: true,
    // Numeric references (`&#10;`) are common in reports; named HTML ones are harmless.
    htmlEntities: true,
    processEntities: ENTITY_LIMITS,
    isArray: (name) => REPEATED.has(name),
  });
}

/** An element as fast-xml-parser gives it: attributes (`@_x`), text (`#text`), children. */
type XmlNode = Record<string, unknown>;

/** Reads a JUnit XML document; never throws: a bad file is a report with `error` set. */
export function parseJUnit(xml: string, limits: JUnitLimits = DEFAULT_JUNIT_LIMITS): ParsedReport {
  const report = new ReportBuilder(limits);
  const text = xml.charCodeAt(0) === 0xfeff ? xml.slice(1) : xml;
  const valid = XMLValidator.validate(text, { allowBooleanAttributes: true });
  if (valid !== true) {
    return report.fail(`${valid.err.line}:${valid.err.col}: not XML: ${valid.err.msg}`);
  }
  let doc: XmlNode;
  try {
    doc = newParser().parse(text) as XmlNode;
  } catch (error) {
    return report.fail(`not accepted: ${error instanceof Error ? error.message : String(error)}`);
  }
  const roots = Object.keys(doc).filter((k) => !k.startsWith('?') && !k.startsWith('!'));
  const root = roots[0];
  if (root !== 'testsuites' && root !== 'testsuite') {
    return report.fail(
      `expected <testsuites> or <testsuite> as the root element, found ${root === undefined ? 'none' : `<${root}>`}`,
    );
  }
  for (const node of nodes(doc[root])) {
    if (root === 'testsuites') report.suites(node, '', []);
    else report.suite(node, []);
  }
  return report.done();
}

class ReportBuilder {
  private readonly cases: ParsedCase[] = [];
  private readonly totals: ReportTotals = { tests: 0, failures: 0, errors: 0, skipped: 0, timeMs: 0 };
  private dropped = 0;
  private readonly cut = { message: 0, output: 0, name: 0 };

  constructor(private readonly limits: JUnitLimits) {}

  fail(error: string): ParsedReport {
    return { cases: [], totals: this.totals, dropped: 0, notes: [], error };
  }

  /** A `<testsuites>`: its suites, nested `<testsuites>`, and cases written directly in it. */
  suites(node: XmlNode, suite: string, outer: XmlNode[]): void {
    for (const inner of nodes(node['testsuites'])) this.suites(inner, suite, outer);
    for (const s of nodes(node['testsuite'])) this.suite(s, outer);
    for (const c of nodes(node['testcase'])) this.testCase(c, suite, [node, ...outer]);
  }

  /** A `<testsuite>`: its cases, and suites nested in it (Jest and older pytest nest them). */
  suite(node: XmlNode, outer: XmlNode[]): void {
    const name = this.name(attr(node, 'name'));
    const around = [node, ...outer];
    for (const c of nodes(node['testcase'])) this.testCase(c, name, around);
    for (const s of nodes(node['testsuite'])) this.suite(s, around);
    for (const s of nodes(node['testsuites'])) this.suites(s, name, around);
  }

  private testCase(node: XmlNode, suite: string, around: XmlNode[]): void {
    const failure = nodes(node['failure'])[0];
    const error = nodes(node['error'])[0];
    const skipped = nodes(node['skipped'])[0];
    const status: TestStatus =
      failure !== undefined
        ? 'failed'
        : error !== undefined
          ? 'error'
          : skipped !== undefined
            ? 'skipped'
            : 'passed';
    const flakyRuns = [...nodes(node['flakyFailure']), ...nodes(node['flakyError'])];
    const durationMs = seconds(attr(node, 'time'));
    this.totals.tests += 1;
    if (status === 'failed') this.totals.failures += 1;
    if (status === 'error') this.totals.errors += 1;
    if (status === 'skipped') this.totals.skipped += 1;
    if (durationMs !== null) this.totals.timeMs += durationMs;
    if (this.cases.length >= this.limits.maxCases) {
      this.dropped += 1;
      return;
    }
    const file = attr(node, 'file');
    const cause = failure ?? error ?? skipped;
    const message = cause === undefined ? undefined : messageOf(cause);
    const kept: ParsedCase = {
      suite,
      classname: this.name(attr(node, 'classname') ?? ''),
      name: this.name(attr(node, 'name') ?? ''),
      ...(file !== undefined ? { file: this.name(file) } : {}),
      status,
      durationMs,
      ...(message ? { message: this.bounded(message, this.limits.maxMessageChars, 'message') } : {}),
      flaky: status === 'passed' && flakyRuns.length > 0,
    };
    if (status === 'failed' || status === 'error') {
      const output = outputOf(
        node,
        cause!,
        [...nodes(node['rerunFailure']), ...nodes(node['rerunError'])],
        around,
      );
      if (output) kept.output = this.bounded(output, this.limits.maxOutputChars, 'output');
    } else if (kept.flaky) {
      const first = flakyRuns[0]!;
      kept.message ??= this.bounded(messageOf(first) ?? '', this.limits.maxMessageChars, 'message');
    }
    this.cases.push(kept);
  }

  private name(text: string | undefined): string {
    return text === undefined ? '' : this.bounded(text, this.limits.maxNameChars, 'name');
  }

  private bounded(text: string, max: number, what: keyof ReportBuilder['cut']): string {
    if (text.length <= max) return text;
    this.cut[what] += 1;
    return `${text.slice(0, max)}\n… cut: ${text.length - max} more characters`;
  }

  done(): ParsedReport {
    const notes: string[] = [];
    if (this.dropped > 0)
      notes.push(`${this.dropped} test cases not kept: at most ${this.limits.maxCases} are kept of one file`);
    if (this.cut.message > 0)
      notes.push(`${this.cut.message} messages cut at ${this.limits.maxMessageChars} characters`);
    if (this.cut.output > 0)
      notes.push(`${this.cut.output} outputs cut at ${this.limits.maxOutputChars} characters`);
    if (this.cut.name > 0) notes.push(`${this.cut.name} names cut at ${this.limits.maxNameChars} characters`);
    return { cases: this.cases, totals: this.totals, dropped: this.dropped, notes };
  }
}

/** An element's children of one name: nothing, a text-only element (a string) or elements. */
function nodes(value: unknown): XmlNode[] {
  if (value === undefined || value === null) return [];
  const list = Array.isArray(value) ? (value as unknown[]) : [value];
  return list.map((v) => (typeof v === 'object' && v !== null ? (v as XmlNode) : { [TEXT]: String(v) }));
}

function attr(node: XmlNode, name: string): string | undefined {
  const value = node[ATTR + name];
  return typeof value === 'string' ? value : undefined;
}

function textOf(node: XmlNode): string {
  const value = node[TEXT];
  return typeof value === 'string' ? value : '';
}

/** `message` attribute (with `type` before it when it is not already there), else the text's first line. */
function messageOf(node: XmlNode): string | undefined {
  const message = attr(node, 'message')?.trim();
  const type = attr(node, 'type')?.trim();
  const first = bodyOf(node)
    .split('\n')
    .map((l) => l.trim())
    .find((l) => l !== '');
  const text = message || first;
  if (!text) return type || undefined;
  return type && !text.startsWith(type) ? `${type}: ${text}` : text;
}

/** Text of a failure, and of the `<stackTrace>` Surefire puts in its reruns. */
function bodyOf(node: XmlNode): string {
  return [textOf(node), ...nodes(node['stackTrace']).map(textOf)]
    .map((t) => t.trim())
    .filter(Boolean)
    .join('\n');
}

function outputOf(node: XmlNode, cause: XmlNode, reruns: XmlNode[], around: XmlNode[]): string {
  const parts: string[] = [];
  const body = textOf(cause).trim();
  if (body) parts.push(body);
  reruns.forEach((rerun, i) => {
    const text = [messageOf(rerun), bodyOf(rerun)].filter(Boolean).join('\n');
    if (text) parts.push(`--- rerun ${i + 1} ---\n${text}`);
    for (const out of streamsOf(rerun)) parts.push(out);
  });
  parts.push(...streamsOf(node));
  // The suite's own output, once, for the failed cases in it (pytest and Surefire put it there).
  const suite = around.find((n) => n['system-out'] !== undefined || n['system-err'] !== undefined);
  if (suite !== undefined)
    parts.push(...streamsOf(suite).map((s) => s.replace(/^--- system-/, '--- suite system-')));
  return parts.join('\n');
}

function streamsOf(node: XmlNode): string[] {
  const out: string[] = [];
  for (const stream of ['system-out', 'system-err'] as const) {
    const text = nodes(node[stream])
      .map(textOf)
      .join('\n')
      .replace(/^\n+|\s+$/g, '');
    if (text) out.push(`--- ${stream} ---\n${text}`);
  }
  return out;
}

/** `0.25` (seconds, as every producer writes; Surefire may group thousands: `1,234.5`) in ms. */
function seconds(text: string | undefined): number | null {
  if (text === undefined) return null;
  const value = Number(text.replace(/,/g, '').trim());
  return Number.isFinite(value) && value >= 0 ? Math.round(value * 1000) : null;
}

/** UTF-8 text of a file's bytes in pieces (a character may be split between two). */
export function decodeParts(parts: readonly Uint8Array[]): string {
  const decoder = new TextDecoder('utf-8');
  let text = '';
  for (const part of parts) text += decoder.decode(part, { stream: true });
  return text + decoder.decode();
}
