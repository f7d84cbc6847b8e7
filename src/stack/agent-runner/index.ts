/**
 * The reference agent-runner, run as `stigmer internal agent-runner`. This file is its process
 * entry: it reads the environment, checks Temporal and the server, prints `agent-runner ready`,
 * and owns the signal handlers.
 *
 *   env check --(bad)--> exit 2
 *   temporal gRPC --(deadline)--> exit 1     server /healthz --(deadline)--> exit 1
 *   claiming ... SIGTERM/SIGINT/SIGHUP -> stop claiming -> in-flight finish within the grace,
 *   else released -> exit 0 (a second signal releases at once)
 *
 * Executions run directly against the LLM provider; Temporal is only checked for reachability
 * (running executions as Temporal workflows is not part of the reference runner).
 */
import type { Agent } from 'undici';
import { EXIT } from '../../util/errors.js';
import { formatMs } from '../../util/format.js';
import { mask, registerSecret } from '../../util/mask.js';
import { loadUndici } from '../llm/http.js';
import { readRunnerEnv, RunnerEnvError, type RunnerConfig } from './env.js';
import { waitForServer, waitForTemporal } from './probe.js';
import { Runner } from './runner.js';
import { StigmerClient } from '../client/index.js';
import { formatAddress } from '../../util/address.js';

export { readRunnerEnv, RunnerEnvError, type RunnerConfig } from './env.js';

export interface RunnerIo {
  out: NodeJS.WritableStream;
  err: NodeJS.WritableStream;
}

const SIGNALS = ['SIGTERM', 'SIGINT', 'SIGHUP'] as const;

/** Run the agent-runner until a signal; resolves to the exit code. */
export async function runAgentRunner(env: NodeJS.ProcessEnv = process.env, io: RunnerIo = { out: process.stdout, err: process.stderr }): Promise<number> {
  let config: RunnerConfig;
  try {
    config = readRunnerEnv(env);
  } catch (e) {
    if (e instanceof RunnerEnvError) {
      io.err.write(`agent-runner: ${mask(e.message)}\n`);
      return EXIT.usage;
    }
    throw e;
  }
  registerSecret(config.llm.apiKey);
  const log = (line: string): void => void io.out.write(`${mask(line)}\n`);
  const fatal = (line: string): number => {
    io.err.write(`agent-runner: ${mask(line)}\n`);
    return EXIT.taskFailed;
  };

  // One keep-alive pool, so forwarding a chunk costs one round trip on an open socket. The server
  // binds 127.0.0.1 for "localhost" (the API contract): skip the ::1 attempt.
  const api = new StigmerClient(formatAddress({ host: config.server.host === 'localhost' ? '127.0.0.1' : config.server.host, port: config.server.port }), { keepAlive: true });
  let llmPool: Agent | undefined;
  const startup = new AbortController();
  let runner: Runner | undefined;
  let signals = 0;
  const onSignal = (sig: NodeJS.Signals): void => {
    signals++;
    if (signals === 1) {
      const n = runner?.inFlight ?? 0;
      log(`${sig} received: claiming no more; ${n} execution${n === 1 ? '' : 's'} in flight get up to ${formatMs(config.graceMs)} to finish`);
      startup.abort();
      runner?.stop();
    } else {
      log(`${sig} again: releasing in-flight executions now`);
      runner?.releaseAll();
    }
  };
  for (const sig of SIGNALS) process.on(sig, onSignal);

  try {
    const { llm } = config;
    log(
      `agent-runner starting: mode ${config.mode}, runner ${config.runnerId}, ${llm.provider} ${llm.model} at ${llm.baseUrl}, ` +
        `${config.slots} slot${config.slots === 1 ? '' : 's'}, server ${config.server.text}, temporal ${config.temporal.text} (namespace ${config.temporalNamespace})`,
    );

    const temporal = await waitForTemporal(config, config.temporalConnectTimeoutMs, startup.signal);
    if (startup.signal.aborted) return EXIT.ok;
    if (!temporal.ok) {
      return fatal(
        `Temporal is not serving at ${config.temporal.text} (${temporal.error}) after ${formatMs(config.temporalConnectTimeoutMs)}; ` +
          'check TEMPORAL_SERVICE_ADDRESS (or TEMPORAL_ADDRESS), TEMPORAL_NAMESPACE, TEMPORAL_TLS* and TEMPORAL_API_KEY, or raise STIGMER_TEMPORAL_CONNECT_TIMEOUT',
      );
    }
    log(`temporal serving at ${config.temporal.text} (${temporal.value})`);

    const server = await waitForServer(api, config.serverConnectTimeoutMs, startup.signal);
    if (startup.signal.aborted) return EXIT.ok;
    if (!server.ok) {
      return fatal(
        `stigmer-server did not answer at http://${api.address}/healthz (${server.error}) within ${formatMs(config.serverConnectTimeoutMs)}; ` +
          'check STIGMER_BACKEND_ENDPOINT, or raise STIGMER_SERVER_CONNECT_TIMEOUT',
      );
    }
    log(`stigmer-server reachable at ${config.server.text} (${server.value})`);

    const { Agent } = await loadUndici();
    llmPool = new Agent({ keepAliveTimeout: 30_000 });
    runner = new Runner({ api, config, log, llmDispatcher: llmPool });
    if (signals > 0) return EXIT.ok;
    await runner.run(() => void io.out.write('agent-runner ready\n'));
    await runner.drain(config.graceMs);
    const o = runner.outcomes;
    log(`agent-runner stopped (${o.succeeded} succeeded, ${o.failed} failed, ${o.cancelled} cancelled, ${o.released} released)`);
    return EXIT.ok;
  } finally {
    for (const sig of SIGNALS) process.off(sig, onSignal);
    api.close();
    await llmPool?.destroy();
  }
}
