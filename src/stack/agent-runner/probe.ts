/**
 * Start-up checks: Temporal accepts TCP connections, the stigmer-server answers /healthz. Both
 * retry with backoff until a deadline, so the runner may start a moment before its dependencies.
 */
import net from 'node:net';
import type { HostPort } from './env.js';
import type { RunnerApi } from './server-api.js';
import { err, ok, type Result } from '../../model/result.js';

/** What answered ("127.0.0.1", "version 0.1.0"), or the last error before the deadline. */
export type ProbeResult = Result<string, string>;

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

function connectOnce(host: string, port: number, timeoutMs: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    const finish = (err?: string): void => {
      socket.destroy();
      resolve(err);
    };
    socket.setTimeout(timeoutMs, () => finish('connect timed out'));
    socket.once('connect', () => finish());
    socket.once('error', (e: NodeJS.ErrnoException) => finish(e.code === 'ECONNREFUSED' ? 'connection refused' : (e.code ?? e.message)));
  });
}

/** Poll until something accepts a TCP connection at `target` ("localhost": 127.0.0.1 and ::1). */
export async function waitForTcp(target: HostPort, timeoutMs: number, signal: AbortSignal): Promise<ProbeResult> {
  const hosts = target.host === 'localhost' ? ['127.0.0.1', '::1'] : [target.host];
  const deadline = Date.now() + timeoutMs;
  let lastError = 'not tried';
  for (let attempt = 0; !signal.aborted; attempt++) {
    for (const host of hosts) {
      const failed = await connectOnce(host, target.port, Math.max(100, Math.min(2000, deadline - Date.now())));
      if (failed === undefined) return ok(host);
      lastError = failed;
    }
    const left = deadline - Date.now();
    if (left <= 0) break;
    await sleep(Math.min(100 * 2 ** attempt, 2000, left), signal);
  }
  return err(signal.aborted ? 'interrupted' : lastError);
}

/** Poll the server's /healthz until it says ok. */
export async function waitForServer(api: RunnerApi, timeoutMs: number, signal: AbortSignal): Promise<ProbeResult> {
  const deadline = Date.now() + timeoutMs;
  let lastError = 'not tried';
  for (let attempt = 0; !signal.aborted; attempt++) {
    try {
      const health = await api.health(signal);
      if (health?.status === 'ok') return ok(health.version ? `version ${health.version}` : 'ok');
      lastError = `/healthz said ${JSON.stringify(health)}`;
    } catch (e) {
      const thrown = e as { code?: string; cause?: { code?: string }; message?: string };
      const code = thrown.cause?.code ?? thrown.code;
      lastError = code === 'ECONNREFUSED' ? 'connection refused' : (code ?? thrown.message ?? String(e));
    }
    const left = deadline - Date.now();
    if (left <= 0) break;
    await sleep(Math.min(100 * 2 ** attempt, 2000, left), signal);
  }
  return err(signal.aborted ? 'interrupted' : lastError);
}

