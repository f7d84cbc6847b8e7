/**
 * `wait-port`: done when host:port accepts a TCP connection (`localhost` tries 127.0.0.1 and ::1).
 * Polls every 25 ms, so an opening port is noticed well within 50 ms.
 */
import { TaskError, type TaskContext, type TaskKind, type TaskResult } from '../src/model/kind.js';
import { fail, formatMs } from '../src/model/failure.js';
import { abortError } from '../src/process/proc.js';
import { formatAddress, toDuration, toPort, waitPort } from '../src/process/probes.js';

export interface WaitPortWith {
  /** default localhost */
  host?: string;
  port: number | string;
  /** default 30s */
  timeout?: unknown;
}

const DEFAULT_TIMEOUT_MS = 30_000;

async function run(ctx: TaskContext<WaitPortWith>): Promise<TaskResult> {
  const host = ctx.with.host || 'localhost';
  const port = toPort(ctx.with.port, 'with.port');
  const timeoutMs = toDuration(ctx.with.timeout, DEFAULT_TIMEOUT_MS, 'with.timeout');
  const address = formatAddress(host, port);
  const outcome = await waitPort(host, port, { timeoutMs, signal: ctx.signal });
  switch (outcome.status) {
    case 'ready':
      return { outputs: { address }, summary: `${address} accepted a connection after ${formatMs(outcome.elapsedMs)}` };
    case 'timeout':
      throw new TaskError(fail.portTimeout(host, port, timeoutMs, outcome.lastProbe));
    case 'aborted':
    case 'exited':
      throw abortError(ctx.signal);
  }
}

const waitPortKind: TaskKind<WaitPortWith> = { name: 'wait-port', mode: 'oneshot', run };
export default waitPortKind;
