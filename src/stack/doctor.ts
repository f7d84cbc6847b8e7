/**
 * `stigmer doctor`: what a user checks when something is wrong, in one place. Each check says
 * what it found and, for a problem, one line of advice. It changes nothing, and the only network
 * calls are the ones a check names: Ollama's /api/version and /api/tags, Temporal's port when it is
 * external, and the Temporal and Ollama download locations when they still have to be downloaded.
 *
 *   ok    all is well
 *   warn  works, but worth knowing (a missing config file, a CLI not downloaded yet)
 *   fail  something the stack needs is broken: exit 1
 */
import { accessSync, constants, existsSync, statfsSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { dataPaths, stigmerHome } from '../util/paths.js';
import { parseAddress } from '../util/address.js';
import { LLM_DEFAULTS } from './llm/defaults.js';
import type { TaskStatusView } from '../engine/inspect.js';

export type CheckStatus = 'ok' | 'warn' | 'fail';

export interface Check {
  /** short name: node, platform, home, config, port:<what>, temporal, download, ollama, ollama-download, llm, stack */
  name: string;
  status: CheckStatus;
  /** what was found, one line */
  message: string;
  /** what to do about it (warn and fail only) */
  advice?: string;
}

export interface DoctorReport {
  ok: boolean;
  checks: Check[];
}

/**
 * The Node.js lines stigmer runs on: the first release of each that loads an ES module through
 * require() without a flag (the precompiled validators are required that way). 21 never did.
 */
const NODE_LINES = [[20, 19], [22, 12]] as const;
const NODE_NEEDED = '20.19 (or 22.12 and newer)';
/** Below this much free space a Temporal download and its SQLite file may not fit. */
const LOW_DISK = 512 * 1024 * 1024;
const PROBE_MS = 2000;

/** "12.3 GiB" / "512.0 MiB": free space reads better in GiB than in the progress bars' MiB. */
function formatSpace(n: number): string {
  return n >= 1024 ** 3 ? `${(n / 1024 ** 3).toFixed(1)} GiB` : `${(n / 1024 ** 2).toFixed(1)} MiB`;
}

const ok = (name: string, message: string): Check => ({ name, status: 'ok', message });
const warn = (name: string, message: string, advice: string): Check => ({ name, status: 'warn', message, advice });
const fail = (name: string, message: string, advice: string): Check => ({ name, status: 'fail', message, advice });

/** Whether this Node.js is on one of NODE_LINES at or past its first good release, or newer than them all. */
export function nodeSupported(version: string): boolean {
  const [major = 0, minor = 0] = version.split('.').map(Number);
  const last = NODE_LINES[NODE_LINES.length - 1]!;
  if (major > last[0]) return true;
  return NODE_LINES.some(([m, n]) => major === m && minor >= n);
}

function checkNode(): Check {
  const message = `Node.js ${process.versions.node} (stigmer needs >= ${NODE_NEEDED})`;
  return nodeSupported(process.versions.node) ? ok('node', message) : fail('node', message, `Install Node.js ${NODE_NEEDED}.`);
}

function checkPlatform(): Check {
  const supported = (process.platform === 'linux' || process.platform === 'darwin') && (process.arch === 'x64' || process.arch === 'arm64');
  const message = `${process.platform}/${process.arch}`;
  return supported
    ? ok('platform', `${message}: the managed Temporal CLI is available`)
    : warn('platform', `${message}: stigmer cannot manage Temporal here`, 'Run a Temporal server yourself: stigmer config set backend.local.temporal.managed false, and set backend.local.temporal.address.');
}

/** The nearest existing folder at or above `dir`: where a directory stigmer creates would go. */
function existingAncestor(dir: string): string {
  let d = dir;
  while (!existsSync(d) && d !== join(d, '..')) d = join(d, '..');
  return d;
}

function checkDir(name: string, what: string, dir: string): Check {
  const at = existingAncestor(dir);
  try {
    accessSync(at, constants.W_OK);
  } catch {
    return fail(name, `${what} ${dir}: not writable (${at})`, `Make ${at} writable, or set STIGMER_HOME to a folder you own.`);
  }
  let free: number | undefined;
  try {
    const s = statfsSync(at);
    free = s.bavail * s.bsize;
  } catch {
    // statfs is not everywhere: say nothing about space
  }
  const where = at === dir ? dir : `${dir} (will be created in ${at})`;
  const space = free === undefined ? '' : `, ${formatSpace(free)} free`;
  if (free !== undefined && free < LOW_DISK) return warn(name, `${what} ${where}: writable${space}`, 'Free some disk space: the Temporal CLI, its SQLite file and the logs need room.');
  return ok(name, `${what} ${where}: writable${space}`);
}

type Loaded = Awaited<ReturnType<typeof loadConfigModule>>;
async function loadConfigModule(): Promise<typeof import('./config/index.js')> {
  return import('./config/index.js');
}

function checkConfig(mod: Loaded, home: string): { check: Check; config?: import('./config/index.js').StigmerConfig } {
  const tried = mod.tryLoadConfig({ home });
  if (!tried.ok) {
    return { check: fail('config', `${tried.error.file}: ${tried.error.error.message.split('\n')[0]}`, `Fix the file (stigmer config list shows each value's origin), or rewrite it with the defaults: stigmer init --force.`) };
  }
  const loaded = tried.value;
  // The origin chain: what overrides the file, highest first.
  const over = new Map<string, string[]>();
  for (const [key, origin] of Object.entries(loaded.origins)) {
    if (origin === 'file' || origin === 'default' || origin === undefined) continue;
    const source = loaded.sources[key] ?? origin;
    const label = `${source} (${origin})`;
    over.set(label, [...(over.get(label) ?? []), key]);
  }
  const chain = [...over.keys()];
  const overrides = chain.length ? `; overridden by ${chain.join(', ')}` : '';
  if (!existsSync(loaded.file)) {
    return { check: warn('config', `${loaded.file} does not exist: the defaults apply${overrides}`, 'Write the commented default config with: stigmer init (stigmer local start writes it too).'), config: loaded.config };
  }
  return { check: ok('config', `${loaded.file}: valid${overrides}`), config: loaded.config };
}

/** The stack's own tasks that hold a port, by port: a port held by them is not a problem. */
function stackHolders(home: string, views: TaskStatusView[]): Map<number, string> {
  void home;
  const held = new Map<number, string>();
  for (const v of views) {
    if (v.state !== 'ready' || !v.address) continue;
    const port = parseAddress(v.address)?.port;
    if (port !== undefined) held.set(port, `${v.task}${v.pid ? `, pid ${v.pid}` : ''}`);
  }
  return held;
}

async function checkPorts(config: import('./config/index.js').StigmerConfig, views: TaskStatusView[], home: string): Promise<Check[]> {
  const { inspectPort } = await import('../process/proc.js');
  const { temporal, endpoint } = config.backend.local;
  const ports: [string, number | undefined, string][] = [
    ['Temporal gRPC', temporal.managed ? temporal.port : undefined, 'backend.local.temporal.port'],
    ['Temporal UI', temporal.managed ? temporal.ui_port : undefined, 'backend.local.temporal.ui_port'],
    ['stigmer-server', parseAddress(endpoint)?.port, 'backend.local.endpoint'],
  ];
  const ours = stackHolders(home, views);
  const checks: Check[] = [];
  for (const [what, port, key] of ports) {
    if (port === undefined) continue;
    const name = `port:${what.toLowerCase().replace(/\s+/g, '-')}`;
    const mine = ours.get(port);
    if (mine) {
      checks.push(ok(name, `port ${port} (${what}): held by the running stack (${mine})`));
      continue;
    }
    const state = inspectPort(port);
    // held by a process of the running stack other than through its recorded address (the UI
    // port of stigmer's Temporal)
    const task = state.holder ? views.find((v) => v.state === 'ready' && v.pid === state.holder!.pid) : undefined;
    if (task) checks.push(ok(name, `port ${port} (${what}): held by the running stack (${task.task}, pid ${task.pid})`));
    else if (!state.listening) checks.push(ok(name, `port ${port} (${what}): free`));
    else {
      const who = state.holder ? `pid ${state.holder.pid} (${state.holder.command})` : 'another process';
      checks.push(fail(name, `port ${port} (${what}): held by ${who}`, `Stop it, or move stigmer: stigmer config set ${key} <port>${what === 'Temporal gRPC' ? '; or use it as an external Temporal: backend.local.temporal.managed false' : ''}.`));
    }
  }
  return checks;
}

function tcpReachable(host: string, port: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    const done = (error?: string): void => {
      socket.destroy();
      resolve(error);
    };
    socket.setTimeout(PROBE_MS, () => done('no answer within 2 s'));
    socket.once('connect', () => done());
    socket.once('error', (e: NodeJS.ErrnoException) => done(e.code === 'ECONNREFUSED' ? 'connection refused' : (e.code ?? e.message)));
  });
}

/** HEAD of a URL (following nothing): whether the download location answers at all. */
function urlReachable(url: string): Promise<string | undefined> {
  const { request } = url.startsWith('https:') ? https : http;
  return new Promise((resolve) => {
    try {
      const req = request(url, { method: 'HEAD', timeout: PROBE_MS }, (res) => {
        res.resume();
        const status = res.statusCode ?? 0;
        resolve(status >= 200 && status < 400 ? undefined : `HTTP ${status}`);
      });
      req.on('timeout', () => req.destroy(new Error('no answer within 2 s')));
      req.on('error', (e: NodeJS.ErrnoException) => resolve(e.code === 'ENOTFOUND' ? 'host not found' : e.code === 'ECONNREFUSED' ? 'connection refused' : e.message));
      req.end();
    } catch (e) {
      resolve((e as Error).message);
    }
  });
}

async function checkTemporal(mod: Loaded, config: import('./config/index.js').StigmerConfig): Promise<Check[]> {
  const t = config.backend.local.temporal;
  if (!t.managed) {
    const addr = parseAddress(t.address);
    if (!addr) return [fail('temporal', `external Temporal address "${t.address}" is not host:port`, 'Set backend.local.temporal.address (or TEMPORAL_SERVICE_ADDRESS) to host:port.')];
    const error = await tcpReachable(addr.host, addr.port);
    return error
      ? [fail('temporal', `external Temporal at ${t.address}: ${error}`, 'Start it, or check TEMPORAL_SERVICE_ADDRESS / backend.local.temporal.address; or let stigmer manage one: backend.local.temporal.managed true.')]
      : [ok('temporal', `external Temporal at ${t.address}: accepts connections`)];
  }
  let release: ReturnType<typeof mod.temporalRelease>;
  try {
    release = mod.temporalRelease(config);
  } catch (e) {
    return [fail('temporal', (e as Error).message.split('\n')[0]!, 'Use an external Temporal: backend.local.temporal.managed false.')];
  }
  const { chooseTemporalCli, withoutTemporalEnv } = await import('./config/temporal.js');
  let cli: ReturnType<typeof chooseTemporalCli>;
  try {
    cli = chooseTemporalCli(config, release);
  } catch (e) {
    const [first, ...rest] = (e as Error).message.split('\n');
    return [fail('temporal', first!, rest.join(' ') || 'Unset backend.local.temporal.bin to let stigmer download the CLI.')];
  }
  if (cli.source !== 'download') {
    const from = cli.source === 'path' ? 'on PATH' : 'backend.local.temporal.bin';
    return [ok('temporal', `Temporal CLI ${cli.version} (${from}) answers --version: ${cli.bin}`), ok('download', 'Temporal download: not needed (a CLI of your own is used)')];
  }
  if (existsSync(release.bin)) {
    const r = spawnSync(release.bin, ['--version'], { encoding: 'utf8', timeout: 5000, env: withoutTemporalEnv(process.env) });
    const out = `${r.stdout ?? ''}`.trim().split('\n')[0] ?? '';
    if (r.status === 0 && out.includes(release.version)) return [ok('temporal', `Temporal CLI ${release.version} installed and verified: ${release.bin} (${out})`), ok('download', 'Temporal download: not needed (installed)')];
    return [
      fail('temporal', `Temporal CLI at ${release.bin} does not answer --version with ${release.version} (${r.error?.message ?? (out || `exit ${r.status}`)})`, `Reinstall it: remove ${release.installDir}; stigmer local start downloads it again.`),
    ];
  }
  const error = await urlReachable(release.checksumsUrl);
  const notYet = warn('temporal', `Temporal CLI ${release.version} not downloaded yet (${release.bin})`, 'stigmer local start (or stigmer init) downloads and verifies it.');
  return error
    ? [notYet, fail('download', `Temporal download location ${release.checksumsUrl}: ${error}`, 'Use a mirror (STIGMER_TEMPORAL_DOWNLOAD_URL or backend.local.temporal.download_url), or an external Temporal (TEMPORAL_SERVICE_ADDRESS).')]
    : [notYet, ok('download', `Temporal download location ${release.checksumsUrl}: reachable`)];
}

/** What `local start` would do about Ollama (find-ollama's choice) and whether stigmer's own runs. */
interface OllamaPlan {
  values: import('./llm/managed.js').OllamaValues;
  choice: import('./llm/managed.js').OllamaChoice;
  /** stigmer's own `ollama serve` listening on the port, with its pid */
  running: { pid: number } | undefined;
}

async function planOllama(config: import('./config/index.js').StigmerConfig, home: string): Promise<OllamaPlan | undefined> {
  if (config.backend.local.llm.provider !== 'ollama') return undefined;
  const [{ stackValues }, { findOllama, heldByUs }, { inspectPort }] = await Promise.all([import('./resolve.js'), import('./llm/managed.js'), import('../process/proc.js')]);
  const values = (stackValues(config) as unknown as { ollama: import('./llm/managed.js').OllamaValues }).ollama;
  const choice = await findOllama(values, { env: process.env, home, pull: true });
  const managed = choice.source === 'path' || choice.source === 'download';
  const pid = managed && values.port !== null && heldByUs(values.port, home) ? inspectPort(values.port).holder?.pid : undefined;
  return { values, choice, running: pid ? { pid } : undefined };
}

/** `ollama --version` of a binary stigmer would run: "0.31.0", or why it does not answer. */
function ollamaCliVersion(bin: string, host: string | null): { version?: string; error?: string } {
  const r = spawnSync(bin, ['--version'], { encoding: 'utf8', timeout: 5000, env: { ...process.env, ...(host ? { OLLAMA_HOST: host } : {}) } });
  const out = `${r.stdout ?? ''}\n${r.stderr ?? ''}`;
  // "ollama version is 0.5.1", or without a server "Warning: client version is 0.5.1"
  const m = /version is (\S+)/.exec(out);
  if (r.status === 0 && m) return { version: m[1]! };
  return { error: r.error?.message ?? (out.trim().split('\n')[0] || `exit ${r.status}`) };
}

/** Whether Ollama's store in `models` holds `model` (its manifest), read from disk: Ollama need not run. */
export function modelOnDisk(models: string, model: string): boolean {
  const [name, tag = 'latest'] = model.includes(':') ? [model.slice(0, model.lastIndexOf(':')), model.slice(model.lastIndexOf(':') + 1)] : [model];
  const path = name.includes('/') ? name : `library/${name}`;
  return existsSync(join(models, 'manifests', 'registry.ollama.ai', ...path.split('/'), tag));
}

/** Managed Ollama: which one `local start` uses, its version, whether it runs, where it comes from. */
async function checkOllamaManaged(plan: OllamaPlan, home: string): Promise<Check[]> {
  const { values: o, choice: c, running } = plan;
  if (c.source === 'none') return [];
  if (c.source === 'external') return [ok('ollama', c.description)];
  if (c.source === 'off') {
    return [o.managed === 'false' ? ok('ollama', c.description) : warn('ollama', c.description, 'Install Ollama yourself (https://ollama.com/download), or use a hosted provider: stigmer config set backend.local.llm.provider anthropic.')];
  }
  if (!running && o.port !== null) {
    const { inspectPort } = await import('../process/proc.js');
    const held = inspectPort(o.port);
    if (held.listening) {
      const who = held.holder ? `pid ${held.holder.pid} (${held.holder.command})` : 'another process';
      return [fail('ollama', `port ${o.port} (Ollama, from backend.local.llm.base_url): held by ${who}, which does not answer as Ollama`, 'Stop it, or move stigmer\'s Ollama to another port: stigmer config set backend.local.llm.base_url http://127.0.0.1:<port>.')];
    }
  }
  const where = running ? `running on ${o.host} (pid ${running.pid})` : `not running: stigmer local start runs it on ${o.host}`;
  if (c.source === 'path') {
    const v = ollamaCliVersion(c.bin!, o.host);
    if (!v.version) return [fail('ollama', `${c.bin} (from PATH) does not answer --version (${v.error})`, 'Repair or remove that ollama (stigmer then downloads its own), or run your Ollama yourself: stigmer then uses it as it is.')];
    return [running ? ok('ollama', `Ollama ${v.version} from PATH (${c.bin}), run by stigmer: ${where}`) : warn('ollama', `Ollama ${v.version} from PATH (${c.bin}): ${where}`, 'stigmer local start starts it (and pulls the model when it is missing).')];
  }
  const { checkInstalled } = await import('../process/download/install.js');
  const installed = await checkInstalled({ url: o.archive_url!, dest: o.install_dir!, checksumsUrl: o.checksums_url!, extract: true });
  if (installed) {
    const msg = `Ollama ${o.version} installed by stigmer and verified: ${o.install_bin}; ${where}`;
    return [running ? ok('ollama', msg) : warn('ollama', msg, 'stigmer local start starts it (and pulls the model when it is missing).')];
  }
  void home;
  const error = await urlReachable(o.checksums_url!);
  const notYet = warn('ollama', `Ollama ${o.version} not downloaded yet (${o.install_dir})`, 'stigmer local start downloads it (about 1.1 GB), verifies it against sha256sum.txt and runs it; or install Ollama yourself (https://ollama.com/download).');
  if (!error) return [notYet, ok('ollama-download', `Ollama download location ${o.checksums_url}: reachable`)];
  const advice = 'Use a mirror (STIGMER_OLLAMA_DOWNLOAD_URL or backend.local.llm.ollama.download_url), install Ollama yourself, or use a hosted provider (backend.local.llm.provider).';
  // under auto the stack comes up without the local model; under true the start fails
  return [notYet, o.managed === 'true' ? fail('ollama-download', `Ollama download location ${o.checksums_url}: ${error}`, advice) : warn('ollama-download', `Ollama download location ${o.checksums_url}: ${error} (the stack would come up without the local model)`, advice)];
}

async function checkLlm(mod: Loaded, config: import('./config/index.js').StigmerConfig, plan: OllamaPlan | undefined): Promise<Check> {
  const { provider, model, base_url } = config.backend.local.llm;
  if (provider === 'ollama') {
    // stigmer's own Ollama, not running now: `local start` runs it and pulls a missing model, so
    // nothing is wrong yet; the model is looked up in Ollama's store on disk
    if (plan && (plan.choice.source === 'path' || plan.choice.source === 'download') && !plan.running) {
      const models = plan.values.models_dir;
      return modelOnDisk(models, model)
        ? ok('llm', `Ollama model ${model}: pulled (in ${models})`)
        : warn('llm', `Ollama model ${model}: not pulled yet (${models})`, `stigmer local start pulls it (with --no-pull it does not: then stigmer llm pull ${model}).`);
    }
    const { checkOllama } = await import('./llm/check.js');
    const c = await checkOllama(base_url, model, { timeoutMs: PROBE_MS });
    if (!c.reachable) return fail('llm', c.message, c.hint ?? 'Start Ollama (ollama serve).');
    if (c.modelPresent === false) return fail('llm', `Ollama at ${base_url}: model ${model} is not pulled`, c.hint ?? `stigmer llm pull ${model}`);
    return ok('llm', `Ollama at ${base_url}: reachable, model ${model} pulled`);
  }
  const variable = LLM_DEFAULTS[provider].key_env!;
  const dotenv = mod.readDotenv(process.cwd());
  const where = process.env[variable] ? 'environment' : dotenv[variable] ? '.env' : undefined;
  return where
    ? ok('llm', `${provider} ${model}: ${variable} is set (${where})`)
    : warn('llm', `${provider} ${model}: ${variable} is not set`, `Export ${variable} or put it in .env; on a terminal, stigmer local start asks for it.`);
}

async function checkStack(home: string): Promise<{ check: Check; views: TaskStatusView[] }> {
  const { readStatus } = await import('../engine/inspect.js');
  let views: TaskStatusView[];
  try {
    views = readStatus(home).tasks;
  } catch (e) {
    return { check: fail('stack', `state ${dataPaths(home).state}: ${(e as Error).message.split('\n')[0]}`, 'stigmer local stop undoes what the state recorded; then start again.'), views: [] };
  }
  const services = views.filter((v) => v.kind === 'process');
  if (!services.length || services.every((v) => v.state !== 'ready' && v.state !== 'dead')) return { check: ok('stack', 'the local stack is stopped'), views };
  const dead = services.filter((v) => v.state === 'dead');
  if (dead.length) {
    return { check: fail('stack', `the local stack is degraded: ${dead.map((v) => v.task).join(', ')} not running`, 'See why with stigmer local logs <component>; restart it with stigmer local restart.'), views };
  }
  return { check: ok('stack', `the local stack is running (${services.map((v) => v.task).join(', ')})`), views };
}

export async function runDoctor(): Promise<DoctorReport> {
  const home = stigmerHome();
  const checks: Check[] = [checkNode(), checkPlatform(), checkDir('home', 'stigmer home', home)];
  const mod = await loadConfigModule();
  const { check, config } = checkConfig(mod, home);
  checks.push(check);
  const stack = await checkStack(home);
  if (config) {
    if (config.backend.local.data_dir !== home) checks.push(checkDir('data', 'data dir', config.backend.local.data_dir));
    checks.push(...(await checkPorts(config, stack.views, home)));
    const plan = await planOllama(config, home);
    const [temporal, ollama, llm] = await Promise.all([checkTemporal(mod, config), plan ? checkOllamaManaged(plan, home) : Promise.resolve([]), checkLlm(mod, config, plan)]);
    checks.push(...temporal, ...ollama, llm);
  }
  checks.push(stack.check);
  return { ok: checks.every((c) => c.status !== 'fail'), checks };
}

const MARK: Record<CheckStatus, string> = { ok: '✓', warn: '!', fail: '✗' };

export function formatDoctor(report: DoctorReport): string {
  const lines = report.checks.flatMap((c) => [`${MARK[c.status]} ${c.message}`, ...(c.advice ? [`    → ${c.advice}`] : [])]);
  const problems = report.checks.filter((c) => c.status === 'fail').length;
  const notes = report.checks.filter((c) => c.status === 'warn').length;
  lines.push('', problems ? `${problems} problem${problems === 1 ? '' : 's'} found${notes ? `, ${notes} note${notes === 1 ? '' : 's'}` : ''}.` : `No problems found${notes ? ` (${notes} note${notes === 1 ? '' : 's'})` : ''}.`);
  return `${lines.join('\n')}\n`;
}
