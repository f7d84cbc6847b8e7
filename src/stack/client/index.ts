/**
 * The HTTP client of stigmer-server's API: what `stigmer agent ...` and the tests use, the runner
 * calls (claim, chunks, heartbeat, complete) the agent-runner makes included (with `keepAlive`).
 * node:http rather than undici: it is already loaded by Node, so `stigmer agent run` pays no
 * import cost before its first request (undici costs ~80 ms to import here).
 *
 * Errors: an error response becomes `ApiError` (status, code, field); a server that cannot be
 * reached becomes `UnreachableError`; an abort through `signal` rejects with the signal's reason.
 */
import http from 'node:http';
import { formatAddress, parseAddress, type Address } from '../../util/address.js';
import { readSse } from '../llm/frames.js';
import type { Agent, ApiErrorBody, Claim, Execution, ExecutionEvent, ExecutionStatus, Health } from '../server/model.js';

export type { Agent, Claim, Execution, ExecutionEvent, ExecutionStatus, Health } from '../server/model.js';
export { parseAddress, formatAddress, type Address } from '../../util/address.js';

/** The server answered with an error. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly field?: string,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

/** Nothing answered at the address (refused, unresolvable, timed out, or not an HTTP server). */
export class UnreachableError extends Error {
  constructor(
    readonly address: string,
    readonly detail: string,
  ) {
    super(`cannot reach stigmer-server at ${address} (${detail})`);
    this.name = 'UnreachableError';
  }
}

export interface ClientOptions {
  /** reuse connections (long-lived runners); the CLI leaves it off so it can exit at once */
  keepAlive?: boolean;
  /** ms a request may take, beyond any long-poll wait (default 30 s) */
  timeoutMs?: number;
}

export interface RequestOptions {
  signal?: AbortSignal;
  /** overrides the client's timeout for this request */
  timeoutMs?: number;
}

/** One line for a failed call: `409 cancelled: ...` for an answer, the errno for no answer. */
export function describeApiError(e: unknown): string {
  if (e instanceof ApiError) return `${e.status} ${e.code}: ${e.message}`;
  if (e instanceof UnreachableError) return e.detail;
  const err = e as { code?: string; message?: string } | undefined;
  return err?.code ?? err?.message ?? String(e);
}

const UNREACHABLE_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE']);

export class StigmerClient {
  /** `host:port` as given */
  readonly address: string;
  private readonly target: Address;
  private readonly agent: http.Agent;
  private readonly timeoutMs: number;

  constructor(address: string, opts: ClientOptions = {}) {
    const parsed = parseAddress(address.replace(/^http:\/\//, '').replace(/\/$/, ''));
    if (!parsed) throw new Error(`Expected the stigmer-server address to be host:port (e.g. localhost:50051), got "${address}"`);
    this.target = parsed;
    this.address = formatAddress(parsed);
    this.agent = new http.Agent({ keepAlive: opts.keepAlive ?? false, maxSockets: 64 });
    this.timeoutMs = opts.timeoutMs ?? 30_000;
  }

  /** Close pooled connections. */
  close(): void {
    this.agent.destroy();
  }

  private open(method: string, path: string, headers: http.OutgoingHttpHeaders, opts: RequestOptions): http.ClientRequest {
    return http.request({
      host: this.target.host,
      port: this.target.port,
      method,
      path,
      agent: this.agent,
      headers,
      ...(opts.signal ? { signal: opts.signal } : {}),
    });
  }

  private translate(err: unknown, opts: RequestOptions): unknown {
    if (opts.signal?.aborted) return opts.signal.reason ?? err;
    const e = err as NodeJS.ErrnoException;
    if (e?.code && UNREACHABLE_CODES.has(e.code)) return new UnreachableError(this.address, e.code);
    return err;
  }

  /** One JSON request; resolves the status and parsed body of a 2xx answer, throws ApiError otherwise. */
  async request<T>(method: string, path: string, body?: unknown, opts: RequestOptions = {}): Promise<{ status: number; body: T }> {
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const headers: http.OutgoingHttpHeaders = { accept: 'application/json' };
    if (payload) {
      headers['content-type'] = 'application/json';
      headers['content-length'] = payload.length;
    }
    const timeoutMs = opts.timeoutMs ?? this.timeoutMs;
    return new Promise((resolve, reject) => {
      const req = this.open(method, path, headers, opts);
      req.setTimeout(timeoutMs, () => {
        req.destroy(new UnreachableError(this.address, `no answer within ${Math.round(timeoutMs / 1000)} s`));
      });
      req.on('error', (err) => reject(this.translate(err, opts)));
      req.on('response', (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', (err) => reject(this.translate(err, opts)));
        res.on('end', () => {
          const status = res.statusCode ?? 0;
          const text = Buffer.concat(chunks).toString('utf8');
          let parsed: unknown;
          if (text !== '') {
            try {
              parsed = JSON.parse(text);
            } catch {
              reject(new UnreachableError(this.address, `answered HTTP ${status} with a body that is not JSON; is this a stigmer-server?`));
              return;
            }
          }
          if (status >= 200 && status < 300) {
            resolve({ status, body: parsed as T });
            return;
          }
          const e = (parsed as Partial<ApiErrorBody> | undefined)?.error;
          if (e && typeof e.code === 'string' && typeof e.message === 'string') reject(new ApiError(status, e.code, e.message, e.field));
          else reject(new ApiError(status, 'http-error', `HTTP ${status} from ${method} ${path}`));
        });
      });
      req.end(payload);
    });
  }

  // ---- API ------------------------------------------------------------------------------------

  async health(opts?: RequestOptions): Promise<Health> {
    return (await this.request<Health>('GET', '/healthz', undefined, opts)).body;
  }

  /** Create or replace an agent; `created` tells which. */
  async putAgent(name: string, spec: { instructions: string; model?: string | null }, opts?: RequestOptions): Promise<{ agent: Agent; created: boolean }> {
    const r = await this.request<Agent>('PUT', `/v1/agents/${encodeURIComponent(name)}`, spec, opts);
    return { agent: r.body, created: r.status === 201 };
  }

  async listAgents(opts?: RequestOptions): Promise<Agent[]> {
    return (await this.request<{ agents: Agent[] }>('GET', '/v1/agents', undefined, opts)).body.agents;
  }

  async getAgent(name: string, opts?: RequestOptions): Promise<Agent> {
    return (await this.request<Agent>('GET', `/v1/agents/${encodeURIComponent(name)}`, undefined, opts)).body;
  }

  async deleteAgent(name: string, opts?: RequestOptions): Promise<void> {
    await this.request('DELETE', `/v1/agents/${encodeURIComponent(name)}`, undefined, opts);
  }

  async createExecution(agent: string, message: string, opts?: RequestOptions): Promise<Execution> {
    return (await this.request<Execution>('POST', '/v1/executions', { agent, message }, opts)).body;
  }

  async getExecution(id: string, opts?: RequestOptions): Promise<Execution> {
    return (await this.request<Execution>('GET', `/v1/executions/${encodeURIComponent(id)}`, undefined, opts)).body;
  }

  async listExecutions(filter: { agent?: string; status?: ExecutionStatus; limit?: number } = {}, opts?: RequestOptions): Promise<Execution[]> {
    const q = new URLSearchParams();
    if (filter.agent !== undefined) q.set('agent', filter.agent);
    if (filter.status !== undefined) q.set('status', filter.status);
    if (filter.limit !== undefined) q.set('limit', String(filter.limit));
    const qs = q.toString();
    return (await this.request<{ executions: Execution[] }>('GET', `/v1/executions${qs ? `?${qs}` : ''}`, undefined, opts)).body.executions;
  }

  async cancelExecution(id: string, opts?: RequestOptions): Promise<Execution> {
    return (await this.request<Execution>('POST', `/v1/executions/${encodeURIComponent(id)}/cancel`, undefined, opts)).body;
  }

  /**
   * The execution's event stream: the replay of what exists, then live events, ending after
   * `done` (or when the server ends the stream, e.g. at shutdown). `idleMs` bounds the silence
   * between events or heartbeats (default 45 s, three missed heartbeats).
   */
  async *events(id: string, opts: RequestOptions & { idleMs?: number } = {}): AsyncGenerator<ExecutionEvent, void, undefined> {
    const idleMs = opts.idleMs ?? 45_000;
    const res = await new Promise<http.IncomingMessage>((resolve, reject) => {
      const req = this.open('GET', `/v1/executions/${encodeURIComponent(id)}/events`, { accept: 'text/event-stream' }, opts);
      req.setTimeout(idleMs, () => req.destroy(new UnreachableError(this.address, `no event or heartbeat for ${Math.round(idleMs / 1000)} s`)));
      req.on('error', (err) => reject(this.translate(err, opts)));
      req.on('response', resolve);
      req.end();
    });
    if (res.statusCode !== 200) {
      const chunks: Buffer[] = [];
      for await (const c of res) chunks.push(c as Buffer);
      let e: ApiErrorBody['error'] | undefined;
      try {
        e = (JSON.parse(Buffer.concat(chunks).toString('utf8')) as ApiErrorBody).error;
      } catch {
        // not an API error body
      }
      throw new ApiError(res.statusCode ?? 0, e?.code ?? 'http-error', e?.message ?? `HTTP ${res.statusCode} from the event stream`, e?.field);
    }
    res.setEncoding('utf8');
    try {
      for await (const event of readSse(res as AsyncIterable<string>)) {
        const parsed = toEvent(event.event, event.data);
        if (!parsed) continue;
        yield parsed;
        if (parsed.type === 'done') return;
      }
    } catch (err) {
      throw this.translate(err, opts);
    } finally {
      res.destroy();
    }
  }

  // ---- runner side ----------------------------------------------------------------------------

  /** Claim a queued execution, waiting up to `waitMs` (at most 30000); null when none came. */
  async claim(runnerId: string, waitMs = 0, opts: RequestOptions = {}): Promise<Claim | null> {
    const r = await this.request<Claim>('POST', '/v1/runner/claim', { runner_id: runnerId, wait_ms: waitMs }, {
      ...opts,
      timeoutMs: (opts.timeoutMs ?? this.timeoutMs) + waitMs,
    });
    return r.status === 204 ? null : r.body;
  }

  /** Append output (renews the lease). ApiError 409 `cancelled` / `lease-lost` means: stop. */
  async appendChunk(id: string, runnerId: string, text: string, opts?: RequestOptions): Promise<void> {
    await this.request('POST', `/v1/runner/executions/${encodeURIComponent(id)}/chunks`, { runner_id: runnerId, text }, opts);
  }

  async heartbeat(id: string, runnerId: string, opts?: RequestOptions): Promise<void> {
    await this.request('POST', `/v1/runner/executions/${encodeURIComponent(id)}/heartbeat`, { runner_id: runnerId }, opts);
  }

  async complete(id: string, runnerId: string, opts?: RequestOptions & { warning?: string }): Promise<Execution> {
    const body = { runner_id: runnerId, ...(opts?.warning ? { warning: opts.warning } : {}) };
    return (await this.request<Execution>('POST', `/v1/runner/executions/${encodeURIComponent(id)}/complete`, body, opts)).body;
  }

  async fail(id: string, runnerId: string, error: string, opts?: RequestOptions): Promise<Execution> {
    return (await this.request<Execution>('POST', `/v1/runner/executions/${encodeURIComponent(id)}/fail`, { runner_id: runnerId, error }, opts)).body;
  }

  /** Give the execution back to the queue (output reset) so another runner can run it. */
  async release(id: string, runnerId: string, opts?: RequestOptions): Promise<Execution> {
    return (await this.request<Execution>('POST', `/v1/runner/executions/${encodeURIComponent(id)}/release`, { runner_id: runnerId }, opts)).body;
  }
}

function toEvent(name: string, data: string): ExecutionEvent | undefined {
  let d: Record<string, unknown>;
  try {
    d = JSON.parse(data) as Record<string, unknown>;
  } catch {
    return undefined;
  }
  switch (name) {
    case 'chunk':
      return typeof d['text'] === 'string' ? { type: 'chunk', text: d['text'] } : undefined;
    case 'status':
      return { type: 'status', status: d['status'] as ExecutionStatus, attempt: typeof d['attempt'] === 'number' ? d['attempt'] : 0 };
    case 'done':
      return { type: 'done', status: d['status'] as ExecutionStatus, error: typeof d['error'] === 'string' ? d['error'] : null, ...(typeof d['warning'] === 'string' ? { warning: d['warning'] } : {}) };
    default:
      return undefined;
  }
}
