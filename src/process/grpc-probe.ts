/**
 * One attempt of a `grpc` probe: Health/Check of the service, passing only on SERVING; for a
 * Temporal frontend with a `namespace`, then DescribeNamespace of it. When the server offers no
 * health service (UNIMPLEMENTED; not verified for Temporal Cloud), DescribeNamespace alone decides.
 */
import { notYet, type Probe, type ProbeResult } from './probes.js';
import { err, ok } from '../model/result.js';
import { GrpcChannel, type GrpcFailure, type GrpcTarget } from './grpc-client.js';

type GrpcProbe = Extract<Probe, { kind: 'grpc' }>;

/** The probe's target, the metadata values as strings. */
export function grpcTarget(probe: GrpcProbe): GrpcTarget {
  const s = probe.spec;
  const metadata: Record<string, string> = {};
  for (const [k, v] of Object.entries(s.metadata ?? {})) metadata[k] = String(v);
  return {
    address: s.address,
    ...(s.tls ? { tls: s.tls } : {}),
    ...(s.api_key ? { apiKey: s.api_key } : {}),
    ...(s.api_key_name ? { apiKeyName: s.api_key_name } : {}),
    metadata,
  };
}

function hintFor(answer: GrpcFailure, probe: GrpcProbe): string | undefined {
  const s = probe.spec;
  switch (answer.problem) {
    case 'UNAUTHENTICATED':
      return s.api_key
        ? `Check the API key${s.api_key_name ? ` in ${s.api_key_name}` : ''} (is it expired, or for another account?).`
        : 'The server wants credentials: set an API key, or a client certificate and key (mTLS).';
    case 'PERMISSION_DENIED':
      return 'The credentials were accepted but may not do this: check the key\'s or certificate\'s permissions for this namespace.';
    case 'TLS':
      return 'Check the TLS settings: the server CA cert, the server name the certificate is for, or whether the server speaks TLS at all.';
    case 'UNIMPLEMENTED':
      return `${s.address} does not offer grpc.health.v1.Health; probe it another way.`;
    default:
      return undefined;
  }
}

function failed(answer: GrpcFailure, probe: GrpcProbe): ProbeResult {
  const hint = answer.fatal ? hintFor(answer, probe) : undefined;
  return err({ detail: answer.detail, ...(answer.fatal ? { fatal: true } : {}), ...(hint ? { hint } : {}) });
}

export async function probeGrpc(probe: GrpcProbe, signal: AbortSignal, timeoutMs: number): Promise<ProbeResult> {
  const channel = (probe.channel ??= new GrpcChannel(grpcTarget(probe)));
  const at = probe.spec.address;
  const service = probe.service === '' ? 'the server ("")' : probe.service;
  const health = await channel.health(probe.service, { signal, timeoutMs });
  const namespace = probe.spec.namespace || undefined;
  let served = '';
  if (health.ok) {
    if (health.value !== 'SERVING') {
      const detail = `${health.value} (${service} at ${at})`;
      return health.value === 'SERVICE_UNKNOWN' ? err({ detail, fatal: true }) : notYet(detail);
    }
    if (!namespace) return ok(`SERVING (${service} at ${at})`);
    served = 'SERVING; ';
  } else if (health.error.problem === 'NOT_FOUND') {
    return err({ detail: `SERVICE_UNKNOWN: ${at} reports no health for ${service} (NOT_FOUND)`, fatal: true, hint: 'Check the service name.' });
  } else if (!(health.error.problem === 'UNIMPLEMENTED' && namespace)) {
    return failed(health.error, probe);
  }
  const ns = await channel.describeNamespace(namespace!, { signal, timeoutMs });
  if (ns.ok) {
    if (ns.value.state === 'DELETED') return err({ detail: `namespace ${namespace} at ${at} is DELETED`, fatal: true });
    return ok(`${served}namespace ${ns.value.name || namespace} ${ns.value.state}`);
  }
  if (ns.error.problem === 'NOT_FOUND') {
    return err({ detail: `namespace ${namespace} not found at ${at}`, fatal: true, hint: 'Check the namespace name; Temporal Cloud namespaces look like name.account-id.' });
  }
  return failed(ns.error, probe);
}
