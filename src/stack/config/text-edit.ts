/**
 * Editing `config.yaml` as text, so that everything but the changed line stays byte for byte:
 * comments stay with the key or section they belong to, and a key the template shows commented
 * out (`# port: 7233   # gRPC frontend`) is set by uncommenting that very line.
 *
 * yaml's Document API keeps comments too, but re-attaches them on output: a commented block at
 * the end of one section (`# server:` under `local:`) moves into the section before it, and new
 * keys land after it. Here yaml only locates the nodes; the edit is a splice of lines.
 *
 * A commented line counts as a key at its *logical* indentation: the spaces before `#`, plus any
 * after `# ` beyond the first (`    #   command:` is a key at column 6, under `    # server:`).
 *
 * Both functions return undefined for a layout they do not handle (a flow map, an empty file, a
 * block sequence as the value): the caller then falls back to the Document API.
 */
import { isMap, isScalar, parseDocument, type Node, type Pair, type YAMLMap } from 'yaml';

interface Located {
  /** the maps along the path that exist, root first */
  maps: YAMLMap[];
  /** the key nodes that own each map (undefined for the root) */
  owners: (Node | undefined)[];
  /** the pair of path[maps.length - 1] in the last map, when the whole path exists */
  pair: Pair | undefined;
}

type Lines = string[];

const COMMENTED = /^(\s*)#( +)(.*)$/;

function locate(source: string, path: string[]): Located | undefined {
  const doc = parseDocument(source);
  if (doc.errors.length) return undefined;
  let node: unknown = doc.contents;
  const maps: YAMLMap[] = [];
  const owners: (Node | undefined)[] = [];
  let owner: Node | undefined;
  for (let i = 0; i < path.length; i++) {
    if (!isMap(node) || node.flow || !node.items.length) return undefined;
    maps.push(node);
    owners.push(owner);
    const pair = node.items.find((p) => isScalar(p.key) && String(p.key.value) === path[i]);
    if (!pair) return { maps, owners, pair: undefined };
    if (i === path.length - 1) return { maps, owners, pair };
    node = pair.value;
    owner = pair.key as Node;
  }
  return undefined;
}

/** Line index of a character offset. */
function lineOf(source: string, offset: number): number {
  let n = 0;
  for (let i = 0; i < offset && i < source.length; i++) if (source.charCodeAt(i) === 10) n++;
  return n;
}

function indentOf(line: string): number {
  return line.length - line.trimStart().length;
}

/** The column and text of a commented line, e.g. `    #   command: x` -> { indent: 6, text: 'command: x' }. */
function commented(line: string): { indent: number; text: string } | undefined {
  const m = COMMENTED.exec(line);
  if (!m) return undefined;
  return { indent: m[1]!.length + m[2]!.length - 1, text: m[3]! };
}

/** `key: value   # comment` -> the comment part, with the column it starts at in `text`. */
function tailComment(text: string): { col: number; comment: string } | undefined {
  const m = /\s(#\s.*)$/.exec(text);
  return m ? { col: m.index + 1, comment: m[1]! } : undefined;
}

/** `head`, then `comment` at the column it had (or two spaces after the head). */
function withComment(head: string, comment: { col: number; comment: string } | undefined): string {
  if (!comment) return head;
  return `${head.padEnd(Math.max(head.length + 2, comment.col))}${comment.comment}`;
}

function lastLineOf(source: string, map: YAMLMap): number {
  const last = map.items[map.items.length - 1]!;
  const value = last.value as Node | null;
  const end = value?.range ? value.range[1] : (last.key as Node).range![1];
  return lineOf(source, Math.max(0, end - 1));
}

/**
 * The lines a map's block spans, trailing commented keys at its own indentation included
 * (in the template they are the section's defaults).
 */
function region(lines: Lines, source: string, map: YAMLMap, owner: Node | undefined): { first: number; last: number; indent: number } {
  const firstKey = map.items[0]!.key as Node;
  const indent = indentOf(lines[lineOf(source, firstKey.range![0])]!);
  // Commented keys before the first real one belong to the section too (`# endpoint:` under `local:`).
  const first = owner ? lineOf(source, owner.range![0]) + 1 : 0;
  let last = lastLineOf(source, map);
  for (let i = last + 1; i < lines.length; i++) {
    const c = commented(lines[i]!);
    if (!c || c.indent < indent) break;
    last = i;
  }
  return { first, last, indent };
}

/** Index of the commented line `# <key>:` at `indent` within [from, to], if any. */
function findCommented(lines: Lines, key: string, indent: number, from: number, to: number): number | undefined {
  const re = new RegExp(`^${key.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:(\\s|$)`);
  for (let i = from; i <= to && i < lines.length; i++) {
    const c = commented(lines[i]!);
    if (c && c.indent === indent && re.test(c.text)) return i;
  }
  return undefined;
}

/** The end of a commented section that starts at `at`: lines commented deeper than `indent`. */
function commentedBlockEnd(lines: Lines, at: number, indent: number): number {
  let end = at;
  for (let i = at + 1; i < lines.length; i++) {
    const c = commented(lines[i]!);
    if (!c || c.indent <= indent) break;
    end = i;
  }
  return end;
}

function splitLines(source: string): { lines: Lines; eol: string } {
  return { lines: source.split('\n'), eol: '\n' };
}

/** `source` with `path` set to `valueText` (a YAML scalar or flow collection), or undefined. */
export function setInSource(source: string, path: string[], valueText: string): string | undefined {
  const found = locate(source, path);
  if (!found) return undefined;
  const { lines } = splitLines(source);
  if (found.pair) {
    const value = found.pair.value as Node | null;
    if (!isScalar(value) || !value.range || value.value === null) return undefined;
    // `provider: ollama   # ollama | anthropic`: the comment after the value keeps its column.
    let after = source.slice(value.range[1]);
    const gap = /^( +)#/.exec(after);
    if (gap) {
      const spaces = gap[1]!.length;
      const grown = valueText.length - (value.range[1] - value.range[0]);
      after = ' '.repeat(Math.max(Math.min(2, spaces), spaces - grown)) + after.slice(spaces);
    }
    return source.slice(0, value.range[0]) + valueText + after;
  }
  const map = found.maps[found.maps.length - 1]!;
  const rest = path.slice(found.maps.length - 1);
  const r = region(lines, source, map, found.owners[found.owners.length - 1]);
  const out = [...lines];
  let indent = r.indent;
  let from = r.first;
  let to = r.last;
  let insertAt = r.last + 1;
  const added: string[] = [];
  for (let i = 0; i < rest.length; i++) {
    const key = rest[i]!;
    const leaf = i === rest.length - 1;
    const at = added.length ? undefined : findCommented(out, key, indent, from, to);
    if (at !== undefined) {
      const text = commented(out[at]!)!.text;
      const tail = tailComment(text);
      const pad = ' '.repeat(indent);
      // The text of `# key: v  # c` starts two columns right of the key's column: keep `# c` where it was.
      out[at] = withComment(leaf ? `${pad}${key}: ${valueText}` : `${pad}${key}:`, tail && { col: tail.col + indent + 2, comment: tail.comment });
      if (leaf) return out.join('\n');
      from = at + 1;
      to = commentedBlockEnd(out, at, indent);
      insertAt = at + 1;
      indent += 2;
      continue;
    }
    added.push(`${' '.repeat(indent)}${key}:${leaf ? ` ${valueText}` : ''}`);
    indent += 2;
  }
  out.splice(insertAt, 0, ...added);
  return out.join('\n');
}

/**
 * `source` without `path`: its line becomes `commentLine` (the template's commented default for
 * the key, re-indented), keeping a comment the user had on it. A section left with no key is
 * commented out the same way. Undefined when the key is not in the file as a one-line scalar.
 */
export function unsetInSource(source: string, path: string[], commentLine: (key: string) => string | undefined): string | undefined {
  const found = locate(source, path);
  if (!found?.pair) return found ? source : undefined;
  const { lines } = splitLines(source);
  const out = [...lines];
  let pair: Pair = found.pair;
  for (let depth = path.length - 1; depth >= 0; depth--) {
    const map = found.maps[depth]!;
    const keyNode = pair.key as Node;
    const line = lineOf(source, keyNode.range![0]);
    const value = pair.value as Node | null;
    const isLeaf = depth === path.length - 1;
    if (isLeaf && (!isScalar(value) || lineOf(source, Math.max(keyNode.range![0], (value.range?.[1] ?? 1) - 1)) !== line)) return undefined;
    const indent = indentOf(out[line]!);
    const key = path.slice(0, depth + 1).join('.');
    const userTail = tailComment(out[line]!.trimStart());
    const template = isLeaf ? commentLine(key) : undefined;
    const head = template ?? `${path[depth]}:${isLeaf && isScalar(value) ? ` ${String(value.value)}` : ''}`;
    const templateTail = tailComment(head);
    const bare = templateTail ? head.slice(0, templateTail.col).trimEnd() : head;
    // Columns on the page: the user's comment stays where it is; the template's sits as in the template.
    const tail = userTail ? { col: userTail.col + indent, comment: userTail.comment } : templateTail && { col: templateTail.col + indent + 2, comment: templateTail.comment };
    out[line] = withComment(`${' '.repeat(indent)}# ${bare}`, tail);
    // Deeper lines of a commented-out section become commented keys at their logical column.
    if (!isLeaf) {
      for (let i = line + 1; i < out.length; i++) {
        const l = out[i]!;
        if (l.trim() === '') break;
        const c = commented(l);
        const ind = c ? c.indent : indentOf(l);
        if (ind <= indent) break;
        const text = c ? c.text : l.trimStart();
        const tail = tailComment(text);
        const head = `${' '.repeat(indent)}#${' '.repeat(ind - indent + 1)}${tail ? text.slice(0, tail.col).trimEnd() : text}`;
        // the comment at the end keeps its column on the page
        out[i] = withComment(head, tail && { col: tail.col + (c ? ind + 2 : ind), comment: tail.comment });
      }
    }
    if (map.items.length > 1 || depth === 0) break;
    pair = found.maps[depth - 1]!.items.find((p) => isScalar(p.key) && String(p.key.value) === path[depth - 1])!;
  }
  return out.join('\n');
}

/**
 * `source` without the one-line scalar `path` (its line removed outright: a value that was only
 * the old provider's default). Undefined when that would leave its section empty.
 */
export function removeInSource(source: string, path: string[]): string | undefined {
  const found = locate(source, path);
  if (!found?.pair) return found ? source : undefined;
  const map = found.maps[found.maps.length - 1]!;
  const value = found.pair.value as Node | null;
  const keyNode = found.pair.key as Node;
  const line = lineOf(source, keyNode.range![0]);
  if (map.items.length < 2 || !isScalar(value) || !value.range || lineOf(source, Math.max(keyNode.range![0], value.range[1] - 1)) !== line) return undefined;
  const out = source.split('\n');
  out.splice(line, 1);
  return out.join('\n');
}

/** The commented line of `key` in the template text (without its indentation), if it has one. */
export function templateLine(template: string, key: string): string | undefined {
  const path = key.split('.');
  const lines = template.split('\n');
  let indent = 0;
  let from = 0;
  for (let i = 0; i < path.length; i++) {
    const re = new RegExp(`^${path[i]!.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:(\\s|$)`);
    let at: number | undefined;
    for (let j = from; j < lines.length; j++) {
      const l = lines[j]!;
      const c = commented(l);
      const ind = c ? c.indent : indentOf(l);
      const text = c ? c.text : l.trimStart();
      if (l.trim() !== '' && ind < indent) break;
      if (ind === indent && re.test(text)) {
        at = j;
        break;
      }
    }
    if (at === undefined) return undefined;
    if (i === path.length - 1) return commented(lines[at]!)?.text ?? lines[at]!.trimStart();
    from = at + 1;
    indent += 2;
  }
  return undefined;
}
