/**
 * File diagnostics: `file:line:col: message`, the offending line, and a caret under the text.
 */
export interface Diagnostic {
  file: string;
  line: number;
  col: number;
  message: string;
  /** length of the text to underline (>= 1) */
  length?: number;
}

/** At most this many diagnostics are printed; the rest are counted ("and N more"). */
export const MAX_SHOWN = 50;
/** Longer source lines are shown as a window around the column. */
const MAX_LINE = 160;

/**
 * Control, bidi and zero-width characters as escapes (`\x00`, `\u202e`): a file must not be able
 * to drive the terminal or hide text in an error message.
 */
export function printable(text: string): string {
  return text.replace(/[\x00-\x08\x0a-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2066-\u2069\ufeff]/g, (c) => {
    const code = c.charCodeAt(0);
    return code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
  });
}

/** `file:line:col: message`, the line (escaped, windowed when long) and a caret under the text. */
export function formatDiagnostic(d: Diagnostic, source: string | readonly string[]): string {
  const lines = typeof source === 'string' ? source.split(/\r?\n/) : source;
  const full = lines[d.line - 1] ?? '';
  // the window of the line that is shown, around the column
  const from = full.length > MAX_LINE ? Math.max(0, Math.min(d.col - 1 - MAX_LINE / 4, full.length - MAX_LINE)) : 0;
  const to = Math.min(full.length, from + MAX_LINE);
  const start = Math.min(Math.max(0, d.col - 1), full.length);
  const width = Math.max(1, Math.min(d.length ?? 1, to - start));
  const before = printable(full.slice(from, start));
  const under = printable(full.slice(start, start + width));
  const text = `${from > 0 ? '…' : ''}${before}${printable(full.slice(start, to))}${to < full.length ? '…' : ''}`;
  // tabs stay tabs under the text so the caret lines up in any terminal
  const pad = `${from > 0 ? ' ' : ''}${before.replace(/[^\t]/g, ' ')}`;
  const gutter = String(d.line).length;
  return [
    `${d.file}:${d.line}:${d.col}: ${printable(d.message)}`,
    `  ${' '.repeat(gutter)} |`,
    `  ${d.line} | ${text}`,
    `  ${' '.repeat(gutter)} | ${pad}${'^'.repeat(Math.max(1, under.length))}`,
  ].join('\n');
}

/** Every diagnostic of one file in file order: the first MAX_SHOWN printed, the rest counted. */
export function formatDiagnostics(ds: Diagnostic[], source: string, max: number = MAX_SHOWN): string {
  const lines = source.split(/\r?\n/);
  const sorted = [...ds].sort((a, b) => a.line - b.line || a.col - b.col);
  const shown = sorted.slice(0, max);
  const body = shown.map((d) => formatDiagnostic(d, lines)).join('\n\n');
  const more = sorted.length > shown.length ? `\n\n... and ${sorted.length - shown.length} more` : '';
  return `${body}${more}\n\n${sorted.length} error${sorted.length === 1 ? '' : 's'} in ${sorted[0]?.file ?? 'file'}`;
}

/**
 * `d` whose message gains ` (did you mean "x"?)` when first read. A file with thousands of errors
 * prints only MAX_SHOWN of them, so only those pay for a search over every candidate.
 */
export function suggesting(d: Diagnostic, word: string, candidates: () => Iterable<string>): Diagnostic {
  const base = d.message;
  let message: string | undefined;
  return Object.defineProperty({ ...d }, 'message', {
    enumerable: true,
    get: () => (message ??= base + didYouMean(word, candidates())),
  });
}

/** Edit distance counting a swap of two neighbours as one edit (optimal string alignment). */
function distance(a: string, b: string): number {
  let prev2: number[] = [];
  let prev: number[] = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row: number[] = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(prev[j]! + 1, row[j - 1]! + 1, prev[j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) v = Math.min(v, prev2[j - 2]! + 1);
      row.push(v);
    }
    prev2 = prev;
    prev = row;
  }
  return prev[b.length]!;
}

/** ` (did you mean "x"?)` or "" */
export function didYouMean(word: string, candidates: Iterable<string>): string {
  const limit = Math.max(1, Math.floor(word.length / 3));
  const w = word.toLowerCase();
  let best: string | undefined;
  let bestD = Infinity;
  for (const c of candidates) {
    // the distance is at least the difference in length: skip the ones that cannot qualify
    if (Math.abs(c.length - word.length) > limit) continue;
    const d = distance(w, c.toLowerCase());
    if (d < bestD) {
      bestD = d;
      best = c;
    }
  }
  return best !== undefined && bestD <= limit ? ` (did you mean "${best}"?)` : '';
}
