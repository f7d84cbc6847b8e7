/**
 * A small gRPC client for probes: `grpc.health.v1.Health/Check` and Temporal's
 * `DescribeNamespace`, over @grpc/grpc-js (loaded on first use: ~50 ms, never on the paths that
 * must start fast). Every failure is classified, so a probe can say "connection refused", "TLS:
 * ... (server CA cert <file>)", "UNAUTHENTICATED (the key from TEMPORAL_API_KEY was refused)" and
 * whether waiting longer can help at all.
 *
 * A channel is meant for one wait: it keeps its HTTP/2 connection between attempts, and is
 * replaced after a connection failure so that grpc-js's reconnect backoff (1 s and growing)
 * never delays noticing a server that has just opened its port.
 */
import { readFileSync } from 'node:fs';
import type * as Grpc from '@grpc/grpc-js';
import { parseAddress } from '../util/address.js';
import {
  DESCRIBE_NAMESPACE,
  HEALTH_CHECK,
  decodeDescribeNamespaceResponse,
  decodeHealthResponse,
  encodeString1,
  type NamespaceInfo,
  type ServingStatus,
} from './grpc-codec.js';
import { err as fail, ok, type Result } from '../model/result.js';

export interface GrpcTls {
  /** false: plaintext even with an API key; default: on when any other TLS field or an API key is set */
  enabled?: boolean;
  /** PEM file of the CA that signed the server's certificate (default: the system roots) */
  server_ca_cert?: string;
  /** the name to verify the server's certificate against (default: the address's host) */
  server_name?: string;
  /** PEM files of the client certificate and key (mTLS) */
  client_cert?: string;
  client_key?: string;
  disable_host_verification?: boolean;
}

export interface GrpcTarget {
  /** host:port */
  address: string;
  tls?: GrpcTls;
  /** sent as `authorization: Bearer <key>`; implies TLS unless tls.enabled is false */
  apiKey?: string;
  /** how the key is named in messages (e.g. TEMPORAL_API_KEY), never its value */
  apiKeyName?: string;
  /** sent with every call */
  metadata?: Record<string, string>;
}

/** What went wrong, as a probe reports it. */
export type GrpcProblem =
  | 'NOT_SERVING'
  | 'SERVICE_UNKNOWN'
  | 'UNKNOWN'
  | 'NOT_FOUND'
  | 'UNAUTHENTICATED'
  | 'PERMISSION_DENIED'
  | 'UNIMPLEMENTED'
  | 'TLS'
  | 'REFUSED'
  | 'UNAVAILABLE'
  | 'DEADLINE_EXCEEDED'
  | 'CANCELLED'
  | 'ERROR';

/** Why a call gave no usable answer. */
export interface GrpcFailure {
  problem: GrpcProblem;
  /** one line, e.g. "connection refused (127.0.0.1:7233)" */
  detail: string;
  /** waiting longer cannot help (credentials, TLS, an unknown service or namespace) */
  fatal: boolean;
}

/** A call's answer: its decoded value, or why there is none. */
export type GrpcAnswer<T> = Result<T, GrpcFailure>;

export function tlsEnabled(target: GrpcTarget): boolean {
  const t = target.tls ?? {};
  const enabled: unknown = t.enabled;
  if (enabled === true || enabled === 'true') return true;
  if (enabled === false || enabled === 'false') return false;
  return !!(target.apiKey || t.server_ca_cert || t.server_name || t.client_cert || t.client_key || t.disable_host_verification);
}

let grpcModule: Promise<typeof Grpc> | undefined;
const loadGrpc = (): Promise<typeof Grpc> => (grpcModule ??= import('@grpc/grpc-js'));

const STATUS_NAME: Record<number, string> = {
  1: 'CANCELLED', 2: 'UNKNOWN', 3: 'INVALID_ARGUMENT', 4: 'DEADLINE_EXCEEDED', 5: 'NOT_FOUND', 6: 'ALREADY_EXISTS',
  7: 'PERMISSION_DENIED', 8: 'RESOURCE_EXHAUSTED', 9: 'FAILED_PRECONDITION', 10: 'ABORTED', 11: 'OUT_OF_RANGE',
  12: 'UNIMPLEMENTED', 13: 'INTERNAL', 14: 'UNAVAILABLE', 15: 'DATA_LOSS', 16: 'UNAUTHENTICATED',
};

const TLS_TEXT = /certificate|ssl|tls|altnames|self[- ]signed|handshake|wrong version number|unable to verify|alert/i;

/** A call's error as a problem (exported for tests of the wording). */
export function classify(target: GrpcTarget, err: { code?: number; details?: string; message?: string }): GrpcFailure {
  const code = err.code ?? 2;
  const raw = (err.details || err.message || '').replace(/^No connection established\. Last error: /, '').split('\n')[0]!.trim();
  const at = target.address;
  const name = STATUS_NAME[code] ?? `status ${code}`;
  const tls = target.tls ?? {};
  if (code === 14 || code === 13 || code === 2) {
    if (/ECONNREFUSED/.test(raw)) return { problem: 'REFUSED', detail: `connection refused (${at})`, fatal: false };
    if (tlsEnabled(target) && TLS_TEXT.test(raw)) {
      const reason = openSslReason(raw);
      let what: string;
      if (/certificate required|handshake failure/i.test(reason)) {
        what = tls.client_cert ? `the client cert ${tls.client_cert} was refused` : 'the server wants a client certificate (mTLS): set client_cert and client_key';
      } else if (/altnames|hostname|host name/i.test(reason)) {
        what = `checked against the name ${tls.server_name ?? hostOf(at)}`;
      } else {
        what = tls.server_ca_cert ? `server CA cert ${tls.server_ca_cert}` : 'the system CA roots';
      }
      return { problem: 'TLS', detail: `TLS handshake with ${at} failed: ${reason} (${what})`, fatal: true };
    }
    if (!tlsEnabled(target) && /Failed to connect|Protocol error|RST_STREAM|ECONNRESET|closed|GOAWAY/i.test(raw)) {
      return { problem: 'UNAVAILABLE', detail: `no plaintext HTTP/2 connection to ${at} (does the server want TLS?)`, fatal: false };
    }
    if (/ENOTFOUND|EAI_AGAIN/.test(raw)) return { problem: 'UNAVAILABLE', detail: `cannot resolve the host of ${at} (${trimError(raw)})`, fatal: false };
    if (code === 14) return { problem: 'UNAVAILABLE', detail: `UNAVAILABLE: ${trimError(raw) || 'no connection'} (${at})`, fatal: false };
  }
  const why = raw ? `: ${trimError(raw)}` : '';
  switch (code) {
    case 16:
      return {
        problem: 'UNAUTHENTICATED',
        detail: `UNAUTHENTICATED${why} (${target.apiKey ? `the API key${target.apiKeyName ? ` from ${target.apiKeyName}` : ''} was refused` : 'no API key was sent'})`,
        fatal: true,
      };
    case 7:
      return { problem: 'PERMISSION_DENIED', detail: `PERMISSION_DENIED${why}`, fatal: true };
    case 12:
      return { problem: 'UNIMPLEMENTED', detail: `UNIMPLEMENTED${why}`, fatal: true };
    case 5:
      return { problem: 'NOT_FOUND', detail: `NOT_FOUND${why}`, fatal: true };
    case 4:
      return { problem: 'DEADLINE_EXCEEDED', detail: `no answer from ${at} in time (DEADLINE_EXCEEDED)`, fatal: false };
    case 1:
      return { problem: 'CANCELLED', detail: `call to ${at} cancelled`, fatal: false };
    default:
      return { problem: 'ERROR', detail: `${name}${why}`, fatal: false };
  }
}

function hostOf(address: string): string {
  return parseAddress(address)?.host ?? address;
}

/** "...:SSL routines:ssl3_read_bytes:tlsv13 alert certificate required:..." -> "tlsv13 alert certificate required" */
function openSslReason(text: string): string {
  const m = /SSL routines:[^:]*:([^:]+)/.exec(text);
  return m ? m[1]!.trim() : trimError(text);
}

function trimError(text: string): string {
  return text.replace(/^Error: /, '').replace(/\s*\(\d+\.\d+\.\d+\.\d+:\d+\)$/, '').slice(0, 200);
}

export interface CallOptions {
  signal: AbortSignal;
  timeoutMs: number;
  /** sent with this call only (e.g. temporal-namespace, which must never be static) */
  metadata?: Record<string, string>;
}

/** One channel to one target: see the header. */
export class GrpcChannel {
  private client: Grpc.Client | undefined;

  constructor(readonly target: GrpcTarget) {}

  /** Health/Check of `service` ("" = the server as a whole). */
  async health(service: string, opts: CallOptions): Promise<GrpcAnswer<ServingStatus>> {
    return this.unary(HEALTH_CHECK, encodeString1(service), decodeHealthResponse, opts);
  }

  /** Temporal's DescribeNamespace, with the per-request `temporal-namespace` metadata Temporal Cloud requires. */
  async describeNamespace(namespace: string, opts: CallOptions): Promise<GrpcAnswer<NamespaceInfo>> {
    const metadata = { ...opts.metadata, 'temporal-namespace': namespace };
    return this.unary(DESCRIBE_NAMESPACE, encodeString1(namespace), decodeDescribeNamespaceResponse, { ...opts, metadata });
  }

  close(): void {
    this.client?.close();
    this.client = undefined;
  }

  private async unary<T>(method: string, request: Buffer, decode: (b: Buffer) => T, opts: CallOptions): Promise<GrpcAnswer<T>> {
    const grpc = await loadGrpc();
    let client: Grpc.Client;
    try {
      client = this.client ??= this.connect(grpc);
    } catch (err) {
      return fail({ problem: 'TLS', detail: (err as Error).message, fatal: true });
    }
    const md = new grpc.Metadata();
    for (const [k, v] of Object.entries({ ...this.target.metadata, ...opts.metadata })) md.set(k.toLowerCase(), v);
    if (this.target.apiKey) md.set('authorization', `Bearer ${this.target.apiKey}`);
    if (opts.signal.aborted) return fail({ problem: 'CANCELLED', detail: 'aborted', fatal: false });
    const answer = await new Promise<GrpcAnswer<T>>((resolve) => {
      const call = client.makeUnaryRequest(
        method,
        (b: Buffer) => b,
        decode,
        request,
        md,
        { deadline: Date.now() + opts.timeoutMs },
        (err, value) => {
          opts.signal.removeEventListener('abort', onAbort);
          if (err) resolve(fail(classify(this.target, err)));
          else resolve(ok(value as T));
        },
      );
      const onAbort = (): void => call.cancel();
      opts.signal.addEventListener('abort', onAbort, { once: true });
    });
    // A broken connection is not reused: a fresh channel dials at once next time.
    if (!answer.ok && !answer.error.fatal && answer.error.problem !== 'NOT_SERVING') this.close();
    return answer;
  }

  private connect(grpc: typeof Grpc): Grpc.Client {
    const t = this.target;
    const tls = t.tls ?? {};
    const read = (file: string | undefined, what: string): Buffer | null => {
      if (!file) return null;
      try {
        return readFileSync(file);
      } catch (err) {
        throw new Error(`cannot read the ${what} ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
      }
    };
    let creds: Grpc.ChannelCredentials;
    if (tlsEnabled(t)) {
      if (!!tls.client_cert !== !!tls.client_key) {
        throw new Error(`mTLS needs both a client certificate and its key (got only the ${tls.client_cert ? 'certificate' : 'key'})`);
      }
      const verify = tls.disable_host_verification ? { checkServerIdentity: () => undefined } : {};
      creds = grpc.credentials.createSsl(read(tls.server_ca_cert, 'server CA cert'), read(tls.client_key, 'client key'), read(tls.client_cert, 'client cert'), verify);
    } else {
      creds = grpc.credentials.createInsecure();
    }
    const options: Grpc.ChannelOptions = {
      // Own connections per wait: never one another caller put into reconnect backoff.
      'grpc.use_local_subchannel_pool': 1,
      'grpc.enable_retries': 0,
      ...(tls.server_name ? { 'grpc.ssl_target_name_override': tls.server_name, 'grpc.default_authority': tls.server_name } : {}),
    };
    return new grpc.Client(t.address, creds, options);
  }
}
