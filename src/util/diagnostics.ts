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

/** Edit distance counting a swap of two neighbours as one edit (optimal string alignment). */
function distance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) v = Math.min(v, d[i - 2]![j - 2]! + 1);
      d[i]![j] = v;
    }
  }
  return d[a.length]![b.length]!;
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
  return best !== undefined && bestD <= Math.max(1, Math.floor(word.length / 3)) ? ` (did you mean "${best}"?)` : '';
}
