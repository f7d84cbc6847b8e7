/**
 * The HTTP/1.1 JSON API over the service, on node:http: a route table, bounded JSON bodies,
 * error bodies that name the field, and the server-sent-events stream of an execution.
 */
import http from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { ServiceError, type Service } from './service.js';
import { MAX_BODY_BYTES, type ApiErrorBody, type ExecutionEvent } from './model.js';
import {
  checkAgentName,
  parseAgentBody,
  parseChunkBody,
  parseClaimBody,
  parseEmptyBody,
  parseExecutionBody,
  parseFailBody,
  parseListQuery,
  parseCompleteBody,
  parseRunnerBody,
} from './validate.js';

const DEFAULT_MAX_STREAMS = 256;
const HEARTBEAT_MS = 15_000;

interface Ctx {
  req: IncomingMessage;
  res: ServerResponse;
  /** decoded path parameters */
  params: string[];
  query: URLSearchParams;
  /** the parsed JSON body, undefined when empty */
  body: () => Promise<unknown>;
  /** aborted when the client hangs up before the response is sent */
  signal: AbortSignal;
}

/** A JSON reply; `undefined` means the handler wrote the response itself (SSE). */
type Reply = { status: number; body?: unknown } | undefined;
type Handler = (ctx: Ctx) => Promise<Reply> | Reply;
type Method = 'GET' | 'PUT' | 'POST' | 'DELETE';

interface Route {
  pattern: RegExp;
  methods: Partial<Record<Method, Handler>>;
}

export interface ApiServerOptions {
  service: Service;
  version: string;
  startedAt: number;
  maxStreams?: number;
  /** ms between `: ping` comments on open event streams (default 15 s) */
  heartbeatMs?: number;
  log?: (line: string) => void;
}

export interface ApiServer {
  server: http.Server;
  /** end every open event stream (at shutdown) */
  endStreams(): void;
}

function readBody(req: IncomingMessage): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length'] ?? NaN);
    if (declared > MAX_BODY_BYTES) {
      reject(tooLarge());
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let failed = false;
    req.on('data', (c: Buffer) => {
      if (failed) return;
      size += c.length;
      if (size > MAX_BODY_BYTES) {
        failed = true;
        reject(tooLarge());
        return;
      }
      chunks.push(c);
    });
    // The client hung up before the body was complete: nobody is left to answer.
    const cut = (): void => {
      if (failed) return;
      failed = true;
      reject(new ServiceError(400, 'incomplete-body', 'the request body was cut short'));
    };
    req.on('error', cut);
    req.on('close', () => {
      if (!req.complete) cut();
    });
    req.on('end', () => {
      if (failed) return;
      const text = Buffer.concat(chunks).toString('utf8');
      if (text.trim() === '') {
        resolve(undefined);
        return;
      }
      try {
        resolve(JSON.parse(text));
      } catch (err) {
        reject(new ServiceError(400, 'invalid-json', `the request body is not valid JSON: ${(err as Error).message}`));
      }
    });
  });
}

function tooLarge(): ServiceError {
  return new ServiceError(413, 'body-too-large', `the request body is larger than ${MAX_BODY_BYTES} bytes`);
}

function sendJson(res: ServerResponse, status: number, body?: unknown): void {
  if (res.headersSent) {
    res.end();
    return;
  }
  if (body === undefined) {
    res.writeHead(status);
    res.end();
    return;
  }
  const json = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(json) });
  res.end(json);
}

function errorBody(code: string, message: string, field?: string): ApiErrorBody {
  return { error: field === undefined ? { code, message } : { code, message, field } };
}

function sseFrame(event: ExecutionEvent): string {
  switch (event.type) {
    case 'chunk':
      return `event: chunk\ndata: ${JSON.stringify({ text: event.text })}\n\n`;
    case 'status':
      return `event: status\ndata: ${JSON.stringify({ status: event.status, attempt: event.attempt })}\n\n`;
    case 'done':
      return `event: done\ndata: ${JSON.stringify({ status: event.status, error: event.error, ...(event.warning !== undefined ? { warning: event.warning } : {}) })}\n\n`;
    default: {
      const never: never = event;
      throw new Error(`Internal error: unknown event ${JSON.stringify(never)}`);
    }
  }
}

export function createApiServer(opts: ApiServerOptions): ApiServer {
  const { service } = opts;
  const log = opts.log ?? (() => {});
  const maxStreams = opts.maxStreams ?? DEFAULT_MAX_STREAMS;
  const streams = new Set<{ end: () => void; ping: () => void }>();
  let stopping = false;

  const streamEvents: Handler = ({ req, res, params }) => {
    const id = params[0]!;
    if (streams.size >= maxStreams) throw new ServiceError(503, 'too-many-streams', `more than ${maxStreams} event streams are open; try again later`);
    let ended = false;
    let stop = (): void => {};
    const stream = {
      end: (): void => {
        if (ended) return;
        ended = true;
        stop();
        streams.delete(stream);
        res.end();
      },
      ping: (): void => {
        if (!ended) res.write(': ping\n\n');
      },
    };
    const end = stream.end;
    const write = (event: ExecutionEvent): void => {
      if (ended) return;
      res.write(sseFrame(event));
      if (event.type === 'done') end();
    };
    // watch() throws 404 before anything is written.
    const watch = service.watch(id, write);
    stop = watch.stop;
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', connection: 'keep-alive' });
    streams.add(stream);
    req.socket.setNoDelay(true);
    res.on('close', end);
    for (const event of watch.replay) write(event);
    if (watch.finished) end();
    return undefined;
  };

  const routes: Route[] = [
    {
      pattern: /^\/healthz$/,
      methods: { GET: () => ({ status: 200, body: { status: 'ok', version: opts.version, uptime_ms: Date.now() - opts.startedAt } }) },
    },
    { pattern: /^\/v1\/agents$/, methods: { GET: () => ({ status: 200, body: { agents: service.listAgents() } }) } },
    {
      pattern: /^\/v1\/agents\/([^/]+)$/,
      methods: {
        GET: ({ params }) => ({ status: 200, body: service.getAgent(checkAgentName(params[0]!)) }),
        PUT: async ({ params, body }) => {
          const name = checkAgentName(params[0]!);
          const input = parseAgentBody(await body(), name);
          const { agent, created } = await service.putAgent(name, input.instructions, input.model);
          return { status: created ? 201 : 200, body: agent };
        },
        DELETE: async ({ params }) => {
          await service.deleteAgent(checkAgentName(params[0]!));
          return { status: 204 };
        },
      },
    },
    {
      pattern: /^\/v1\/executions$/,
      methods: {
        GET: ({ query }) => ({ status: 200, body: { executions: service.listExecutions(parseListQuery(query)) } }),
        POST: async ({ body }) => {
          const input = parseExecutionBody(await body());
          return { status: 201, body: await service.createExecution(input.agent, input.message) };
        },
      },
    },
    { pattern: /^\/v1\/executions\/([^/]+)$/, methods: { GET: ({ params }) => ({ status: 200, body: service.getExecution(params[0]!) }) } },
    {
      pattern: /^\/v1\/executions\/([^/]+)\/cancel$/,
      methods: {
        POST: async ({ params, body }) => {
          parseEmptyBody(await body());
          return { status: 200, body: await service.cancelExecution(params[0]!) };
        },
      },
    },
    { pattern: /^\/v1\/executions\/([^/]+)\/events$/, methods: { GET: streamEvents } },
    {
      pattern: /^\/v1\/runner\/claim$/,
      methods: {
        POST: async ({ body, signal }) => {
          const input = parseClaimBody(await body());
          const claim = stopping ? null : await service.claim(input.runnerId, input.waitMs, signal);
          return claim ? { status: 200, body: claim } : { status: 204 };
        },
      },
    },
    {
      pattern: /^\/v1\/runner\/executions\/([^/]+)\/chunks$/,
      methods: {
        POST: async ({ params, body }) => {
          const input = parseChunkBody(await body());
          service.appendChunk(params[0]!, input.runnerId, input.text);
          return { status: 204 };
        },
      },
    },
    {
      pattern: /^\/v1\/runner\/executions\/([^/]+)\/heartbeat$/,
      methods: {
        POST: async ({ params, body }) => {
          service.heartbeat(params[0]!, parseRunnerBody(await body()).runnerId);
          return { status: 204 };
        },
      },
    },
    {
      pattern: /^\/v1\/runner\/executions\/([^/]+)\/complete$/,
      methods: {
        POST: async ({ params, body }) => {
          const { runnerId, warning } = parseCompleteBody(await body());
          return { status: 200, body: await service.complete(params[0]!, runnerId, warning) };
        },
      },
    },
    {
      pattern: /^\/v1\/runner\/executions\/([^/]+)\/fail$/,
      methods: {
        POST: async ({ params, body }) => {
          const input = parseFailBody(await body());
          return { status: 200, body: await service.fail(params[0]!, input.runnerId, input.error) };
        },
      },
    },
    {
      pattern: /^\/v1\/runner\/executions\/([^/]+)\/release$/,
      methods: {
        POST: async ({ params, body }) => ({ status: 200, body: await service.release(params[0]!, parseRunnerBody(await body()).runnerId) }),
      },
    },
  ];

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const method = (req.method ?? 'GET').toUpperCase();
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://stigmer-server');
    } catch {
      req.resume();
      sendJson(res, 400, errorBody('invalid-path', `the request target ${JSON.stringify(req.url)} is not a valid path`));
      return;
    }
    if (stopping) res.setHeader('connection', 'close');
    let bodyRead = false;
    try {
      let params: string[] | undefined;
      const route = routes.find((r) => {
        const m = r.pattern.exec(url.pathname);
        if (m) params = m.slice(1);
        return m !== null;
      });
      if (!route) throw new ServiceError(404, 'not-found', `no route for ${method} ${url.pathname}`);
      const handler = route.methods[method as Method];
      if (!handler) {
        const allow = Object.keys(route.methods).join(', ');
        res.setHeader('allow', allow);
        throw new ServiceError(405, 'method-not-allowed', `${method} is not allowed on ${url.pathname} (allowed: ${allow})`);
      }
      let decoded: string[];
      try {
        decoded = params!.map((p) => decodeURIComponent(p));
      } catch {
        throw new ServiceError(400, 'invalid-path', `the path ${url.pathname} is not validly percent-encoded`);
      }
      const ac = new AbortController();
      res.on('close', () => {
        if (!res.writableFinished) ac.abort();
      });
      const reply = await handler({
        req,
        res,
        params: decoded,
        query: url.searchParams,
        signal: ac.signal,
        body: () => {
          bodyRead = true;
          return readBody(req);
        },
      });
      if (reply) sendJson(res, reply.status, reply.body);
    } catch (err) {
      if (err instanceof ServiceError) {
        if (err.status === 413) res.setHeader('connection', 'close');
        sendJson(res, err.status, errorBody(err.code, err.message, err.field));
      } else {
        log(`internal error on ${method} ${url.pathname}: ${(err as Error)?.stack ?? String(err)}`);
        sendJson(res, 500, errorBody('internal', 'internal server error (see the stigmer-server log)'));
      }
    } finally {
      // Drain a body nobody read so the connection can be reused.
      if (!bodyRead && !req.readableEnded) req.resume();
    }
  }

  const server = http.createServer({ noDelay: true, keepAliveTimeout: 10_000 }, (req, res) => {
    handle(req, res).catch((err: unknown) => {
      log(`internal error: ${(err as Error)?.stack ?? String(err)}`);
      if (!res.headersSent) sendJson(res, 500, errorBody('internal', 'internal server error (see the stigmer-server log)'));
      else res.destroy();
    });
  });
  // Long polls and event streams stay open; nothing else takes long.
  server.requestTimeout = 60_000;

  // Comment lines keep idle streams from being cut by proxies and show the client we are alive.
  const heartbeat = setInterval(() => {
    for (const s of streams) s.ping();
  }, opts.heartbeatMs ?? HEARTBEAT_MS);
  heartbeat.unref();

  return {
    server,
    endStreams: () => {
      stopping = true;
      clearInterval(heartbeat);
      for (const s of [...streams]) s.end();
    },
  };
}
