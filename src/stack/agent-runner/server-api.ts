/**
 * The runner side of the stigmer-server HTTP API: claim (long poll), chunks, heartbeat, complete,
 * fail, release. One keep-alive connection pool, so forwarding a chunk costs one round trip on an
 * open socket.
 */
import type { Agent, Dispatcher } from 'undici';
import { loadUndici } from '../llm/http.js';
import type { HostPort } from './env.js';
import { formatAddress } from '../../util/address.js';

export interface ServerAgent {
  name: string;
  instructions: string;
  model: string | null;
}

export interface ServerExecution {
  id: string;
  agent: string;
  message: string;
  model: string | null;
  status: string;
  attempts: number;
}

export interface Claim {
  execution: ServerExecution;
  agent: ServerAgent;
  lease_ms: number;
}

/** A non-2xx answer, with the server's error code (`lease-lost`, `cancelled`, ...). */
export class ServerApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'ServerApiError';
  }
}

export class RunnerApi {
  readonly baseUrl: string;
  private pool: Agent | undefined;

  constructor(
    server: HostPort,
    private readonly runnerId: string,
  ) {
    // The server binds 127.0.0.1 for "localhost" (the API contract); skip the ::1 attempt.
    this.baseUrl = `http://${formatAddress({ host: server.host === 'localhost' ? '127.0.0.1' : server.host, port: server.port })}`;
  }

  private async dispatcher(): Promise<Dispatcher> {
    if (!this.pool) {
      const { Agent } = await loadUndici();
      // Long polls hold a request for up to 30 s: keep the headers timeout above that.
      this.pool = new Agent({ keepAliveTimeout: 30_000, headersTimeout: 60_000, bodyTimeout: 60_000 });
    }
    return this.pool;
  }

  private async call(method: 'GET' | 'POST', path: string, body?: object, signal?: AbortSignal): Promise<{ status: number; json: unknown }> {
    const { request } = await loadUndici();
    const res = await request(`${this.baseUrl}${path}`, {
      method,
      dispatcher: await this.dispatcher(),
      ...(body ? { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } } : {}),
      ...(signal ? { signal } : {}),
    });
    const text = await res.body.text();
    let json: unknown = undefined;
    if (text) {
      try {
        json = JSON.parse(text);
      } catch {
        json = undefined;
      }
    }
    if (res.statusCode >= 400) {
      const err = (json as { error?: { code?: unknown; message?: unknown } } | undefined)?.error;
      const code = typeof err?.code === 'string' ? err.code : `http-${res.statusCode}`;
      const message = typeof err?.message === 'string' ? err.message : text.slice(0, 200) || `HTTP ${res.statusCode}`;
      throw new ServerApiError(res.statusCode, code, message);
    }
    return { status: res.statusCode, json };
  }

  async health(signal?: AbortSignal): Promise<{ status: string; version?: string }> {
    const { json } = await this.call('GET', '/healthz', undefined, signal);
    return json as { status: string; version?: string };
  }

  /** Wait up to `waitMs` for a queued execution; null when none came. */
  async claim(waitMs: number, signal?: AbortSignal): Promise<Claim | null> {
    const { status, json } = await this.call('POST', '/v1/runner/claim', { runner_id: this.runnerId, wait_ms: waitMs }, signal);
    if (status === 204 || !json) return null;
    return json as Claim;
  }

  async chunk(id: string, text: string): Promise<void> {
    await this.call('POST', `/v1/runner/executions/${encodeURIComponent(id)}/chunks`, { runner_id: this.runnerId, text });
  }

  async heartbeat(id: string): Promise<void> {
    await this.call('POST', `/v1/runner/executions/${encodeURIComponent(id)}/heartbeat`, { runner_id: this.runnerId });
  }

  async complete(id: string, warning?: string): Promise<void> {
    await this.call('POST', `/v1/runner/executions/${encodeURIComponent(id)}/complete`, { runner_id: this.runnerId, ...(warning ? { warning } : {}) });
  }

  async fail(id: string, error: string): Promise<void> {
    await this.call('POST', `/v1/runner/executions/${encodeURIComponent(id)}/fail`, { runner_id: this.runnerId, error });
  }

  async release(id: string): Promise<void> {
    await this.call('POST', `/v1/runner/executions/${encodeURIComponent(id)}/release`, { runner_id: this.runnerId });
  }

  /** Close the connection pool (in-flight requests are aborted). */
  async close(): Promise<void> {
    const pool = this.pool;
    this.pool = undefined;
    await pool?.destroy();
  }
}
