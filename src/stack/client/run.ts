/**
 * `stigmer agent run`: submit an execution, print its output as it streams in, end with its
 * final status. Interrupted (the signal aborts) -> cancel it on the server.
 *
 * The event stream replays everything on each connection, so after a dropped connection the
 * stream is reopened and the part already printed is skipped. When the execution restarts on
 * another runner (re-queued: output reset, a new attempt) the new attempt's output follows a
 * note on stderr, since what was already printed cannot be taken back.
 */
import { ApiError, UnreachableError, type StigmerClient } from './index.js';
import type { ExecutionStatus } from '../server/model.js';

export type RunOutcome =
  /** the execution succeeded; its output was printed */
  | { kind: 'succeeded'; id: string }
  /** the execution failed; the reason was printed */
  | { kind: 'failed'; id: string; error: string }
  /** someone else cancelled it */
  | { kind: 'cancelled'; id: string }
  /** the server went away mid-stream and did not come back; the execution may still be running */
  | { kind: 'lost'; id: string }
  /** the signal aborted the run; the execution was cancelled (when it had been created) */
  | { kind: 'interrupted'; id: string | null };

export interface RunIo {
  signal: AbortSignal;
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  /** how long to keep reconnecting to a server that went away (default 10 s) */
  reconnectMs?: number;
}

const sleep = (ms: number, signal: AbortSignal): Promise<void> =>
  new Promise((resolve) => {
    const t = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
    function done(): void {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    }
  });

export async function runExecution(client: StigmerClient, agent: string, message: string, io: RunIo): Promise<RunOutcome> {
  const { signal } = io;
  let id: string;
  try {
    id = (await client.createExecution(agent, message, { signal })).id;
  } catch (err) {
    if (signal.aborted) return { kind: 'interrupted', id: null };
    throw err;
  }

  let attempt = 0;
  let printed = 0;
  let lastChar = '\n';
  let final: { status: ExecutionStatus; error: string | null; warning?: string } | undefined;
  let lostSince: number | undefined;
  const write = (text: string): void => {
    if (text === '') return;
    io.stdout(text);
    lastChar = text[text.length - 1]!;
  };

  while (!final && !signal.aborted) {
    let seen = 0; // output of the current attempt received on this connection
    try {
      for await (const ev of client.events(id, { signal })) {
        lostSince = undefined;
        if (ev.type === 'status') {
          const restarted = ev.status === 'queued' || ev.attempt !== attempt;
          if (restarted && printed > 0) {
            if (lastChar !== '\n') write('\n');
            io.stderr(`stigmer: execution ${id} was handed back to the queue; its output starts again\n`);
          }
          if (restarted) printed = 0;
          attempt = ev.attempt;
          seen = 0;
        } else if (ev.type === 'chunk') {
          const end = seen + ev.text.length;
          if (end > printed) write(ev.text.slice(Math.max(0, printed - seen)));
          printed = Math.max(printed, end);
          seen = end;
        } else {
          final = { status: ev.status, error: ev.error, ...(ev.warning !== undefined ? { warning: ev.warning } : {}) };
        }
      }
    } catch (err) {
      if (signal.aborted) break;
      if (err instanceof ApiError) throw err;
      if (!(err instanceof UnreachableError)) throw err;
    }
    if (final || signal.aborted) break;
    // The stream ended early (server restart, dropped connection): reconnect for a while.
    lostSince ??= Date.now();
    if (Date.now() - lostSince > (io.reconnectMs ?? 10_000)) {
      if (lastChar !== '\n') write('\n');
      io.stderr(`stigmer: lost the connection to stigmer-server at ${client.address} while streaming execution ${id} (it may still be running)\n`);
      return { kind: 'lost', id };
    }
    await sleep(200, signal);
  }

  if (!final) {
    // Interrupted: cancel on the server, whatever state the stream was in.
    if (lastChar !== '\n') write('\n');
    try {
      const e = await client.cancelExecution(id, { timeoutMs: 5000 });
      if (e.status === 'cancelled') io.stderr(`stigmer: execution ${id} cancelled\n`);
      else io.stderr(`stigmer: execution ${id} had already ${e.status === 'succeeded' ? 'succeeded' : e.status}\n`);
    } catch (err) {
      io.stderr(`stigmer: could not cancel execution ${id}: ${(err as Error).message}\n`);
    }
    return { kind: 'interrupted', id };
  }

  if (lastChar !== '\n') write('\n');
  switch (final.status) {
    case 'succeeded':
      if (final.warning) io.stderr(`stigmer: warning: execution ${id}: ${final.warning}\n`);
      return { kind: 'succeeded', id };
    case 'cancelled':
      io.stderr(`stigmer: execution ${id} was cancelled\n`);
      return { kind: 'cancelled', id };
    default: {
      const error = final.error ?? `ended with status ${final.status}`;
      io.stderr(`stigmer: execution ${id} failed: ${error}\n`);
      return { kind: 'failed', id, error };
    }
  }
}
