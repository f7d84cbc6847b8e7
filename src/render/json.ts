/**
 * `--output json`: one JSON object per line on stdout, for scripts:
 * {"event":"started","task":"start-server","timestamp":"...","duration_ms":12.3,...}
 */
import type { EngineEvent } from '../model/event.js';
import { maskDeep } from '../util/mask.js';
import type { Renderer } from './types.js';

const NAMES: Record<string, string> = { 'undo-started': 'undoing', 'undo-failed': 'undo-failed' };

export function createJsonRenderer(out: NodeJS.WritableStream = process.stdout): Renderer {
  return {
    event(ev) {
      if (ev.type === 'output' || ev.type === 'waiting') return; // chatty; in the logs
      const rec: Record<string, unknown> = { event: NAMES[ev.type] ?? ev.type, task: ev.task, timestamp: new Date(ev.time).toISOString() };
      if (ev.durationMs !== undefined) rec['duration_ms'] = Math.round(ev.durationMs * 10) / 10;
      if (ev.reason) rec['reason'] = ev.reason;
      if (ev.needs) rec['needs'] = ev.needs;
      if (ev.satisfied) rec['satisfied'] = true;
      if (ev.optional) rec['optional'] = true;
      if (ev.summary) rec['summary'] = ev.summary;
      if (ev.progress) rec['progress'] = ev.progress;
      if (ev.failure) rec['error'] = { reason: ev.failure.reason, message: ev.failure.message, ...(ev.failure.hint ? { hint: ev.failure.hint } : {}), ...(ev.failure.logFile ? { log: ev.failure.logFile } : {}) };
      out.write(JSON.stringify(maskDeep(rec)) + '\n');
    },
    async end() {},
  };
}
