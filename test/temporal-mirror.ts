/**
 * A fake Temporal CLI release mirror: the real layout ({base}/v{V}/temporal_cli_{V}_{os}_{arch}.tar.gz
 * and {base}/v{V}/checksums.txt in goreleaser's format), each archive holding the stand-in
 * `temporal` (test/fixtures/temporal.mjs, mode 0755) and a LICENSE at its root. Point stigmer at it
 * with STIGMER_TEMPORAL_DOWNLOAD_URL=<mirror.url>.
 */
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { buildSync } from 'esbuild';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { buildTarGz, checksumsFile, startMirror, type Mirror, type Route } from './mirror.js';
import { cleanupHome, fixture, freePort, runCli, tempHome } from './helpers.js';

export interface TemporalMirrorOptions {
  /** releases to serve (default ['1.8.2']) */
  versions?: string[];
  /** checksums.txt lists a wrong sha256 for every archive */
  corrupt?: boolean;
  /** archives are cut off after this many bytes (the full Content-Length is announced) */
  truncateAt?: number;
  /** answer archive requests with a 302 to /assets/<name>, as GitHub does */
  redirect?: boolean;
}

export interface TemporalMirror extends Mirror {
  /** archive name for this machine and the first version, e.g. temporal_cli_1.8.2_linux_amd64.tar.gz */
  archiveName: string;
  /** request path of that archive */
  archivePath: string;
}

const PLATFORMS = ['darwin_amd64', 'darwin_arm64', 'linux_amd64', 'linux_arm64', 'windows_amd64', 'windows_arm64'];

/**
 * The stand-in `temporal` for a version: test/fixtures/temporal.mjs and the gRPC frontend it
 * imports, bundled into one self-contained script (the archive holds one executable, as the real
 * release does).
 */
export function standInScript(version: string): string {
  const out = buildSync({
    entryPoints: [fixture('temporal.mjs')],
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    write: false,
    define: { STANDIN_VERSION: JSON.stringify(version) },
    logLevel: 'error',
  });
  return out.outputFiles[0]!.text;
}

export function hostArchiveName(version: string): string {
  const os = process.platform === 'darwin' ? 'darwin' : 'linux';
  const arch = process.arch === 'arm64' ? 'arm64' : 'amd64';
  return `temporal_cli_${version}_${os}_${arch}.tar.gz`;
}

export async function startTemporalMirror(opts: TemporalMirrorOptions = {}): Promise<TemporalMirror> {
  const versions = opts.versions ?? ['1.8.2'];
  const routes: Record<string, Route> = {};
  for (const version of versions) {
    const archive = await buildTarGz([
      { path: 'LICENSE', content: 'MIT License (stand-in for the Temporal CLI license)\n' },
      { path: 'temporal', content: standInScript(version), mode: 0o755 },
    ]);
    const archives: Record<string, Buffer> = {};
    for (const p of PLATFORMS) archives[`temporal_cli_${version}_${p}.tar.gz`] = archive;
    // goreleaser also lists the Windows .zip files
    archives[`temporal_cli_${version}_windows_amd64.zip`] = Buffer.from('PK stand-in');
    archives[`temporal_cli_${version}_windows_arm64.zip`] = Buffer.from('PK stand-in');
    let sums = checksumsFile(archives);
    if (opts.corrupt) sums = sums.replace(/^[0-9a-f]{64}/gm, 'f'.repeat(64));
    routes[`/v${version}/checksums.txt`] = sums;
    for (const [name, body] of Object.entries(archives)) {
      const spec = opts.truncateAt !== undefined ? { body, truncateAt: opts.truncateAt } : { body };
      if (opts.redirect) {
        routes[`/v${version}/${name}`] = { redirectTo: `/assets/${name}` };
        routes[`/assets/${name}`] = spec;
      } else routes[`/v${version}/${name}`] = spec;
    }
  }
  const mirror = await startMirror(routes);
  const archiveName = hostArchiveName(versions[0]!);
  return Object.assign(mirror, { archiveName, archivePath: `/v${versions[0]}/${archiveName}` });
}

// ---------------------------------------------------------------------------------------------
// The rig of the end-to-end `stigmer local` tests: a temp STIGMER_HOME, random ports for Temporal
// (gRPC and UI) and the server, the release mirror above, a fake Ollama that has the default
// model, and the fixture server and agent-runner, which record the environment they receive in
// a file outside STIGMER_HOME.

export interface StackRecord {
  role: 'server' | 'agent-runner';
  pid: number;
  argv: string[];
  env: Record<string, string>;
}

export interface StackRig {
  home: string;
  ports: { temporal: number; ui: number; server: number };
  mirror: TemporalMirror;
  ollamaUrl: string;
  /** the environment for runCli: every knob pointed at this rig, the caller's LLM settings removed */
  env: Record<string, string | undefined>;
  /** what the fixtures recorded, in start order */
  records(role?: StackRecord['role']): StackRecord[];
  /** every start-dev invocation of the stand-in Temporal */
  temporalStarts(): { argv: string[]; pid: number }[];
  /** stop whatever is still up (best effort), assert nothing is left, remove everything */
  cleanup(): Promise<void>;
}

/**
 * The environment that points `stigmer local` at a test's mirror and ports, with what the
 * caller's environment could add (LLM and Temporal settings, API keys, data dir) taken out.
 */
export function localStackEnv(mirror: { url: string }, ports: { temporal: number; ui: number; server: number }): Record<string, string | undefined> {
  return {
    STIGMER_TEMPORAL_DOWNLOAD_URL: mirror.url,
    STIGMER_TEMPORAL_PORT: String(ports.temporal),
    STIGMER_TEMPORAL_UI_PORT: String(ports.ui),
    STIGMER_SERVER_ADDRESS: `127.0.0.1:${ports.server}`,
    STIGMER_LLM_PROVIDER: undefined,
    STIGMER_LLM_MODEL: undefined,
    TEMPORAL_SERVICE_ADDRESS: undefined,
    // The caller's own Temporal client settings (Temporal's environment configuration).
    TEMPORAL_ADDRESS: undefined,
    TEMPORAL_NAMESPACE: undefined,
    TEMPORAL_API_KEY: undefined,
    TEMPORAL_PROFILE: undefined,
    TEMPORAL_CONFIG_FILE: undefined,
    TEMPORAL_TLS: undefined,
    TEMPORAL_TLS_SERVER_CA_CERT_PATH: undefined,
    TEMPORAL_TLS_SERVER_NAME: undefined,
    TEMPORAL_TLS_CLIENT_CERT_PATH: undefined,
    TEMPORAL_TLS_CLIENT_KEY_PATH: undefined,
    TEMPORAL_TLS_DISABLE_HOST_VERIFICATION: undefined,
    STIGMER_LLM_API_KEY: undefined,
    ANTHROPIC_API_KEY: undefined,
    OPENAI_API_KEY: undefined,
    STIGMER_TEMPORAL_VERSION: undefined,
    STIGMER_DATA_DIR: undefined,
  };
}

export async function stackRig(opts: TemporalMirrorOptions & { models?: string[] } = {}): Promise<StackRig> {
  const home = tempHome('stigmer-local-');
  const recordDir = tempHome('stigmer-record-');
  const recordFile = join(recordDir, 'stack.jsonl');
  const temporalFile = join(recordDir, 'temporal.jsonl');
  const [temporal, ui, server] = [await freePort(), await freePort(), await freePort()];
  const mirror = await startTemporalMirror(opts);
  const models = opts.models ?? ['qwen2.5-coder:7b'];
  const ollama = http.createServer((req, res) => {
    if (req.url === '/api/tags') res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ models: models.map((name) => ({ name, model: name })) }));
    else res.writeHead(404).end();
  });
  await new Promise<void>((r) => ollama.listen(0, '127.0.0.1', r));
  const ollamaUrl = `http://127.0.0.1:${(ollama.address() as AddressInfo).port}`;
  const env: Record<string, string | undefined> = {
    ...localStackEnv(mirror, { temporal, ui, server }),
    STIGMER_SERVER_BIN: fixture('stack-server.mjs'),
    STIGMER_AGENT_RUNNER_BIN: fixture('stack-runner.mjs'),
    STIGMER_LLM_BASE_URL: ollamaUrl,
    FIXTURE_RECORD_FILE: recordFile,
    FAKE_TEMPORAL_RECORD_FILE: temporalFile,
    FAKE_TEMPORAL_SERVING_AFTER_MS: '200',
  };
  const readLines = <T>(file: string): T[] => {
    try {
      return readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as T);
    } catch {
      return [];
    }
  };
  return {
    home,
    ports: { temporal, ui, server },
    mirror,
    ollamaUrl,
    env,
    records: (role) => readLines<StackRecord>(recordFile).filter((r) => !role || r.role === role),
    temporalStarts: () => readLines<{ argv: string[]; pid: number }>(temporalFile),
    async cleanup() {
      try {
        await runCli(['local', 'stop'], { home, env, timeout: 30_000 });
        await cleanupHome(home);
      } finally {
        await mirror.close();
        await new Promise<void>((r) => ollama.close(() => r()));
        rmSync(recordDir, { recursive: true, force: true });
      }
    },
  };
}

/** Every file under `dir` that contains `needle` (to prove a secret was never written). */
export function filesContaining(dir: string, needle: string): string[] {
  const hits: string[] = [];
  const walk = (d: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile() && readFileSync(p).includes(needle)) hits.push(p);
    }
  };
  walk(dir);
  return hits;
}
