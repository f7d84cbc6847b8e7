import { formatBytes } from '../util/format.js';
import type { Progress } from '../model/kind.js';
import { etaSeconds, formatEta } from '../util/rate.js';

/** "[########----------] 45% 20.1 MiB of 45.3 MiB, 3.2 MiB/s, 8s left" (bar only when the total is known; speed and time left once a rate is known) */
export function formatProgress(p: Progress, width = 20): string {
  const fmt = p.unit === 'bytes' ? formatBytes : String;
  const speed = p.rate !== undefined && p.done < (p.total ?? Infinity) ? `, ${fmt(Math.round(p.rate))}/s` : '';
  if (!p.total) return `${fmt(p.done)}${speed}`;
  const frac = Math.max(0, Math.min(1, p.done / p.total));
  const filled = Math.round(frac * width);
  const eta = etaSeconds(p.done, p.total, p.rate);
  return `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${Math.floor(frac * 100)}% ${fmt(p.done)} of ${fmt(p.total)}${speed}${eta !== undefined && p.done < p.total ? `, ${formatEta(eta)} left` : ''}`;
}

let lastClock = { t: NaN, text: '' };

/** "HH:MM:SS.mmm" (UTC); events come in bursts within one millisecond, so the last one is kept. */
export function clock(t: number): string {
  if (t !== lastClock.t) lastClock = { t, text: new Date(t).toISOString().slice(11, 23) };
  return lastClock.text;
}
