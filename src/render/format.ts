import { formatMs } from '../model/failure.js';
import type { Progress } from '../model/kind.js';

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

/** "[########----------] 45% 20.1 MiB of 45.3 MiB" (bar only when the total is known) */
export function formatProgress(p: Progress, width = 20): string {
  const fmt = p.unit === 'bytes' ? formatBytes : String;
  if (!p.total) return `${fmt(p.done)}`;
  const frac = Math.max(0, Math.min(1, p.done / p.total));
  const filled = Math.round(frac * width);
  return `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${Math.floor(frac * 100)}% ${fmt(p.done)} of ${fmt(p.total)}`;
}

export { formatMs };

export function clock(t: number): string {
  return new Date(t).toISOString().slice(11, 23);
}
