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

export function formatDiagnostic(d: Diagnostic, source: string): string {
  const lines = source.split(/\r?\n/);
  const text = lines[d.line - 1] ?? '';
  const width = Math.max(1, Math.min(d.length ?? 1, Math.max(1, text.length - d.col + 1)));
  const gutter = String(d.line).length;
  return [
    `${d.file}:${d.line}:${d.col}: ${d.message}`,
    `  ${' '.repeat(gutter)} |`,
    `  ${d.line} | ${text}`,
    `  ${' '.repeat(gutter)} | ${' '.repeat(Math.max(0, d.col - 1))}${'^'.repeat(width)}`,
  ].join('\n');
}

export function formatDiagnostics(ds: Diagnostic[], source: string): string {
  const sorted = [...ds].sort((a, b) => a.line - b.line || a.col - b.col);
  const body = sorted.map((d) => formatDiagnostic(d, source)).join('\n\n');
  return `${body}\n\n${sorted.length} error${sorted.length === 1 ? '' : 's'} in ${sorted[0]?.file ?? 'file'}`;
}

/** Levenshtein distance, for "did you mean". */
function distance(a: string, b: string): number {
  const prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let diag = prev[0]!;
    prev[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = prev[j]!;
      prev[j] = Math.min(prev[j]! + 1, prev[j - 1]! + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
      diag = tmp;
    }
  }
  return prev[b.length]!;
}

/** ` (did you mean "x"?)` or "" */
export function didYouMean(word: string, candidates: Iterable<string>): string {
  let best: string | undefined;
  let bestD = Infinity;
  for (const c of candidates) {
    const d = distance(word.toLowerCase(), c.toLowerCase());
    if (d < bestD) {
      bestD = d;
      best = c;
    }
  }
  return best !== undefined && bestD <= Math.max(2, Math.floor(word.length / 3)) ? ` (did you mean "${best}"?)` : '';
}
