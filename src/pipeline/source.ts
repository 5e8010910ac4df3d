/**
 * Positions in the pipeline file: from byte offsets and YAML nodes to 1-based line/column,
 * including the column of a character inside a scalar (so `${FOO}` errors point at `${`).
 */
import { LineCounter, isScalar, visit, type Document, type Node, type Scalar } from 'yaml';
import type { PipelineError, PipelineErrorCode } from './errors.js';
import type { SourcePos } from './types.js';

/**
 * A position that may name its file: positions in included files do (`include.ts`), so that
 * an error found after the files were merged still points into the file it is about.
 */
export interface FilePos extends SourcePos {
  file?: string;
}

/** The text of one pipeline file, with what is needed to turn offsets into positions. */
export class PipelineSource {
  /** Filled by the YAML parser (pass it as its `lineCounter` option). */
  readonly lineCounter = new LineCounter();
  /** The nodes of included files compiled with this one, by the file they were read from. */
  private owners: WeakMap<Node, PipelineSource> | undefined;

  /**
   * `included`: a file taken in by `include:`; its positions name it (the main file's do not,
   * so plans and errors of files without includes stay as they were).
   */
  constructor(
    readonly file: string,
    readonly text: string,
    readonly included = false,
  ) {}

  pos(offset: number): FilePos {
    const { line, col } = this.lineCounter.linePos(offset);
    return this.included ? { line, col, file: this.file } : { line, col };
  }

  /**
   * Makes the nodes of `doc` (an included file's) answer `nodePos`/`valuePos` of this source
   * with positions in `from`: the passes after the merge hold nodes of every file.
   */
  adopt(doc: Document, from: PipelineSource): void {
    const owners = (this.owners ??= new WeakMap());
    visit(doc, {
      Node(_, node) {
        owners.set(node, from);
      },
    });
  }

  /** Where a node starts; the start of the file for the rare node without a range. */
  nodePos(node: Node | null | undefined): FilePos {
    const owner = node ? this.owners?.get(node) : undefined;
    if (owner !== undefined && owner !== this) return owner.nodePos(node);
    return this.pos(node?.range?.[0] ?? 0);
  }

  /**
   * Where the character at `index` of a scalar's value was written. Exact for single-line
   * plain and quoted scalars and for literal blocks (`|`); for scalars whose lines are folded,
   * the scalar's start, because there a value offset has no single place in the source.
   */
  valuePos(node: Node | null | undefined, index: number): FilePos {
    const owner = node ? this.owners?.get(node) : undefined;
    if (owner !== undefined && owner !== this) return owner.valuePos(node, index);
    if (!isScalar(node) || !node.range || typeof node.value !== 'string') return this.nodePos(node);
    const offset = this.valueOffset(node, node.value, index);
    return this.pos(offset ?? node.range[0]);
  }

  /** An error at `at`, in the file `at` names (an included one), else in this one. */
  error(code: PipelineErrorCode, at: FilePos, path: string, message: string): PipelineError {
    return { code, file: at.file ?? this.file, line: at.line, col: at.col, path, message };
  }

  private valueOffset(node: Scalar, value: string, index: number): number | undefined {
    const [start, end] = node.range ?? [0, 0];
    const raw = this.text.slice(start, end);
    switch (node.type) {
      case 'PLAIN':
        return raw === value ? start + index : undefined;
      case 'QUOTE_SINGLE':
        return raw.includes('\n') ? undefined : quotedOffset(raw, index, singleQuotedUnit, start);
      case 'QUOTE_DOUBLE':
        return raw.includes('\n') ? undefined : quotedOffset(raw, index, doubleQuotedUnit, start);
      case 'BLOCK_LITERAL':
        return this.literalBlockOffset(start, end, value, index);
      default:
        return undefined;
    }
  }

  /** Literal blocks keep lines as written, minus one common indentation. */
  private literalBlockOffset(start: number, end: number, value: string, index: number): number | undefined {
    const header = this.text.slice(start, this.text.indexOf('\n', start) + 1 || end);
    // An explicit indentation indicator (`|2`) is relative to the parent: rare, not worth it.
    if (!header.endsWith('\n') || /^[|>][-+]?\d/.test(header)) return undefined;
    const bodyStart = start + header.length;
    const body = this.text.slice(bodyStart, end);
    const indent = /^( *)\S/m.exec(body)?.[1]?.length;
    if (indent === undefined) return undefined;
    const before = value.slice(0, index).split('\n');
    const lineNo = before.length - 1;
    const colInLine = before[lineNo]?.length ?? 0;
    const bodyLines = body.split('\n');
    const sourceLine = bodyLines[lineNo];
    const valueLine = value.split('\n')[lineNo];
    // Sanity check: the source line must read like the value line, else give up politely.
    if (sourceLine === undefined || valueLine === undefined || sourceLine.slice(indent) !== valueLine)
      return undefined;
    let offset = bodyStart;
    for (let i = 0; i < lineNo; i++) offset += (bodyLines[i]?.length ?? 0) + 1;
    return offset + indent + colInLine;
  }
}

/** Length in the source of the escape or character starting at `i`, and what it decodes to in UTF-16 units. */
type UnitReader = (raw: string, i: number) => { srcLen: number; valueLen: number };

const singleQuotedUnit: UnitReader = (raw, i) =>
  raw[i] === "'" && raw[i + 1] === "'" ? { srcLen: 2, valueLen: 1 } : { srcLen: 1, valueLen: 1 };

const doubleQuotedUnit: UnitReader = (raw, i) => {
  if (raw[i] !== '\\') return { srcLen: 1, valueLen: 1 };
  const hexLen: Record<string, number> = { x: 2, u: 4, U: 8 };
  const n = hexLen[raw[i + 1] ?? ''];
  if (n === undefined) return { srcLen: 2, valueLen: 1 };
  const code = parseInt(raw.slice(i + 2, i + 2 + n), 16);
  return { srcLen: 2 + n, valueLen: code > 0xffff ? 2 : 1 };
};

/** Source offset of value index `index` in a single-line quoted scalar whose raw text is `raw`. */
function quotedOffset(raw: string, index: number, unit: UnitReader, start: number): number | undefined {
  let i = 1; // after the opening quote
  let v = 0;
  while (v < index && i < raw.length - 1) {
    const { srcLen, valueLen } = unit(raw, i);
    i += srcLen;
    v += valueLen;
  }
  return v === index ? start + i : undefined;
}
