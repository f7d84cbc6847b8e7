/**
 * `stigmer doctor` and `stigmer local reset`: what they find and what they keep. Every network
 * call stays on loopback: the Temporal download location is a local mirror, Ollama a fake.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { pathToFileURL } from 'node:url';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { assertNothingLeft, cleanupHome, fixture, freePort, runCli, tempHome } from './helpers.js';
import { startTemporalMirror, stackRig } from './temporal-mirror.js';
import { inPty, strip } from './pty.js';
import { nodeSupported } from '../src/stack/doctor.js';

const { startFakeLlm } = (await import(pathToFileURL(fixture('fake-llm.mjs')).href)) as typeof import('./fixtures/fake-llm.mjs');

interface Report {
  ok: boolean;
  checks: { name: string; status: 'ok' | 'warn' | 'fail'; message: string; advice?: string }[];
}

async function doctorEnv(t: { after: (fn: () => Promise<void>) => void }): Promise<{ home: string; env: Record<string, string | undefined>; ports: number[] }> {
  const home = tempHome('stigmer-doctor-');
  const mirror = await startTemporalMirror();
  const llm = await startFakeLlm({ models: ['qwen2.5-coder:7b'] });
  t.after(async () => {
    await llm.close();
    await mirror.close();
    await cleanupHome(home);
  });
  const ports = [await freePort(), await freePort(), await freePort()];
  const env = {
    STIGMER_TEMPORAL_DOWNLOAD_URL: mirror.url,
    STIGMER_TEMPORAL_PORT: String(ports[0]),
    STIGMER_TEMPORAL_UI_PORT: String(ports[1]),
    STIGMER_SERVER_ADDRESS: `127.0.0.1:${ports[2]}`,
    STIGMER_LLM_BASE_URL: llm.url,
    STIGMER_LLM_PROVIDER: undefined,
    TEMPORAL_SERVICE_ADDRESS: undefined,
    ANTHROPIC_API_KEY: undefined,
  };
  return { home, env, ports };
}

const byName = (r: Report): Record<string, string> => Object.fromEntries(r.checks.map((c) => [c.name, c.status]));

test('doctor: all well is exit 0; a held port and a missing model are problems with advice, exit 1', async (t) => {
  const { home, env, ports } = await doctorEnv(t);
  assert.equal((await runCli(['init', '--no-download'], { home, env })).code, 0);
  const good = await runCli(['doctor', '--json'], { home, env });
  assert.equal(good.code, 0, good.stdout);
  const report = JSON.parse(good.stdout) as Report;
  assert.equal(report.ok, true);
  assert.deepEqual(byName(report), {
    node: 'ok',
    platform: 'ok',
    home: 'ok',
    config: 'ok',
    data: 'ok',
    'port:temporal-grpc': 'ok',
    'port:temporal-ui': 'ok',
    'port:stigmer-server': 'ok',
    temporal: 'warn',
    download: 'ok',
    ollama: 'ok',
    llm: 'ok',
    stack: 'ok',
  });
  assert.match(report.checks.find((c) => c.name === 'config')!.message, /config\.yaml: valid; overridden by .*STIGMER_TEMPORAL_PORT|config\.yaml: valid; overridden by /);

  const holder = net.createServer().listen(ports[0], '127.0.0.1');
  await new Promise((r) => holder.once('listening', r));
  try {
    const bad = await runCli(['doctor'], { home, env: { ...env, STIGMER_LLM_MODEL: 'llama3.2:1b' } });
    assert.equal(bad.code, 1);
    assert.match(bad.stdout, new RegExp(`^✗ port ${ports[0]} \\(Temporal gRPC\\): held by pid ${process.pid} \\(.*node.*\\)\\n    → Stop it, or move stigmer: stigmer config set backend\\.local\\.temporal\\.port <port>; or use it as an external Temporal: backend\\.local\\.temporal\\.managed false\\.$`, 'm'));
    assert.match(bad.stdout, /^✗ .*llama3\.2:1b.*\n    → .*stigmer llm pull llama3\.2:1b/m);
    assert.match(bad.stdout, /\n2 problems found, 1 note\.\n$/);
    assert.ok(!/\n\s+at /.test(bad.stdout + bad.stderr), 'no stack trace');
  } finally {
    holder.close();
  }
});

test('doctor: a broken config, an unreachable download location and a missing key are each named', async (t) => {
  const { home, env } = await doctorEnv(t);
  writeFileSync(join(home, 'config.yaml'), 'backend:\n  local:\n    temporal:\n      port: high\n');
  const broken = await runCli(['doctor', '--json'], { home, env });
  assert.equal(broken.code, 1);
  const r1 = JSON.parse(broken.stdout) as Report;
  const config = r1.checks.find((c) => c.name === 'config')!;
  assert.equal(config.status, 'fail');
  assert.match(config.message, /config\.yaml:4:13: Expected backend\.local\.temporal\.port to be an integer from 1 to 65535, got "high"$/);

  writeFileSync(join(home, 'config.yaml'), 'backend:\n  local:\n    llm:\n      provider: anthropic\n');
  const offline = await runCli(['doctor'], { home, env: { ...env, STIGMER_TEMPORAL_DOWNLOAD_URL: `http://127.0.0.1:${await freePort()}` } });
  assert.equal(offline.code, 1);
  assert.match(offline.stdout, /^✗ Temporal download location http:\/\/127\.0\.0\.1:\d+\/v1\.8\.2\/checksums\.txt: connection refused\n    → Use a mirror \(STIGMER_TEMPORAL_DOWNLOAD_URL/m);
  assert.match(offline.stdout, /^! anthropic claude-sonnet-4-5: ANTHROPIC_API_KEY is not set\n/m);
  const keyed = await runCli(['doctor', '--json'], { home, env: { ...env, ANTHROPIC_API_KEY: 'sk-ant-doctor-secret-1234567890' } });
  assert.equal((JSON.parse(keyed.stdout) as Report).checks.find((c) => c.name === 'llm')!.message, 'anthropic claude-sonnet-4-5: ANTHROPIC_API_KEY is set (environment)');
  assert.ok(!keyed.stdout.includes('sk-ant-doctor-secret'), 'never the key itself');
});

function seedData(home: string): { deleted: string[]; kept: string[] } {
  const data = join(home, 'data');
  mkdirSync(data, { recursive: true });
  mkdirSync(join(home, 'logs'), { recursive: true });
  mkdirSync(join(home, 'bin', 'temporal-1.8.2'), { recursive: true });
  const deleted = [join(data, 'temporal.db'), join(data, 'temporal.db-wal'), join(data, 'wal.jsonl'), join(data, 'snapshot.json'), join(home, 'logs', 'start-server.log')];
  const kept = [join(data, 'my-notes.txt'), join(home, 'config.yaml'), join(home, '.env'), join(home, 'bin', 'temporal-1.8.2', 'temporal')];
  for (const f of [...deleted, ...kept]) writeFileSync(f, f.endsWith('config.yaml') ? 'backend:\n  type: local\n' : 'x');
  return { deleted, kept };
}

test('local reset: refuses without --yes and no terminal; --yes deletes only the stack\'s data', async () => {
  const home = tempHome('stigmer-reset-');
  try {
    const { deleted, kept } = seedData(home);
    const refused = await runCli(['local', 'reset'], { home });
    assert.equal(refused.code, 2);
    assert.match(refused.stderr, /pass --yes to confirm \(there is no terminal to ask on\)\n$/);
    for (const f of [...deleted, ...kept]) assert.ok(existsSync(f), `${f} untouched`);

    const r = await runCli(['local', 'reset', '--yes'], { home });
    assert.equal(r.code, 0, r.stderr);
    for (const f of deleted.filter((f) => !f.includes('/logs/'))) assert.ok(!existsSync(f), `${f} deleted`);
    assert.ok(!existsSync(join(home, 'logs')), 'logs deleted');
    for (const f of kept) assert.ok(existsSync(f), `${f} kept`);
    assert.match(r.stdout, /^Deleted the local stack's data:\n/);
    assert.match(r.stdout, /Kept the config and the downloads\. Start afresh with: stigmer local start\n$/);

    writeFileSync(join(home, 'config.yaml'), 'backend:\n  tpye: local\n');
    const broken = await runCli(['local', 'reset', '--yes'], { home });
    assert.equal(broken.code, 2, 'a broken config changes nothing');
    assert.ok(existsSync(join(home, 'data', 'my-notes.txt')));
  } finally {
    await cleanupHome(home);
  }
});

test('local reset on a terminal asks first; "n" changes nothing, "y" stops the running stack and deletes its data', async (t) => {
  const r = await stackRig();
  t.after(() => r.cleanup());
  const start = await runCli(['local', 'start'], { home: r.home, env: r.env });
  assert.equal(start.code, 0, start.stderr);
  const db = join(r.home, 'data', 'temporal.db');
  assert.ok(existsSync(db));

  const no = await inPty(['local', 'reset'], r.home, { cols: 120, env: r.env, input: { when: /\[y\/N\] /, send: 'n\r' } });
  assert.equal(no.code, 0);
  assert.match(strip(no.screen), /Stop the local stack and delete its data \(Temporal's database and the server's store in .*, and the logs\)\? Config and downloads are kept\. \[y\/N\] n\r*\n/);
  assert.match(no.screen, /stigmer: nothing changed/);
  assert.ok(existsSync(db), 'still there');

  const yes = await inPty(['local', 'reset'], r.home, { cols: 120, env: r.env, input: { when: /\[y\/N\] /, send: 'y\r' } });
  assert.equal(yes.code, 0, yes.screen);
  assert.match(yes.screen, /Deleted the local stack's data:/);
  assert.ok(!existsSync(db), 'Temporal database deleted');
  assert.ok(existsSync(join(r.home, 'config.yaml')), 'config kept');
  assert.ok(readFileSync(join(r.home, 'config.yaml'), 'utf8').includes('backend:'));
  await assertNothingLeft(r.home);
});

test('the Node.js versions stigmer runs on: 20.19+ and 22.12+ (each the first to require() an ES module without a flag), not 21 or an early 22', () => {
  for (const v of ['20.19.0', '20.20.2', '22.12.0', '22.20.1', '23.0.0', '24.11.1']) assert.equal(nodeSupported(v), true, v);
  for (const v of ['18.20.4', '20.18.3', '21.7.3', '22.0.0', '22.11.0']) assert.equal(nodeSupported(v), false, v);
  assert.equal(nodeSupported(process.versions.node), true, 'the machine the suite runs on');
});
