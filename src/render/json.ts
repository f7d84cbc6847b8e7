/**
 * `--output json`: one JSON object per line on stdout, for scripts:
 * {"event":"started","task":"start-server","timestamp":"...","duration_ms":12.3,...}
 *
 * A failure is `error`: its reason, its own typed fields (port and holder, url and sha256s, exit
 * code and log tail, ...), the rendered `message` and `hint`, and `log` (the log file). Never
 * a stack trace.
 */
import type { EngineEvent } from '../model/event.js';
import { describeFailure, type Failure } from '../model/failure.js';
import { maskDeep } from '../util/mask.js';
import { unreachable } from '../util/errors.js';
import type { Renderer } from './types.js';

const ms = (d: number): number => Math.round(d * 10) / 10;

function errorOf(f: Failure): Record<string, unknown> {
  const { message, hint } = describeFailure(f);
  const fields: Record<string, unknown> = { ...f };
  delete fields['stack'];
  delete fields['logFile'];
  return { ...fields, message, ...(hint ? { hint } : {}), ...('logFile' in f && f.logFile ? { log: f.logFile } : {}) };
}

/** The event's own fields, as JSON names; undefined for events too chatty for this output. */
function fieldsOf(ev: EngineEvent): Record<string, unknown> | undefined {
  switch (ev.type) {
    case 'output':
      return undefined; // chatty; in the logs
    case 'queued':
      return { needs: ev.needs };
    case 'started':
    case 'undo-started':
      return {};
    case 'progress':
      return { progress: ev.progress };
    case 'ready':
    case 'done':
      return { duration_ms: ms(ev.durationMs), ...(ev.satisfied ? { satisfied: true } : {}), ...(ev.summary ? { summary: ev.summary } : {}) };
    case 'skipped':
      return { why: ev.why };
    case 'cancelled':
      return { duration_ms: ms(ev.durationMs), why: ev.why };
    case 'failed':
      return { duration_ms: ms(ev.durationMs), ...(ev.optional ? { optional: true } : {}), error: errorOf(ev.failure) };
    case 'undone':
      return { duration_ms: ms(ev.durationMs) };
    case 'undo-failed':
      return { error: errorOf(ev.failure) };
    default:
      return unreachable(ev, 'engine event');
  }
}

const NAMES: Partial<Record<EngineEvent['type'], string>> = { 'undo-started': 'undoing' };

export function createJsonRenderer(out: NodeJS.WritableStream = process.stdout): Renderer {
  return {
    event(ev) {
      const fields = fieldsOf(ev);
      if (!fields) return;
      const rec = { event: NAMES[ev.type] ?? ev.type, task: ev.task, timestamp: new Date(ev.time).toISOString(), ...fields };
      out.write(JSON.stringify(maskDeep(rec)) + '\n');
    },
    async end() {},
  };
}
