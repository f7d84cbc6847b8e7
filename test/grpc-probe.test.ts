/**
 * The `grpc` probe against the test Temporal frontend (real gRPC over HTTP/2): SERVING only for
 * the named service, each failure reported as itself, TLS, mTLS, API keys, namespaces.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { pathToFileURL } from 'node:url';
import { parseProbe, probeOnce, waitReady, disposeProbe, type GrpcProbeSpec, type Probe } from '../src/process/probes.js';
import { fixture, freePort } from './helpers.js';
import { testCerts } from './tls-certs.js';
import type * as FrontendModule from './fixtures/temporal-frontend.mjs';

const { startFrontend, WORKFLOW_SERVICE } = (await import(pathToFileURL(fixture('temporal-frontend.mjs')).href)) as typeof FrontendModule;
const certs = testCerts();
after(() => certs.cleanup());

const target = { logFile: '/dev/null', logOffset: 0, cwd: '/', env: {} };
const grpcProbe = (spec: GrpcProbeSpec): Probe => parseProbe({ grpc: spec }, target).probe;

/** One attempt, its Result flattened for the assertions: `{ ok, detail, fatal?, hint? }`. */
async function once(spec: GrpcProbeSpec): Promise<{ ok: boolean; detail: string; fatal?: boolean; hint?: string }> {
  const probe = grpcProbe(spec);
  try {
    const r = await probeOnce(probe, AbortSignal.timeout(5000));
    return r.ok ? { ok: true, detail: r.value } : { ok: false, ...r.error };
  } finally {
    disposeProbe(probe);
  }
}

test('managed readiness: "" is SERVING at once, the WorkflowService only once the frontend is up', async (t) => {
  const fe = await startFrontend({ servingAfterMs: 3_600_000 });
  t.after(() => fe.close());
  assert.deepEqual(await once({ address: fe.address }), { ok: true, detail: `SERVING (the server ("") at ${fe.address})` });
  assert.deepEqual(await once({ address: fe.address, service: WORKFLOW_SERVICE }), { ok: false, detail: `NOT_SERVING (${WORKFLOW_SERVICE} at ${fe.address})` });
  let servingAt = Infinity;
  setTimeout(() => {
    servingAt = performance.now();
    fe.setServing(true);
  }, 300);
  const outcome = await waitReady(grpcProbe({ address: fe.address, service: WORKFLOW_SERVICE }), { signal: AbortSignal.timeout(10_000), intervalMs: 25, timeoutMs: 10_000 });
  assert.equal(outcome.status, 'ready');
  assert.ok(performance.now() >= servingAt, 'not ready before the WorkflowService serves');
});

test('refused is retried, an unknown service is SERVICE_UNKNOWN at once', async (t) => {
  const port = await freePort();
  const refused = await once({ address: `127.0.0.1:${port}`, service: WORKFLOW_SERVICE });
  assert.deepEqual(refused, { ok: false, detail: `connection refused (127.0.0.1:${port})` });
  const fe = await startFrontend();
  t.after(() => fe.close());
  const unknown = await once({ address: fe.address, service: 'no.such.Service' });
  assert.equal(unknown.fatal, true);
  assert.equal(unknown.detail, `SERVICE_UNKNOWN: ${fe.address} reports no health for no.such.Service (NOT_FOUND)`);
  const waited = await waitReady(grpcProbe({ address: fe.address, service: 'no.such.Service' }), { signal: AbortSignal.timeout(5000), intervalMs: 25, timeoutMs: 5000 });
  assert.equal(waited.status, 'rejected');
});

test('API key: right passes, wrong and missing are UNAUTHENTICATED naming the variable, never the value', async (t) => {
  const key = 'tmprl-secret-key-123456';
  const fe = await startFrontend({ apiKey: key, tls: { key: certs.pem.serverKey, cert: certs.pem.serverCert }, namespaces: ['prod.acct1'] });
  t.after(() => fe.close());
  const tls = { server_ca_cert: certs.caCert, server_name: 'localhost' };
  const ok = await once({ address: fe.address, service: WORKFLOW_SERVICE, tls, api_key: key, api_key_name: 'TEMPORAL_API_KEY', namespace: 'prod.acct1' });
  assert.deepEqual(ok, { ok: true, detail: 'SERVING; namespace prod.acct1 REGISTERED' });
  // temporal-namespace travels with DescribeNamespace only, never as static metadata
  const described = fe.calls.filter((c) => c.path.endsWith('/DescribeNamespace'));
  assert.equal(described.at(-1)!.namespaceHeader, 'prod.acct1');
  assert.ok(fe.calls.filter((c) => c.path.endsWith('/Check')).every((c) => c.namespaceHeader === null));

  const wrong = await once({ address: fe.address, service: WORKFLOW_SERVICE, tls, api_key: 'tmprl-wrong-key-000000', api_key_name: 'TEMPORAL_API_KEY' });
  assert.equal(wrong.fatal, true);
  assert.equal(wrong.detail, 'UNAUTHENTICATED: Request unauthorized. (the API key from TEMPORAL_API_KEY was refused)');
  assert.equal(wrong.hint, 'Check the API key in TEMPORAL_API_KEY (is it expired, or for another account?).');
  assert.ok(!JSON.stringify(wrong).includes('tmprl-wrong-key'));
  const missing = await once({ address: fe.address, service: WORKFLOW_SERVICE, tls });
  assert.equal(missing.detail, 'UNAUTHENTICATED: missing authorization header (no API key was sent)');
});

test('namespace: unknown is one actionable line at once; without a health service DescribeNamespace decides', async (t) => {
  const fe = await startFrontend({ namespaces: ['team'] });
  t.after(() => fe.close());
  const missing = await once({ address: fe.address, service: WORKFLOW_SERVICE, namespace: 'prod' });
  assert.equal(missing.fatal, true);
  assert.equal(missing.detail, `namespace prod not found at ${fe.address}`);
  assert.equal(missing.hint, 'Check the namespace name; Temporal Cloud namespaces look like name.account-id.');
  const noHealth = await startFrontend({ health: false, namespaces: ['team'] });
  t.after(() => noHealth.close());
  assert.deepEqual(await once({ address: noHealth.address, service: WORKFLOW_SERVICE, namespace: 'team' }), { ok: true, detail: 'namespace team REGISTERED' });
  const bare = await once({ address: noHealth.address, service: WORKFLOW_SERVICE });
  assert.equal(bare.fatal, true);
  assert.match(bare.detail, /^UNIMPLEMENTED: /);
});

test('TLS: the right CA passes; a name mismatch, an unknown CA and a plaintext client each say what failed', async (t) => {
  const fe = await startFrontend({ tls: { key: certs.pem.serverKey, cert: certs.pem.serverCert } });
  t.after(() => fe.close());
  const local = `localhost:${fe.port}`;
  assert.equal((await once({ address: local, service: WORKFLOW_SERVICE, tls: { server_ca_cert: certs.caCert } })).ok, true);
  const mismatch = await once({ address: local, service: WORKFLOW_SERVICE, tls: { server_ca_cert: certs.caCert, server_name: 'temporal.example.com' } });
  assert.equal(mismatch.fatal, true);
  assert.match(mismatch.detail, new RegExp(`^TLS handshake with ${local} failed: .*(altnames|Hostname).* \\(checked against the name temporal\\.example\\.com\\)$`));
  const unknownCa = await once({ address: local, service: WORKFLOW_SERVICE, tls: { enabled: true } });
  assert.equal(unknownCa.fatal, true);
  assert.match(unknownCa.detail, new RegExp(`^TLS handshake with ${local} failed: .* \\(the system CA roots\\)$`));
  const noFile = await once({ address: local, service: WORKFLOW_SERVICE, tls: { server_ca_cert: '/no/such/ca.pem' } });
  assert.deepEqual(noFile, { ok: false, detail: 'cannot read the server CA cert /no/such/ca.pem: ENOENT', fatal: true, hint: 'Check the TLS settings: the server CA cert, the server name the certificate is for, or whether the server speaks TLS at all.' });
  const plaintext = await once({ address: local, service: WORKFLOW_SERVICE });
  assert.deepEqual(plaintext, { ok: false, detail: `no plaintext HTTP/2 connection to ${local} (does the server want TLS?)` });
});

test('mTLS: a client certificate is required; with it the probe passes', async (t) => {
  const fe = await startFrontend({ tls: { key: certs.pem.serverKey, cert: certs.pem.serverCert, ca: certs.pem.ca } });
  t.after(() => fe.close());
  const tls = { server_ca_cert: certs.caCert, server_name: 'localhost' };
  const without = await once({ address: fe.address, service: WORKFLOW_SERVICE, tls });
  assert.equal(without.fatal, true);
  assert.equal(without.detail, `TLS handshake with ${fe.address} failed: tlsv13 alert certificate required (the server wants a client certificate (mTLS): set client_cert and client_key)`);
  const withCert = await once({ address: fe.address, service: WORKFLOW_SERVICE, tls: { ...tls, client_cert: certs.clientCert, client_key: certs.clientKey } });
  assert.deepEqual(withCert, { ok: true, detail: `SERVING (${WORKFLOW_SERVICE} at ${fe.address})` });
  assert.throws(() => grpcProbe({ address: fe.address, tls: { client_cert: certs.clientCert } }), /client_cert needs ready\.grpc\.tls\.client_key/);
});
