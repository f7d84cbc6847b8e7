/**
 * How `stigmer llm pull` shows Ollama's progress: a redrawn bar per layer on a terminal, plain
 * lines (`pulling 6a0746a1ec1a: 45%`, one per 10 % step) anywhere else.
 */
import type { PullProgress } from './ollama.js';
import { formatBytes } from '../../util/format.js';
import { etaSeconds, formatEta, rateMeter, type RateMeter } from '../../util/rate.js';

export interface PullView {
  update(p: PullProgress): void;
  /** end the current line (before printing anything else) */
  finish(): void;
}

function percent(p: PullProgress): number | undefined {
  if (!p.total) return undefined;
  return Math.min(100, Math.floor(((p.completed ?? 0) / p.total) * 100));
}

/** Plain lines for logs and CI: each status once, each layer at every 10 % step. */
export function plainPullView(writeLine: (line: string) => void): PullView {
  const meters = new Map<string, RateMeter>();
  const lastStep = new Map<string, number>();
  let lastStatus = '';
  return {
    update(p) {
      if (p.status === 'success') return;
      const pct = percent(p);
      if (pct === undefined) {
        if (p.status !== lastStatus) writeLine(p.status);
        lastStatus = p.status;
        return;
      }
      lastStatus = p.status;
      const speed = speedOf(meters, p);
      const step = Math.floor(pct / 10);
      if ((lastStep.get(p.status) ?? -1) >= step) return;
      lastStep.set(p.status, step);
      writeLine(`${p.status}: ${pct}%${speed}`);
    },
    finish() {
      // every line is already complete
    },
  };
}

/** ", 12 MB/s, 1m05s left" for a layer in progress, from its own rate meter. */
function speedOf(meters: Map<string, RateMeter>, p: PullProgress): string {
  if (!p.total || (p.completed ?? 0) >= p.total) return '';
  let m = meters.get(p.status);
  if (!m) meters.set(p.status, (m = rateMeter()));
  const rate = m.sample(p.completed ?? 0);
  if (rate === undefined) return '';
  const eta = etaSeconds(p.completed ?? 0, p.total, rate);
  return `, ${formatBytes(Math.round(rate), 'decimal')}/s${eta !== undefined ? `, ${formatEta(eta)} left` : ''}`;
}

/** One redrawn line per layer with a bar, speed and time left; a new status starts a new line. */
export function ttyPullView(stream: { write(s: string): unknown; columns?: number }): PullView {
  const meters = new Map<string, RateMeter>();
  let current = '';
  let open = false;
  let drawnAt = 0;
  const close = (): void => {
    if (open) stream.write('\n');
    open = false;
  };
  return {
    update(p) {
      if (p.status === 'success') return;
      const pct = percent(p);
      // Ollama reports every ~60 ms per layer; redraw at most ~12 times a second.
      const now = Date.now();
      if (p.status === current && pct !== undefined && pct < 100 && now - drawnAt < 80) return;
      drawnAt = now;
      if (p.status !== current) close();
      current = p.status;
      let line = p.status;
      if (pct !== undefined) {
        // Guard a terminal that reports width 0 (some CI terminals do).
        const columns = stream.columns && stream.columns > 20 ? stream.columns : 80;
        const sizes = `${formatBytes(p.completed ?? 0, 'decimal')}/${formatBytes(p.total!, 'decimal')}`;
        const speed = speedOf(meters, p);
        const barWidth = Math.max(10, Math.min(40, columns - p.status.length - sizes.length - speed.length - 12));
        const filled = Math.round((pct / 100) * barWidth);
        line = `${p.status} ${'█'.repeat(filled)}${'░'.repeat(barWidth - filled)} ${String(pct).padStart(3)}% ${sizes}${speed}`;
      }
      stream.write(`\r\u001b[2K${line}`);
      open = true;
    },
    finish: close,
  };
}
