import { formatBytes } from '../util/format.js';
import type { Progress } from '../model/kind.js';

/** "[########----------] 45% 20.1 MiB of 45.3 MiB" (bar only when the total is known) */
export function formatProgress(p: Progress, width = 20): string {
  const fmt = p.unit === 'bytes' ? formatBytes : String;
  if (!p.total) return `${fmt(p.done)}`;
  const frac = Math.max(0, Math.min(1, p.done / p.total));
  const filled = Math.round(frac * width);
  return `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${Math.floor(frac * 100)}% ${fmt(p.done)} of ${fmt(p.total)}`;
}

export function clock(t: number): string {
  return new Date(t).toISOString().slice(11, 23);
}
