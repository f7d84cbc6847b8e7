/**
 * `wait`: a one-shot wait for something this run did not start, with the same probes a service's
 * `ready` block has: `tcp` (a port accepts a connection), `http` (a GET answers a status) or
 * `grpc` (grpc.health.v1.Health/Check answers SERVING; for Temporal, DescribeNamespace too).
 *
 * The first failed attempt is shown at once ("connection refused (...)"), then every change and
 * the time waited, so a wrong address is plain long before the deadline. An answer that waiting
 * cannot change (refused credentials, TLS, an unknown namespace) fails at once.
 */
import { TaskError, type TaskContext, type TaskKind, type TaskResult } from '../src/model/kind.js';
import { fail } from '../src/model/failure.js';
import { formatMs } from '../src/util/format.js';
import { abortError } from '../src/process/proc.js';
import { describeProbe, parseProbe, waitReady, type ProbeSpec } from '../src/process/probes.js';
import { formatAddress } from '../src/util/address.js';

export type WaitWith = Pick<ProbeSpec, 'tcp' | 'http' | 'grpc' | 'interval' | 'timeout'>;

/** How often an unchanged failure is shown again, with the time waited. */
const SHOW_EVERY_MS = 1000;

/** The wait; `w` its parameters (wait-port passes its own: the engine's context is a class, which a copy of it with another `with` would lose). */
export async function runWait(ctx: TaskContext<unknown>, w: WaitWith = ctx.with as WaitWith): Promise<TaskResult> {
  const given = (['tcp', 'http', 'grpc'] as const).filter((k) => w[k] !== undefined && w[k] !== null);
  if (given.length !== 1) {
    throw new TaskError(fail.invalidInput(`Expected with to have exactly one of tcp, http or grpc, got ${given.length ? given.join(', ') : 'none'}`));
  }
  const spec: ProbeSpec = { [given[0]!]: w[given[0]!], interval: w.interval, timeout: w.timeout };
  const { probe, intervalMs, timeoutMs } = parseProbe(spec, { logFile: ctx.logFile, logOffset: 0, cwd: ctx.baseDir, env: ctx.env }, 'with');
  const address =
    probe.kind === 'tcp' ? formatAddress(probe) : probe.kind === 'grpc' ? probe.spec.address : probe.kind === 'http' ? new URL(probe.url).host : '';

  const started = performance.now();
  let shown = '';
  let shownAt = 0;
  const outcome = await waitReady(probe, {
    signal: ctx.signal,
    intervalMs,
    timeoutMs,
    onAttempt: (r) => {
      const now = performance.now();
      if (r.detail === shown && now - shownAt < SHOW_EVERY_MS) return;
      ctx.output(shownAt === 0 ? `${r.detail}; waiting up to ${formatMs(timeoutMs)}` : `${r.detail}; waited ${formatMs(now - started)} of ${formatMs(timeoutMs)}`);
      shown = r.detail;
      shownAt = now;
    },
  });
  switch (outcome.status) {
    case 'ready': {
      const summary = probe.kind === 'tcp' ? `${address} accepted a connection after ${formatMs(outcome.elapsedMs)}` : `ready after ${formatMs(outcome.elapsedMs)} (${outcome.detail})`;
      return { outputs: { address }, summary, lastProbe: outcome.detail };
    }
    case 'rejected':
      throw new TaskError(fail.probeRejected(describeProbe(probe), outcome.detail, outcome.hint));
    case 'timeout':
      if (probe.kind === 'tcp') throw new TaskError(fail.portTimeout(probe.host, probe.port, timeoutMs, outcome.lastProbe));
      throw new TaskError(fail.waitTimeout(address, probe.kind === 'grpc' ? 'SERVING' : `HTTP ${probe.kind === 'http' ? probe.status : ''}`.trim(), timeoutMs, outcome.lastProbe));
    case 'aborted':
    case 'exited':
      throw abortError(ctx.signal);
  }
}

const waitKind: TaskKind<WaitWith> = { name: 'wait', mode: 'oneshot', run: (ctx) => runWait(ctx) };
export default waitKind;
