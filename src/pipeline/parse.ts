/**
 * Text → YAML document: syntax errors, and the checks that must hold before the document can
 * be validated at all (one document, a mapping at the top).
 */
import { isMap, isScalar, parseAllDocuments, type Document, type YAMLError, type YAMLMap } from 'yaml';
import { gotPhrase } from './describe.js';
import type { PipelineError } from './errors.js';
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
  const docs = parseAllDocuments(src.text, {
    lineCounter: src.lineCounter,
    prettyErrors: false,
    merge: true,
  });
  const errors: PipelineError[] = [];
  const warnings: PipelineError[] = [];
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
  // After a real syntax error the parser's best guess at the rest would only add noise.
  if (doc.errors.some((e) => e.code !== 'DUPLICATE_KEY')) return { errors, warnings };

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

function syntaxMessage(text: string, e: YAMLError): string {
  if (e.code === 'DUPLICATE_KEY') {
    const key = /^[^:\n]*/.exec(text.slice(e.pos[0]))?.[0].trim() ?? '';
    return `duplicate key ${JSON.stringify(key)}; a key may appear only once in a mapping`;
  }
  // `commands: [echo ${X}]` is the classic: in flow lists `{` starts a mapping.
  const line =
    (text.slice(0, e.pos[0]).split('\n').pop() ?? '') + (text.slice(e.pos[0]).split('\n', 1)[0] ?? '');
  const hint = /[[{].*\$\{/.test(line) ? ' (inside [ ] or { }, quote values that contain ${...})' : '';
  return `YAML syntax error: ${e.message}${hint}`;
}

function isEmpty(node: unknown): boolean {
  return node === null || (isScalar(node) && node.value === null);
}
