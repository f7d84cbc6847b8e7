/** Durations and sizes as people read them, in messages, task lines and tables. */

/** "250 ms", "1.2 s", "45 s", "2 min" */
export function formatMs(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 120_000) return `${(ms / 1000).toFixed(ms < 10_000 ? 1 : 0)} s`;
  return `${Math.round(ms / 60_000)} min`;
}

const BINARY = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
const DECIMAL = ['B', 'KB', 'MB', 'GB', 'TB'];

/**
 * A byte count. `binary` (the default, for downloads): "512 B", "20.1 KiB", "45.3 MiB", one
 * decimal. `decimal`, as Ollama prints model sizes: "999 B", "4.7 GB", "274 MB" (a decimal below 10).
 */
export function formatBytes(n: number, units: 'binary' | 'decimal' = 'binary'): string {
  const names = units === 'binary' ? BINARY : DECIMAL;
  const step = units === 'binary' ? 1024 : 1000;
  let v = n;
  let i = 0;
  while (v >= step && i < names.length - 1) {
    v /= step;
    i++;
  }
  if (i === 0) return `${v} B`;
  return `${v.toFixed(units === 'decimal' && v >= 10 ? 0 : 1)} ${names[i]}`;
}
