/**
 * Text → YAML document: syntax errors, and the checks that must hold before the document can
 * be validated at all (one document, a mapping at the top).
 */
import {
  Composer,
  isMap,
  isNode,
  isScalar,
  Lexer,
  Parser,
  visit,
  type CST,
  type Document,
  type YAMLError,
  type YAMLMap,
} from 'yaml';
import { gotPhrase } from './describe.js';
import type { PipelineError } from './errors.js';
import { MAX_DEPTH } from './limits.js';
import type { PipelineSource } from './source.js';

/** The parsed file, or why it cannot be validated. */
export interface ParsedPipeline {
  /** The document and its root mapping; absent when nothing more can be checked. */
  doc?: Document.Parsed;
  root?: YAMLMap;
  errors: PipelineError[];
  warnings: PipelineError[];
}

/** An empty file reads as an empty mapping, and says the same as one. */
const MISSING_FORM = 'missing required key "stages" or "steps" at the top level';

/**
 * Parses the file as YAML 1.2 (core schema, so `yes` is a string, not a boolean) with merge
 * keys (`<<: *defaults`) enabled, as GitLab CI users expect them.
 */
export function parsePipelineYaml(src: PipelineSource): ParsedPipeline {
  const errors: PipelineError[] = [];
  const warnings: PipelineError[] = [];
  const tokens = parseShallow(src);
  if (!Array.isArray(tokens)) {
    const message = `mappings and lists nest more than ${MAX_DEPTH} levels deep here; a pipeline file may nest them at most ${MAX_DEPTH} levels deep`;
    errors.push(src.error('limit_exceeded', src.pos(tokens.tooDeepAt), '', message));
    return { errors, warnings };
  }
  // yaml's own duplicate check compares each key with all before it: 50,000 keys took minutes.
  const docs = Array.from(new Composer({ merge: true, uniqueKeys: false }).compose(tokens));
  // A stray `---` at the end makes an empty document: harmless, so not an error.
  const extra = docs.slice(1).find((d) => !isEmpty(d.contents) || d.errors.length > 0);
  if (extra) {
    errors.push(
      src.error(
        'multi_document',
        src.pos(extra.range[0]),
        '',
        'expected one YAML document, found more than one (remove the "---" separator)',
      ),
    );
  }
  const doc = docs[0];
  if (doc === undefined) {
    errors.push(src.error('required', { line: 1, col: 1 }, '', MISSING_FORM));
    return { errors, warnings };
  }

  for (const w of doc.warnings)
    warnings.push(src.error('yaml_warning', src.pos(w.pos[0]), '', `YAML: ${w.message}`));
  for (const e of doc.errors)
    errors.push(src.error('yaml_syntax', src.pos(e.pos[0]), '', syntaxMessage(src.text, e)));
  for (const offset of duplicateKeys(doc))
    errors.push(src.error('yaml_syntax', src.pos(offset), '', duplicateKeyMessage(src.text, offset)));
  // After a real syntax error the parser's best guess at the rest would only add noise.
  if (doc.errors.length > 0) return { errors, warnings };

  const root = doc.contents;
  if (isEmpty(root)) {
    errors.push(src.error('required', src.nodePos(root), '', MISSING_FORM));
    return { errors, warnings };
  }
  if (!isMap(root)) {
    const message = `expected a mapping with "stages" or "steps" at the top level, got ${gotPhrase(root, false)}`;
    errors.push(src.error('type', src.nodePos(root), '', message));
    return { errors, warnings };
  }
  return { doc, root, errors, warnings };
}

/**
 * What `parseAllDocuments` does before composing (lexer → CST), stopping as soon as the nesting
 * gets deeper than `MAX_DEPTH`: composing recurses per level, and a 20,000-deep file kept the
 * event loop for seconds before overflowing the stack. Fills `src.lineCounter`.
 */
const COLLECTIONS = new Set<string>(['block-map', 'block-seq', 'flow-collection']);

function parseShallow(src: PipelineSource): CST.Token[] | { tooDeepAt: number } {
  const parser = new Parser(src.lineCounter.addNewLine);
  const tokens: CST.Token[] = [];
  src.lineCounter.addNewLine(0); // as Parser.parse() does: the first line starts at 0
  for (const lexeme of new Lexer().lex(src.text)) {
    for (const token of parser.next(lexeme)) tokens.push(token);
    // The parser's stack holds the document, each open collection and the token being read.
    if (parser.stack.length <= MAX_DEPTH + 1) continue;
    const open = parser.stack.filter((t) => COLLECTIONS.has(t.type));
    if (open.length > MAX_DEPTH) {
      return { tooDeepAt: Math.min(open[MAX_DEPTH]?.offset ?? parser.offset, src.text.length) };
    }
  }
  for (const token of parser.end()) tokens.push(token);
  return tokens;
}

/** Where each repeated key of a mapping is written (after the first), in one pass per mapping. */
function duplicateKeys(doc: Document.Parsed): number[] {
  const offsets: number[] = [];
  visit(doc, {
    Map(_, map) {
      // Keys compare as yaml does: the same node, or scalars with equal values (`1` is not `"1"`).
      const seen = new Set<unknown>();
      for (const { key } of map.items) {
        const id: unknown = isScalar(key) ? key.value : key;
        if (seen.has(id) && isNode(key) && key.range) offsets.push(key.range[0]);
        seen.add(id);
      }
    },
  });
  return offsets;
}

function duplicateKeyMessage(text: string, offset: number): string {
  const key = /^[^:\n]*/.exec(text.slice(offset, offset + 1000))?.[0].trim() ?? '';
  return `duplicate key ${JSON.stringify(key)}; a key may appear only once in a mapping`;
}

function syntaxMessage(text: string, e: YAMLError): string {
  // `commands: [echo ${X}]` is the classic: in flow lists `{` starts a mapping.
  // The line of the error, found around it (a whole-text split per error is quadratic).
  const start = text.lastIndexOf('\n', e.pos[0] - 1) + 1;
  const end = text.indexOf('\n', e.pos[0]);
  const line = text.slice(start, end < 0 ? text.length : end);
  const hint = /[[{].*\$\{/.test(line) ? ' (inside [ ] or { }, quote values that contain ${...})' : '';
  return `YAML syntax error: ${e.message}${hint}`;
}

function isEmpty(node: unknown): boolean {
  return node === null || (isScalar(node) && node.value === null);
}
