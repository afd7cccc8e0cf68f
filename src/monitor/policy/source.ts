/**
 * A policy file as a tree of located values: every map key, list item and scalar knows its line and column,
 * whether the file was YAML (node ranges from the `yaml` package) or JSON (a small strict parser of our own,
 * so a syntax error has an exact position too). Validation (load.ts) works on this tree only.
 */
import { isAlias, isMap, isPair, isScalar, isSeq, LineCounter, parseDocument, type Node as YamlNode } from 'yaml';

export interface Pos {
  readonly line: number;
  readonly col: number;
}

export type Scalar = string | number | boolean | null;

export type Located =
  | { readonly kind: 'map'; readonly pos: Pos; readonly entries: readonly { readonly key: string; readonly keyPos: Pos; readonly value: Located }[] }
  | { readonly kind: 'seq'; readonly pos: Pos; readonly items: readonly Located[] }
  | { readonly kind: 'scalar'; readonly pos: Pos; readonly value: Scalar };

/** A syntax error at a position, before any rule is known. */
export class SourceSyntaxError extends Error {
  constructor(
    message: string,
    readonly pos: Pos,
  ) {
    super(message);
  }
}

const MAX_DEPTH = 64;

// ---- YAML ---------------------------------------------------------------------------------------------

export function parseYaml(text: string): Located {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true, strict: true });
  const at = (offset: number | undefined): Pos => {
    const p = lineCounter.linePos(offset ?? 0);
    return { line: Math.max(1, p.line), col: Math.max(1, p.col) };
  };
  const err = doc.errors[0];
  if (err) throw new SourceSyntaxError(err.message.split('\n')[0]!, at(err.pos[0]));
  if (doc.contents === null) throw new SourceSyntaxError('the file is empty', { line: 1, col: 1 });
  const convert = (node: unknown, depth: number): Located => {
    const n = node as YamlNode | null;
    const pos = at(n?.range?.[0]);
    if (depth > MAX_DEPTH) throw new SourceSyntaxError('nested too deeply', pos);
    if (isAlias(n)) throw new SourceSyntaxError('YAML aliases (*name) are not supported in a policy', pos);
    if (isMap(n)) {
      const entries = n.items.map((pair) => {
        if (!isPair(pair)) throw new SourceSyntaxError('unexpected map item', pos);
        const keyNode = pair.key as YamlNode | null;
        const keyPos = at(keyNode?.range?.[0]);
        if (!isScalar(keyNode) || keyNode.value === null || typeof keyNode.value === 'object') throw new SourceSyntaxError('a map key must be a plain name', keyPos);
        const value = pair.value === null ? { kind: 'scalar' as const, pos: keyPos, value: null } : convert(pair.value, depth + 1);
        return { key: String(keyNode.value), keyPos, value };
      });
      return { kind: 'map', pos, entries };
    }
    if (isSeq(n)) return { kind: 'seq', pos, items: n.items.map((i) => convert(i, depth + 1)) };
    if (isScalar(n)) {
      const v = n.value;
      if (v === null || typeof v === 'string' || typeof v === 'boolean') return { kind: 'scalar', pos, value: v };
      if (typeof v === 'number') return { kind: 'scalar', pos, value: v };
      if (typeof v === 'bigint') return { kind: 'scalar', pos, value: Number(v) };
      throw new SourceSyntaxError(`unsupported YAML value (${Object.prototype.toString.call(v)})`, pos);
    }
    throw new SourceSyntaxError('unsupported YAML node', pos);
  };
  return convert(doc.contents, 0);
}

// ---- JSON ---------------------------------------------------------------------------------------------

/** Strict JSON (RFC 8259) with positions; duplicate keys are an error, as in the YAML reader. */
export function parseJson(text: string): Located {
  let i = 0;
  let line = 1;
  let lineStart = 0;
  const pos = (): Pos => ({ line, col: i - lineStart + 1 });
  const fail = (message: string, at: Pos = pos()): never => {
    throw new SourceSyntaxError(message, at);
  };
  const describe = () => (i >= text.length ? 'end of file' : `'${text[i]}'`);
  const ws = () => {
    while (i < text.length) {
      const c = text[i];
      if (c === '\n') {
        i++;
        line++;
        lineStart = i;
      } else if (c === ' ' || c === '\t' || c === '\r') i++;
      else break;
    }
  };
  const str = (): string => {
    const start = pos();
    i++; // opening quote
    let out = '';
    for (;;) {
      if (i >= text.length) fail('unterminated string', start);
      const c = text[i]!;
      if (c === '"') {
        i++;
        return out;
      }
      if (c === '\n' || c < ' ') fail('control character in a string (escape it)');
      if (c === '\\') {
        const e = text[i + 1];
        const simple: Record<string, string> = { '"': '"', '\\': '\\', '/': '/', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t' };
        if (e !== undefined && simple[e] !== undefined) {
          out += simple[e];
          i += 2;
        } else if (e === 'u' && /^[0-9a-fA-F]{4}$/.test(text.slice(i + 2, i + 6))) {
          out += String.fromCharCode(parseInt(text.slice(i + 2, i + 6), 16));
          i += 6;
        } else fail('bad escape in a string');
      } else {
        out += c;
        i++;
      }
    }
  };
  const value = (depth: number): Located => {
    ws();
    const at = pos();
    if (depth > MAX_DEPTH) fail('nested too deeply');
    const c = text[i];
    if (c === '{') {
      i++;
      const entries: { key: string; keyPos: Pos; value: Located }[] = [];
      const seen = new Set<string>();
      ws();
      if (text[i] === '}') {
        i++;
        return { kind: 'map', pos: at, entries };
      }
      for (;;) {
        ws();
        const keyPos = pos();
        if (text[i] !== '"') fail(`expected a quoted key, found ${describe()}`);
        const key = str();
        if (seen.has(key)) fail(`duplicate key '${key}'`, keyPos);
        seen.add(key);
        ws();
        if (text[i] !== ':') fail(`expected ':' after key '${key}', found ${describe()}`);
        i++;
        entries.push({ key, keyPos, value: value(depth + 1) });
        ws();
        if (text[i] === ',') {
          i++;
          continue;
        }
        if (text[i] === '}') {
          i++;
          return { kind: 'map', pos: at, entries };
        }
        fail(`expected ',' or '}', found ${describe()}`);
      }
    }
    if (c === '[') {
      i++;
      const items: Located[] = [];
      ws();
      if (text[i] === ']') {
        i++;
        return { kind: 'seq', pos: at, items };
      }
      for (;;) {
        items.push(value(depth + 1));
        ws();
        if (text[i] === ',') {
          i++;
          continue;
        }
        if (text[i] === ']') {
          i++;
          return { kind: 'seq', pos: at, items };
        }
        fail(`expected ',' or ']', found ${describe()}`);
      }
    }
    if (c === '"') return { kind: 'scalar', pos: at, value: str() };
    const m = /^-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/.exec(text.slice(i, i + 400));
    if (m && m[0] !== '-') {
      i += m[0].length;
      return { kind: 'scalar', pos: at, value: Number(m[0]) };
    }
    for (const [word, v] of [['true', true], ['false', false], ['null', null]] as const) {
      if (text.startsWith(word, i)) {
        i += word.length;
        return { kind: 'scalar', pos: at, value: v };
      }
    }
    return fail(i >= text.length ? 'unexpected end of file' : `unexpected ${describe()}`);
  };
  if (text.charCodeAt(0) === 0xfeff) i = 1;
  const root = value(0);
  ws();
  if (i < text.length) fail(`unexpected ${describe()} after the end of the document`);
  return root;
}
