/**
 * One line per event, for CI logs and pipes: no spinners, no cursor movement, no ANSI unless
 * FORCE_COLOR is set. Each line carries the task name.
 */
import type { EngineEvent } from '../model/event.js';
import { describeFailure } from '../model/failure.js';
import { mask } from '../util/mask.js';
import { unreachable } from '../util/errors.js';
import { clock, formatProgress } from './format.js';
import { formatMs } from '../util/format.js';
import type { Renderer } from './types.js';

export function createPlainRenderer(out: NodeJS.WritableStream = process.stdout, opts: { timestamps?: boolean } = {}): Renderer {
  const color = !!process.env['FORCE_COLOR'] && process.env['FORCE_COLOR'] !== '0';
  const paint = (code: string, s: string): string => (color ? `\u001b[${code}m${s}\u001b[0m` : s);
  const lastPct = new Map<string, number>();
  const write = (ev: EngineEvent, text: string): void => {
    const ts = opts.timestamps === false ? '' : `${clock(ev.time)} `;
    out.write(mask(`${ts}${ev.task}: ${text}\n`));
  };
  return {
    event(ev) {
      const took = 'durationMs' in ev ? ` (${formatMs(ev.durationMs)})` : '';
      switch (ev.type) {
        case 'queued':
          return;
        case 'started':
          return write(ev, 'started');
        case 'output':
          return write(ev, `| ${ev.line}`);
        case 'progress': {
          const p = ev.progress;
          const pct = p.total ? Math.floor((p.done / p.total) * 10) : -1;
          if (pct === lastPct.get(ev.task)) return;
          lastPct.set(ev.task, pct);
          return write(ev, formatProgress(p));
        }
        case 'ready':
        case 'done':
          return write(ev, paint('32', `${ev.satisfied ? `${ev.type} (already ${ev.type === 'ready' ? 'running' : 'done'}, reused)` : ev.type}${ev.satisfied ? '' : took}${ev.summary ? `: ${ev.summary}` : ''}`));
        case 'skipped':
          return write(ev, paint('33', `skipped: ${ev.why}`));
        case 'failed':
          return write(ev, paint(ev.optional ? '33' : '31', `${ev.optional ? 'warning' : 'FAILED'}: ${describeFailure(ev.failure).message}${took}`));
        case 'cancelled':
          return write(ev, paint('33', `cancelled: ${ev.why}`));
        case 'undo-started':
          return write(ev, 'undoing');
        case 'undone':
          return write(ev, `undone${took}`);
        case 'undo-failed':
          return write(ev, paint('31', `undo FAILED: ${describeFailure(ev.failure).message}`));
        default:
          return unreachable(ev, 'engine event');
      }
    },
    async end() {},
  };
}
