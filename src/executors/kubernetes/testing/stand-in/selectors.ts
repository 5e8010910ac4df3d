/**
 * Label and field selectors as the API server parses them (`k8s.io/apimachinery/pkg/labels` and
 * `fields`): a bad selector is a 400 BadRequest, as on a real server.
 */
import { badRequest } from './status.js';

export type Labels = Record<string, string> | undefined;

const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;
const NAME_PART = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/** Why `key` is not a valid label key (a qualified name), or undefined. */
export function labelKeyError(key: string): string | undefined {
  const slash = key.indexOf('/');
  const name = slash < 0 ? key : key.slice(slash + 1);
  const prefix = slash < 0 ? undefined : key.slice(0, slash);
  if (prefix !== undefined && (prefix.length > 253 || !DNS_SUBDOMAIN.test(prefix))) {
    return `prefix part a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character`;
  }
  if (name.length === 0 || name.length > 63 || !NAME_PART.test(name)) {
    return `name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') and be at most 63 characters`;
  }
  return undefined;
}

/** Why `value` is not a valid label value, or undefined. */
export function labelValueError(value: string): string | undefined {
  if (value.length > 63) return 'must be no more than 63 characters';
  if (!LABEL_VALUE.test(value)) {
    return `a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')`;
  }
  return undefined;
}

/** Splits on commas outside parentheses. */
function requirements(selector: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < selector.length; i++) {
    const c = selector[i];
    if (c === '(') depth++;
    else if (c === ')') depth--;
    else if (c === ',' && depth === 0) {
      parts.push(selector.slice(start, i));
      start = i + 1;
    }
  }
  parts.push(selector.slice(start));
  return parts.map((p) => p.trim());
}

/** `a=b,c!=d,e in (f,g),h notin (i),j,!k,l>3` → a predicate on an object's labels. */
export function parseLabelSelector(selector: string | null): (labels: Labels) => boolean {
  if (!selector || selector.trim() === '') return () => true;
  const tests: ((labels: Record<string, string>) => boolean)[] = [];
  for (const req of requirements(selector)) {
    tests.push(parseRequirement(req));
  }
  return (labels) => tests.every((t) => t(labels ?? {}));
}

function parseRequirement(req: string): (labels: Record<string, string>) => boolean {
  const fail = (why: string) => badRequest(`unable to parse requirement: ${why}`);
  const checkKey = (key: string) => {
    const e = labelKeyError(key);
    if (e) throw fail(`<nil>: Invalid value: "${key}": ${e}`);
  };
  const checkValue = (key: string, value: string) => {
    const e = labelValueError(value);
    if (e) throw fail(`values[0][${key}]: Invalid value: "${value}": ${e}`);
  };
  if (req === '') throw fail("found '', expected: !, identifier, or 'end of string'");
  let m = /^!\s*([^\s=!<>(),]+)$/.exec(req);
  if (m) {
    const key = m[1]!;
    checkKey(key);
    return (l) => !(key in l);
  }
  m = /^([^\s=!<>(),]+)\s+(in|notin)\s*\(([^()]*)\)$/.exec(req);
  if (m) {
    const key = m[1]!;
    checkKey(key);
    const values = m[3]!.split(',').map((v) => v.trim());
    for (const v of values) checkValue(key, v);
    const set = new Set(values);
    return m[2] === 'in' ? (l) => key in l && set.has(l[key]!) : (l) => !(key in l) || !set.has(l[key]!);
  }
  m = /^([^\s=!<>(),]+)\s*(==|=|!=)\s*([^\s=!<>(),]*)$/.exec(req);
  if (m) {
    const key = m[1]!;
    const value = m[3]!;
    checkKey(key);
    checkValue(key, value);
    return m[2] === '!=' ? (l) => l[key] !== value : (l) => l[key] === value;
  }
  m = /^([^\s=!<>(),]+)\s*(<|>)\s*(-?\d+)$/.exec(req);
  if (m) {
    const key = m[1]!;
    checkKey(key);
    const bound = Number(m[3]);
    const gt = m[2] === '>';
    return (l) => {
      if (!(key in l) || !/^-?\d+$/.test(l[key]!)) return false;
      const n = Number(l[key]);
      return gt ? n > bound : n < bound;
    };
  }
  m = /^([^\s=!<>(),]+)$/.exec(req);
  if (m) {
    const key = m[1]!;
    checkKey(key);
    return (l) => key in l;
  }
  throw fail(`found '${req}', expected: ',' or 'end of string'`);
}

/**
 * `metadata.name=x,type!=Normal` against the fields a resource supports (`fields` gives each
 * supported field's value); an unsupported field is 400 `field label not supported: <f>`.
 */
export function parseFieldSelector<T>(
  selector: string | null,
  fields: Record<string, (object: T) => string>,
): (object: T) => boolean {
  if (!selector || selector.trim() === '') return () => true;
  const tests: ((o: T) => boolean)[] = [];
  for (const req of selector.split(',')) {
    const m = /^\s*([^=!\s]+)\s*(==|=|!=)\s*(.*?)\s*$/.exec(req);
    if (!m) throw badRequest(`invalid selector: '${selector}'; can't understand '${req}'`);
    const get = fields[m[1]!];
    if (!get) throw badRequest(`field label not supported: ${m[1]!}`);
    const value = m[3]!;
    tests.push(m[2] === '!=' ? (o) => get(o) !== value : (o) => get(o) === value);
  }
  return (o) => tests.every((t) => t(o));
}
