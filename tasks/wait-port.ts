/**
 * `wait-port`: done when host:port accepts a TCP connection (`localhost` tries 127.0.0.1 and ::1).
 * The `wait` kind's `tcp` probe under its older name and shape, kept so existing tasks files work.
 * Polls every 25 ms, so an opening port is noticed well within 50 ms.
 */
import type { TaskContext, TaskKind, TaskResult } from '../src/model/kind.js';
import { toPort } from '../src/process/probes.js';
import { runWait } from './wait.js';

export interface WaitPortWith {
  /** default localhost */
  host?: string;
  port: number | string;
  /** default 30s */
  timeout?: unknown;
}

async function run(ctx: TaskContext<WaitPortWith>): Promise<TaskResult> {
  const { host, port, timeout } = ctx.with;
  toPort(port, 'with.port');
  // its own parameters beside the engine's context, whole (a spread of it drops its signal and methods: they live on its class)
  return runWait(ctx, { tcp: { host: host || 'localhost', port }, timeout });
}

const waitPortKind: TaskKind<WaitPortWith> = { name: 'wait-port', mode: 'oneshot', run };
export default waitPortKind;
