/**
 * "Is this full sha a commit in the mirror, and what are its message and author", answered by
 * one long-lived `git cat-file --batch` per mirror instead of a `git log` per build: a line
 * on a pipe, no fork. The process starts on first use and ends after a while without
 * questions, and when its mirror is gc'ed, made again or pruned (it would hold the old packs).
 *
 * Answers are read with a bound: of a commit object, the first {@link KEPT_BYTES} are kept
 * and the rest is skipped by its size as it streams past, never buffered whole (a hostile
 * commit of megabytes costs a pass over its bytes). Any other object is skipped the same way.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { unrefHelper, unrefStream } from '../../executors/helper-requests.js';
import { authorLine, MAX_MESSAGE_CHARS, type CommitInfo } from './commit-info.js';

/** Of a commit object, this much is read: headers and 16K characters of message fit many times. */
const KEPT_BYTES = 256 * 1024;
/** A header line of cat-file longer than this is not one: the process is ended. */
const MAX_HEADER = 1024;
/** A question unanswered this long ends the process (the questions fail, the caller falls back). */
const ANSWER_MS = 60_000;
/** A full sha-1 or sha-256: what the reader is asked about (no name, no abbreviation). */
const FULL_SHA = /^(?:[0-9a-f]{40}|[0-9a-f]{64})$/;

/** What the reader found: the commit (peeled from a tag) with what it says, or nothing. */
export type CommitLookup = { commit: string; info: CommitInfo } | undefined;

/** An object as {@link CommitReader.read} gives it: its type and its whole body. */
export interface RawObject {
  type: string;
  body: Buffer;
}

/**
 * What the reads of one caller may buffer in all, in bytes: an object larger than what is
 * left is skipped as it streams past (it is "too big"), never held.
 */
export interface ReadBudget {
  left: number;
}

/** An object git has (with so much of its body kept), or undefined when it is missing. */
type Found = { sha: string; type: string; size: number; kept: Buffer } | undefined;

interface Question {
  /** How many bytes of the object to keep, told its type and size (taken in answer order). */
  keep: (type: string, size: number) => number;
  done: (found: Found) => void;
  reject: (error: Error) => void;
  timer: NodeJS.Timeout;
}

/** The reader could not answer (the process died, or said something unreadable). */
export class CommitReaderError extends Error {
  override name = 'CommitReaderError';
}

/** One `git cat-file --batch` on one git directory; questions are answered in order. */
class CatFileProcess {
  readonly child: ChildProcess;
  private readonly questions: Question[] = [];
  closed = false;
  // The answer being read: its header so far, or the object's bytes still due.
  private header: Buffer[] = [];
  private headerLength = 0;
  private object:
    { sha: string; type: string; due: number; size: number; kept: Buffer; keptLength: number } | undefined;

  constructor(
    gitDir: string,
    private readonly onEnd: () => void,
  ) {
    this.child = spawn('git', ['--git-dir', gitDir, 'cat-file', '--batch'], {
      stdio: ['pipe', 'pipe', 'ignore'],
      env: { ...process.env, GIT_TERMINAL_PROMPT: '0' },
    });
    this.child.stdout?.on('data', (chunk: Buffer) => this.read(chunk));
    unrefHelper(this.child, (error) =>
      this.end(new CommitReaderError(error ? `git cat-file: ${error.message}` : 'git cat-file ended')),
    );
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  get busy(): boolean {
    return this.questions.length > 0;
  }

  ask(sha: string): Promise<CommitLookup> {
    // Peeled to the commit: a tag's sha names its commit; a tree or blob is "missing".
    return this.question(`${sha}^{commit}`, {
      keep: (type) => (type === 'commit' ? KEPT_BYTES : 0),
      done: (found) =>
        found?.type === 'commit' ? { commit: found.sha, info: parseCommit(found.kept) } : undefined,
    });
  }

  /** The object `sha` whole, if `budget` has room for it; 'too big' (and skipped) if not. */
  readObject(sha: string, budget: ReadBudget): Promise<RawObject | 'too big' | undefined> {
    return this.question(sha, {
      keep: (_type, size) => {
        if (size > budget.left) return 0;
        budget.left -= size;
        return size;
      },
      done: (found) =>
        found === undefined
          ? undefined
          : found.kept.length < found.size
            ? 'too big'
            : { type: found.type, body: found.kept },
    });
  }

  private question<T>(line: string, how: { keep: Question['keep']; done: (found: Found) => T }): Promise<T> {
    if (this.closed) return Promise.reject(new CommitReaderError('git cat-file ended'));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => this.end(new CommitReaderError('git cat-file did not answer')),
        ANSWER_MS,
      );
      timer.unref();
      this.questions.push({ keep: how.keep, done: (found) => resolve(how.done(found)), reject, timer });
      ref(this.child.stdout);
      this.child.stdin?.write(`${line}\n`);
    });
  }

  close(): void {
    this.child.stdin?.end();
    this.child.kill('SIGKILL');
  }

  private read(chunk: Buffer): void {
    let at = 0;
    while (at < chunk.length && !this.closed) {
      if (this.object === undefined) {
        const nl = chunk.indexOf(0x0a, at);
        const end = nl < 0 ? chunk.length : nl;
        this.header.push(chunk.subarray(at, end));
        this.headerLength += end - at;
        if (this.headerLength > MAX_HEADER)
          return this.end(new CommitReaderError('unreadable answer of git cat-file'));
        if (nl < 0) return;
        at = nl + 1;
        const line = Buffer.concat(this.header).toString('latin1');
        this.header = [];
        this.headerLength = 0;
        this.heard(line);
      } else {
        const object = this.object;
        const take = Math.min(object.due, chunk.length - at);
        const room = Math.min(take, object.kept.length - object.keptLength);
        if (room > 0) {
          chunk.copy(object.kept, object.keptLength, at, at + room);
          object.keptLength += room;
        }
        object.due -= take;
        at += take;
        if (object.due === 0) {
          this.object = undefined;
          const { sha, type, size, kept } = object;
          this.answer({ sha, type, size, kept });
        }
      }
    }
  }

  /** `<sha> <type> <size>`, or `<name> missing` / `ambiguous`. */
  private heard(line: string): void {
    const parts = line.split(' ');
    if (parts.length === 3 && FULL_SHA.test(parts[0]!) && /^\d+$/.test(parts[2]!)) {
      const question = this.questions[0];
      if (!question) return this.end(new CommitReaderError('an answer of git cat-file nobody asked for'));
      const size = Number(parts[2]);
      const type = parts[1]!;
      const keep = Math.max(0, Math.min(size, question.keep(type, size)));
      // The object is followed by a newline, counted in `due`.
      this.object = {
        sha: parts[0]!,
        type,
        due: size + 1,
        size,
        kept: Buffer.allocUnsafe(keep),
        keptLength: 0,
      };
    } else if (parts.length === 2 && (parts[1] === 'missing' || parts[1] === 'ambiguous')) {
      this.answer(undefined);
    } else this.end(new CommitReaderError('unreadable answer of git cat-file'));
  }

  private answer(found: Found): void {
    const question = this.questions.shift();
    if (!question) return this.end(new CommitReaderError('an answer of git cat-file nobody asked for'));
    clearTimeout(question.timer);
    if (this.questions.length === 0) unrefStream(this.child.stdout);
    question.done(found);
  }

  private end(error: Error): void {
    if (this.closed) return;
    this.closed = true;
    this.child.kill('SIGKILL');
    for (const question of this.questions.splice(0)) {
      clearTimeout(question.timer);
      question.reject(error);
    }
    unrefStream(this.child.stdout);
    this.onEnd();
  }
}

/**
 * The commits of one git directory, read through one `git cat-file --batch` started on first
 * use and ended `idleMs` after the last answer.
 */
export class CommitReader {
  private current: CatFileProcess | undefined;
  private idleTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly gitDir: string,
    private readonly idleMs = 30_000,
  ) {}

  /** The cat-file process's pid, if one runs (for tests). */
  get pid(): number | undefined {
    return this.current?.closed === false ? this.current.pid : undefined;
  }

  /**
   * The commit `sha` (a full sha-1 or sha-256; a tag's is peeled) with its message and author;
   * undefined when the directory has no such commit. Rejects with a {@link CommitReaderError}
   * when the process cannot answer (it died, or it could not start): ask git another way.
   */
  async lookup(sha: string): Promise<CommitLookup> {
    if (!FULL_SHA.test(sha)) throw new CommitReaderError(`not a full sha: ${sha}`);
    return this.using((process) => process.ask(sha));
  }

  /**
   * The object `sha` (a full sha, not peeled) as stored: its type and whole body, taken from
   * `budget`; 'too big' when more than what is left of the budget (the object is not held);
   * undefined when missing. Reads are answered in the order asked, so many may be asked at
   * once. Rejects with a {@link CommitReaderError} as {@link lookup} does.
   */
  async read(sha: string, budget: ReadBudget): Promise<RawObject | 'too big' | undefined> {
    if (!FULL_SHA.test(sha)) throw new CommitReaderError(`not a full sha: ${sha}`);
    return this.using((process) => process.readObject(sha, budget));
  }

  private async using<T>(ask: (process: CatFileProcess) => Promise<T>): Promise<T> {
    clearTimeout(this.idleTimer);
    if (!this.current || this.current.closed) {
      const started = new CatFileProcess(this.gitDir, () => {
        if (this.current === started) this.current = undefined;
      });
      this.current = started;
    }
    try {
      return await ask(this.current);
    } finally {
      this.idleSoon();
    }
  }

  /** Ends the process now (a later lookup starts another). */
  close(): void {
    clearTimeout(this.idleTimer);
    this.current?.close();
    this.current = undefined;
  }

  private idleSoon(): void {
    clearTimeout(this.idleTimer);
    if (this.current?.busy) return;
    this.idleTimer = setTimeout(() => {
      if (!this.current?.busy) this.close();
    }, this.idleMs);
    this.idleTimer.unref();
  }
}

/**
 * The author and message of a raw commit object (what `git log --format=%an%x00%ae%x00%B`
 * gives, capped as {@link parseCommitInfo} caps it): headers up to the first empty line,
 * continuation lines (a `gpgsig`, a `mergetag`) start with a space; the message follows, in
 * the commit's `encoding` when it names one Node knows, else UTF-8.
 */
export function parseCommit(raw: Buffer): CommitInfo {
  const blank = raw.indexOf('\n\n');
  const head = raw.subarray(0, blank < 0 ? raw.length : blank);
  const body = blank < 0 ? Buffer.alloc(0) : raw.subarray(blank + 2);
  let author: Buffer | undefined;
  let encoding = 'utf-8';
  for (let at = 0; at < head.length;) {
    const nl = head.indexOf(0x0a, at);
    const end = nl < 0 ? head.length : nl;
    const line = head.subarray(at, end);
    at = end + 1;
    if (line[0] === 0x20) continue; // a continuation line
    if (author === undefined && startsWith(line, 'author ')) author = line.subarray(7);
    else if (startsWith(line, 'encoding ')) encoding = line.subarray(9).toString('latin1').trim();
  }
  const decode = decoderOf(encoding);
  // `Name <e-mail> 1700000000 +0000`: the name before the first `<`, the address up to the `>`.
  const ident = author === undefined ? '' : decode(author);
  const open = ident.indexOf('<');
  const close = open < 0 ? -1 : ident.indexOf('>', open);
  const name = open < 0 ? ident : ident.slice(0, open);
  const email = open < 0 || close < 0 ? '' : ident.slice(open + 1, close);
  // More bytes than any cut message needs are decoded: a kept prefix may end inside a character.
  const message = decode(body.subarray(0, MAX_MESSAGE_CHARS * 4 + 4)).trim();
  return {
    message: message.length <= MAX_MESSAGE_CHARS ? message : `${message.slice(0, MAX_MESSAGE_CHARS - 1)}…`,
    author: authorLine(name, email),
  };
}

function decoderOf(label: string): (bytes: Buffer) => string {
  try {
    const decoder = new TextDecoder(label);
    return (bytes) => decoder.decode(bytes);
  } catch {
    // An encoding Node does not know: read as UTF-8, as git would show it without iconv.
    return (bytes) => bytes.toString('utf8');
  }
}

function startsWith(line: Buffer, text: string): boolean {
  return line.length >= text.length && line.toString('latin1', 0, text.length) === text;
}

/** One reader per git directory. */
const readers = new Map<string, CommitReader>();

export function commitReaderOf(gitDir: string): CommitReader {
  let reader = readers.get(gitDir);
  if (reader === undefined) {
    reader = new CommitReader(gitDir);
    readers.set(gitDir, reader);
  }
  return reader;
}

/** Ends the reader of `gitDir`, if any: its directory is about to change under it or go. */
export function closeCommitReader(gitDir: string): void {
  readers.get(gitDir)?.close();
  readers.delete(gitDir);
}

function ref(stream: unknown): void {
  (stream as { ref?: () => void } | null)?.ref?.();
}
