/**
 * The local stack against an external Temporal and a Temporal Cloud look-alike (the test frontend:
 * real gRPC, TLS with certificates made here, API keys in `authorization: Bearer`), and a managed
 * stack in a shell set up for Temporal Cloud. What the agent-runner receives is asserted for
 * each set-up, and no key value may appear in any output or file.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { connect } from 'node:net';
import { WORKFLOW_SERVICE } from '../src/process/grpc-codec.js';
import { fixture, runCli } from './helpers.js';
import { filesContaining, stackRig, type StackRecord, type StackRig } from './temporal-mirror.js';
import { testCerts } from './tls-certs.js';
import type * as FrontendModule from './fixtures/temporal-frontend.mjs';

const { startFrontend } = (await import(pathToFileURL(fixture('temporal-frontend.mjs')).href)) as typeof FrontendModule;
const certs = testCerts();

const KEY = 'tmprl-test-api-key-7c1e9a5b3f';

async function rig(t: { after: (fn: () => Promise<void> | void) => void }): Promise<StackRig> {
  const r = await stackRig();
  t.after(() => r.cleanup());
  return r;
}

/** The Temporal part of what the agent-runner received. */
function temporalEnv(rec: StackRecord | undefined): Record<string, string> {
  assert.ok(rec, 'the agent-runner recorded its environment');
  return Object.fromEntries(Object.entries(rec.env).filter(([k]) => k.startsWith('TEMPORAL_')));
}

function assertNoKey(r: StackRig, outputs: string[], key = KEY): void {
  for (const o of outputs) assert.ok(!o.includes(key), `the key was printed:\n${o}`);
  assert.deepEqual(filesContaining(r.home, key), [], 'the key was written under STIGMER_HOME');
}

test('managed Temporal in a shell set up for Temporal Cloud: its variables are ignored, the probe and the runner stay local', async (t) => {
  const r = await rig(t);
  const cloudShell = {
    TEMPORAL_API_KEY: KEY,
    TEMPORAL_NAMESPACE: 'prod.acct1',
    TEMPORAL_TLS: 'true',
    TEMPORAL_TLS_SERVER_NAME: 'prod.acct1.tmprl.cloud',
    TEMPORAL_PROFILE: 'cloud',
  };
  const env = { ...r.env, ...cloudShell };
  const start = await runCli(['local', 'start', '--no-input'], { home: r.home, env });
  assert.equal(start.code, 0, start.stderr);
  assert.match(start.stdout, /start-temporal: ready/);
  const runner = temporalEnv(r.records('agent-runner')[0]);
  assert.deepEqual(runner, {
    TEMPORAL_SERVICE_ADDRESS: `127.0.0.1:${r.ports.temporal}`,
    TEMPORAL_ADDRESS: `127.0.0.1:${r.ports.temporal}`,
    TEMPORAL_NAMESPACE: 'default',
  });
  const status = await runCli(['local', 'status', '--json'], { home: r.home, env });
  assert.equal((JSON.parse(status.stdout) as { temporal: { health: string } }).temporal.health, 'SERVING');
  const list = await runCli(['config', 'list', '--show-origin'], { home: r.home, env });
  assert.match(list.stdout, /backend\.local\.temporal\.namespace +default +default \(TEMPORAL_NAMESPACE ignored: it applies to an external Temporal only\)/);
  assert.match(list.stdout, /backend\.local\.temporal\.tls\.enabled +false +default \(TEMPORAL_TLS ignored/);
  assertNoKey(r, [start.stdout, start.stderr, status.stdout, list.stdout]);
});

test('external Temporal with mTLS from config set: ready, and the runner gets the TLS files by their standard names', async (t) => {
  const r = await rig(t);
  const fe = await startFrontend({ tls: { key: certs.pem.serverKey, cert: certs.pem.serverCert, ca: certs.pem.ca }, namespaces: ['team'] });
  t.after(() => fe.close());
  for (const [k, v] of [
    ['backend.local.temporal.managed', 'false'],
    ['backend.local.temporal.address', `localhost:${fe.port}`],
    ['backend.local.temporal.namespace', 'team'],
    ['backend.local.temporal.auth', 'mtls'],
    ['backend.local.temporal.tls.server_ca_cert', certs.caCert],
    ['backend.local.temporal.tls.client_cert', certs.clientCert],
    ['backend.local.temporal.tls.client_key', certs.clientKey],
  ]) {
    const set = await runCli(['config', 'set', k!, v!], { home: r.home, env: r.env });
    assert.equal(set.code, 0, set.stderr);
  }
  const start = await runCli(['local', 'start', '--no-input'], { home: r.home, env: r.env });
  assert.equal(start.code, 0, start.stderr);
  assert.match(start.stdout, /wait-temporal: done .*SERVING; namespace team REGISTERED/);
  assert.deepEqual(temporalEnv(r.records('agent-runner')[0]), {
    TEMPORAL_SERVICE_ADDRESS: `localhost:${fe.port}`,
    TEMPORAL_ADDRESS: `localhost:${fe.port}`,
    TEMPORAL_NAMESPACE: 'team',
    TEMPORAL_TLS: 'true',
    TEMPORAL_TLS_SERVER_CA_CERT_PATH: certs.caCert,
    TEMPORAL_TLS_CLIENT_CERT_PATH: certs.clientCert,
    TEMPORAL_TLS_CLIENT_KEY_PATH: certs.clientKey,
  });
  const status = await runCli(['local', 'status', '--json'], { home: r.home, env: r.env });
  assert.equal((JSON.parse(status.stdout) as { temporal: { health: string } }).temporal.health, 'SERVING');
});

test('Temporal Cloud with an API key from the environment: TLS implied, temporal-namespace per request, the key never shown', async (t) => {
  const r = await rig(t);
  const fe = await startFrontend({ apiKey: KEY, tls: { key: certs.pem.serverKey, cert: certs.pem.serverCert }, namespaces: ['prod.acct1'] });
  t.after(() => fe.close());
  const env = {
    ...r.env,
    TEMPORAL_ADDRESS: `localhost:${fe.port}`,
    TEMPORAL_NAMESPACE: 'prod.acct1',
    TEMPORAL_API_KEY: KEY,
    TEMPORAL_TLS_SERVER_CA_CERT_PATH: certs.caCert,
  };
  const start = await runCli(['local', 'start', '--no-input', '--output', 'json'], { home: r.home, env });
  assert.equal(start.code, 0, start.stderr);
  assert.match(start.stdout, /Temporal API key from TEMPORAL_API_KEY \(environment\)/);
  const runner = temporalEnv(r.records('agent-runner')[0]);
  assert.equal(runner['TEMPORAL_API_KEY'], KEY, 'the runner gets the key through its environment');
  assert.equal(runner['TEMPORAL_TLS'], 'true');
  assert.equal(runner['TEMPORAL_NAMESPACE'], 'prod.acct1');
  const described = fe.calls.filter((c) => c.path.endsWith('/DescribeNamespace'));
  assert.ok(described.length > 0 && described.every((c) => c.namespaceHeader === 'prod.acct1'));
  assert.ok(fe.calls.filter((c) => !c.path.endsWith('/DescribeNamespace')).every((c) => c.namespaceHeader === null), 'never static metadata');
  const list = await runCli(['config', 'list', '--show-origin'], { home: r.home, env });
  assert.match(list.stdout, /backend\.local\.temporal\.address +localhost:\d+ +env \(TEMPORAL_ADDRESS\)/);
  assert.match(list.stdout, /backend\.local\.temporal\.auth +api-key +default \(an API key in TEMPORAL_API_KEY\)/);
  const status = await runCli(['local', 'status'], { home: r.home, env });
  assert.match(status.stdout, /health: SERVING/);
  assertNoKey(r, [start.stdout, start.stderr, list.stdout, status.stdout]);
});

test('API key: a wrong one fails at once naming the variable; a missing one under --no-input fails before anything starts', async (t) => {
  const r = await rig(t);
  const fe = await startFrontend({ apiKey: KEY, tls: { key: certs.pem.serverKey, cert: certs.pem.serverCert } });
  t.after(() => fe.close());
  const wrongKey = 'tmprl-wrong-key-0d8e2f4a6c';
  const base = { ...r.env, TEMPORAL_ADDRESS: `localhost:${fe.port}`, TEMPORAL_TLS_SERVER_CA_CERT_PATH: certs.caCert };
  const started = Date.now();
  const wrong = await runCli(['local', 'start', '--no-input'], { home: r.home, env: { ...base, TEMPORAL_API_KEY: wrongKey } });
  assert.equal(wrong.code, 1);
  assert.ok(Date.now() - started < 20_000, 'no wait for the deadline');
  assert.match(wrong.stderr, /stigmer: wait-temporal failed: UNAUTHENTICATED: Request unauthorized\. \(the API key from TEMPORAL_API_KEY \(environment\) was refused\)/);
  assert.match(wrong.stderr, /hint: Check the API key in TEMPORAL_API_KEY \(environment\)/);
  assertNoKey(r, [wrong.stdout, wrong.stderr], wrongKey);

  const set = await runCli(['config', 'set', 'backend.local.temporal.auth', 'api-key'], { home: r.home, env: base });
  assert.equal(set.code, 0, set.stderr);
  const missing = await runCli(['local', 'start', '--no-input'], { home: r.home, env: base });
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /stigmer: gather-secrets failed: TEMPORAL_API_KEY is not set \(--no-input was given; backend\.local\.temporal\.auth is api-key\)/);
  assert.doesNotMatch(missing.stdout, /start-server: ready/);
});

test('wrong namespace and TLS name mismatch: one actionable line each, at once', async (t) => {
  const r = await rig(t);
  const fe = await startFrontend({ tls: { key: certs.pem.serverKey, cert: certs.pem.serverCert }, namespaces: ['prod.acct1'] });
  t.after(() => fe.close());
  const base = { ...r.env, TEMPORAL_ADDRESS: `localhost:${fe.port}`, TEMPORAL_TLS_SERVER_CA_CERT_PATH: certs.caCert };
  const ns = await runCli(['local', 'start', '--no-input'], { home: r.home, env: { ...base, TEMPORAL_NAMESPACE: 'prod' } });
  assert.equal(ns.code, 1);
  assert.match(ns.stderr, new RegExp(`stigmer: wait-temporal failed: namespace prod not found at localhost:${fe.port}`));
  assert.match(ns.stderr, /hint: Check the namespace name; Temporal Cloud namespaces look like name\.account-id\./);

  const name = await runCli(['local', 'start', '--no-input'], { home: r.home, env: { ...base, TEMPORAL_TLS_SERVER_NAME: 'prod.acct1.tmprl.cloud' } });
  assert.equal(name.code, 1);
  assert.match(name.stderr, /stigmer: wait-temporal failed: TLS handshake with localhost:\d+ failed: .* \(checked against the name prod\.acct1\.tmprl\.cloud\)/);
});

test('a profile of Temporal\'s own temporal.toml: address, namespace, TLS and the API key from it', async (t) => {
  const r = await rig(t);
  const fe = await startFrontend({ apiKey: KEY, tls: { key: certs.pem.serverKey, cert: certs.pem.serverCert }, namespaces: ['prod.acct1'] });
  t.after(() => fe.close());
  const dir = mkdtempSync(join(tmpdir(), 'stigmer-toml-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const toml = join(dir, 'temporal.toml');
  writeFileSync(
    toml,
    [
      '[profile.default]',
      'address = "localhost:1"',
      '',
      '[profile.cloud]',
      `address = "localhost:${fe.port}"`,
      'namespace = "prod.acct1"',
      `api_key = "${KEY}"`,
      '[profile.cloud.tls]',
      `server_ca_cert_path = "${certs.caCert}"`,
      '',
    ].join('\n'),
  );
  const env = { ...r.env, TEMPORAL_CONFIG_FILE: toml };
  for (const [k, v] of [
    ['backend.local.temporal.managed', 'false'],
    ['backend.local.temporal.profile', 'cloud'],
  ]) assert.equal((await runCli(['config', 'set', k!, v!], { home: r.home, env })).code, 0);
  const start = await runCli(['local', 'start', '--no-input'], { home: r.home, env });
  assert.equal(start.code, 0, start.stderr);
  assert.match(start.stdout, /Temporal API key from api_key of profile cloud in /);
  const runner = temporalEnv(r.records('agent-runner')[0]);
  assert.equal(runner['TEMPORAL_ADDRESS'], `localhost:${fe.port}`);
  assert.equal(runner['TEMPORAL_NAMESPACE'], 'prod.acct1');
  assert.equal(runner['TEMPORAL_API_KEY'], KEY);
  const list = await runCli(['config', 'list', '--show-origin'], { home: r.home, env });
  assert.match(list.stdout, new RegExp(`backend\\.local\\.temporal\\.address +localhost:${fe.port} +profile \\(profile cloud in ${toml.replace(/[.]/g, '\\.')}\\)`));
  const unknown = await runCli(['local', 'start', '--no-input'], { home: r.home, env: { ...env, TEMPORAL_PROFILE: 'staging' } });
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /has no profile "staging" \(profiles: default, cloud\)/);
  assertNoKey(r, [start.stdout, start.stderr, list.stdout]);
});

test('local status asks the same health check: SERVING, then NOT_SERVING, then unreachable', async (t) => {
  const r = await rig(t);
  const fe = await startFrontend({ namespaces: ['team'] });
  let closed = false;
  t.after(() => (closed ? undefined : fe.close()));
  const env = { ...r.env, TEMPORAL_ADDRESS: `127.0.0.1:${fe.port}`, TEMPORAL_NAMESPACE: 'team' };
  const start = await runCli(['local', 'start', '--no-input'], { home: r.home, env });
  assert.equal(start.code, 0, start.stderr);
  const health = async (): Promise<string> => {
    const s = await runCli(['local', 'status', '--json'], { home: r.home, env });
    return (JSON.parse(s.stdout) as { temporal: { health: string } }).temporal.health;
  };
  assert.equal(await health(), 'SERVING');
  // the supervisor's health op (how local status checks a managed Temporal): one live check each time
  const ask = async (): Promise<unknown> => {
    const sock = connect(join(r.home, 'supervisor.sock'));
    const line = await new Promise<string>((res, rej) => {
      let got = '';
      sock.on('data', (d) => (got += d));
      sock.on('close', () => res(got.split('\n')[0]!));
      sock.on('error', rej);
      sock.write(`${JSON.stringify({ op: 'health', address: `127.0.0.1:${fe.port}`, service: WORKFLOW_SERVICE, timeoutMs: 3000 })}\n`);
    });
    return JSON.parse(line);
  };
  assert.deepEqual(await ask(), { t: 'health', answer: { ok: true, value: 'SERVING' } });
  fe.setServing(false);
  assert.deepEqual(await ask(), { t: 'health', answer: { ok: true, value: 'NOT_SERVING' } });
  assert.equal(await health(), 'NOT_SERVING');
  await fe.close();
  closed = true;
  assert.match(await health(), /^unreachable \(.*refused/);
  const text = await runCli(['local', 'status'], { home: r.home, env });
  assert.match(text.stdout, /health: unreachable \(/);
});
