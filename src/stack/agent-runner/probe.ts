/**
 * Start-up checks: Temporal serves (the same gRPC check as stigmer's readiness: Health/Check of
 * the WorkflowService with the TLS and API key of the environment, then DescribeNamespace), the
 * stigmer-server answers /healthz. Both retry until a deadline, so the runner may start a moment
 * before its dependencies; a refused key, TLS failure or unknown namespace ends the wait at once.
 */
import { parseProbe, waitReady } from '../../process/probes.js';
import { formatAddress } from '../../util/address.js';
import { WORKFLOW_SERVICE } from '../../process/grpc-codec.js';
import type { RunnerConfig } from './env.js';
import { UnreachableError, type StigmerClient } from '../client/index.js';
import { err, ok, type Result } from '../../model/result.js';

/** What answered ("127.0.0.1", "version 0.1.0"), or the last error before the deadline. */
export type WaitResult = Result<string, string>;

const sleep = (ms: number, signal: AbortSignal): Promise<void> =>
  new Promise((resolve) => {
    const t = setTimeout(done, ms);
    function done(): void {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });

/** Poll Temporal until its WorkflowService is SERVING and the namespace is there. */
export async function waitForTemporal(config: RunnerConfig, timeoutMs: number, signal: AbortSignal): Promise<WaitResult> {
  const address = formatAddress(config.temporal);
  const { probe } = parseProbe(
    {
      grpc: {
        address,
        service: WORKFLOW_SERVICE,
        namespace: config.temporalNamespace,
        tls: config.temporalTls,
        api_key: config.temporalApiKey ?? null,
        api_key_name: config.temporalApiKey ? 'TEMPORAL_API_KEY' : null,
      },
    },
    { logFile: '/dev/null', logOffset: 0, cwd: process.cwd(), env: {} },
  );
  const outcome = await waitReady(probe, { signal, intervalMs: 100, timeoutMs });
  switch (outcome.status) {
    case 'ready':
      return ok(outcome.detail);
    case 'rejected':
      return err(outcome.detail);
    case 'timeout':
      return err(outcome.lastProbe ?? 'no answer');
    default:
      return err('interrupted');
  }
}

/** Poll the server's /healthz until it says ok. */
export async function waitForServer(api: StigmerClient, timeoutMs: number, signal: AbortSignal): Promise<WaitResult> {
  const deadline = Date.now() + timeoutMs;
  let lastError = 'not tried';
  for (let attempt = 0; !signal.aborted; attempt++) {
    try {
      const health = await api.health({ signal });
      if (health?.status === 'ok') return ok(health.version ? `version ${health.version}` : 'ok');
      lastError = `/healthz said ${JSON.stringify(health)}`;
    } catch (e) {
      const thrown = e as { code?: string; message?: string };
      const code = e instanceof UnreachableError ? e.detail : thrown.code;
      lastError = code === 'ECONNREFUSED' ? 'connection refused' : (code ?? thrown.message ?? String(e));
    }
    const left = deadline - Date.now();
    if (left <= 0) break;
    await sleep(Math.min(100 * 2 ** attempt, 2000, left), signal);
  }
  return err(signal.aborted ? 'interrupted' : lastError);
}

