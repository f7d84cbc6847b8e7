/**
 * `stigmer local status [--json]`: each component (state, pid, uptime, address); Temporal
 * (managed or external, version, UI URL, health); the LLM (provider, model, base URL, reachable,
 * model pulled); which secrets are set, by name only.
 *
 * It reads the state file and works with a broken config.yaml: a running stack is described by
 * what resolve-config recorded for it; a stopped one by the current config when it is valid.
 *
 * Speed (goal: 2x `node -e 0`): the slow parts are Temporal's health (grpc.health.v1.Health/Check
 * of the WorkflowService: asked of the stack's supervisor, which has grpc-js loaded; in process,
 * loading grpc-js costs ~55-80 ms) and the LLM's reachability (an HTTP call). For a running stack both start as soon as the state file is read, before the config
 * (yaml) and anything else is loaded, and run side by side, each bounded by a short timeout.
 * Only light modules are imported statically.
 */
import { existsSync, readFileSync } from 'node:fs';
import { formatMs } from '../util/format.js';
import { mask, registerSecret } from '../util/mask.js';
import type { GrpcAnswer, GrpcTls } from '../process/grpc-client.js';
import type { ServingStatus } from '../process/grpc-codec.js';
import { dataPaths, stigmerHome } from '../util/paths.js';
import { LLM_DEFAULTS, LLM_PROVIDERS, isLlmProvider } from './llm/defaults.js';
import { COMPONENTS, MANAGED_OLLAMA, ollamaInUse, ollamaOf } from './local.js';
import type { SupervisorView, TaskStatusView, ViewState } from '../engine/status-view.js';

interface ResolvedView {
  temporal: {
    managed: boolean;
    address: string;
    host: string;
    port: number;
    version: string;
    ui_url: string | null;
    bin: string | null;
    /** recorded by newer versions: the connection of an external Temporal */
    auth?: string;
    tls?: Record<string, unknown>;
    profile?: string | null;
    profile_file?: string | null;
  };
  server: { address: string };
  llm: { provider: string; model: string; base_url: string };
}

/**
 * A component of the stack: what `stigmer status` says of its task (`ready`, `restarting`,
 * `crash-loop`, `dead`, ...), or `external` (Temporal that stigmer does not manage), or `stopped`
 * (no record: not started).
 */
export type ComponentState = ViewState | 'external' | 'stopped';

export interface ComponentStatus {
  name: string;
  task: string;
  state: ComponentState;
  pid: number | null;
  uptime_ms: number | null;
  address: string | null;
  /** supervised: restarts so far, how it last exited, its latest liveness check (else null) */
  restarts: number | null;
  last_exit: TaskStatusView['last_exit'] | null;
  health: TaskStatusView['health'] | null;
  /** a restart is scheduled in this long */
  next_restart_in_ms: number | null;
}

export interface StackStatus {
  /** running (every managed component up), degraded (some are not), stopped (none recorded) */
  stack: 'running' | 'degraded' | 'stopped';
  home: string;
  /** `exists: false`: no config file yet (the defaults apply); `valid` is then null */
  config: { file: string; exists: boolean; valid: boolean | null; error?: string };
  components: ComponentStatus[];
  temporal: (ResolvedView['temporal'] & { health: string }) | null;
  llm: (ResolvedView['llm'] & { reachable: boolean | null; model_present: boolean | null; message: string; hint: string | null; ollama?: { source: string; description: string } }) | null;
  /** key variable -> where it is set (names only, never values) */
  /** `environment`: set where stigmer runs, in the environment or in .env (`source` says which) */
  secrets: Record<string, { needed: boolean; agent_runner: boolean | null; environment: boolean; source: 'environment' | '.env' | null }>;
  /** the stack's supervisor (null: started without one) */
  supervisor: SupervisorView | null;
}

/** Bound of one check (TCP connect, Ollama's /api/tags). */
const PROBE_MS = 1000;
/**
 * Bound of Temporal's health call. It also loads the gRPC library and connects, which on a loaded
 * machine took over a second; a Temporal that is up answers within milliseconds of that, so the
 * bound costs time only when Temporal does not answer.
 */
const GRPC_MS = 3000;

export async function stackStatus(): Promise<StackStatus> {
  // The checks' modules load with the state's (one pass of the loader, not one after each
  // await): a running stack's checks are then sent before the config (yaml) loads, and answered
  // while it does.
  const [{ readStatus }, { StateStore }] = await Promise.all([import('../engine/status-view.js'), import('../engine/state.js'), import('../process/grpc-codec.js'), import('../daemon/protocol.js'), import('./llm/check.js').then((m) => m.preloadOllamaCheck())]);
  const home = stigmerHome();
  // one read of the state (and one validation) for the views and the records
  const state = StateStore.read(dataPaths(home).state);
  const status = readStatus(home, Date.now(), state);
  const views = status.tasks;
  const up = views.some((v) => v.state === 'ready');
  const recorded = state?.tasks['resolve-config']?.outputs as ResolvedView | undefined;
  const stateOf = (task: string): ComponentState => views.find((v) => v.task === task)?.state ?? 'stopped';

  // A running stack is described by what it was started with: its checks need no config, so they
  // start now and run while the rest is loaded.
  let resolved: ResolvedView | undefined = up && recorded?.temporal ? recorded : undefined;
  // the stack's live supervisor makes a managed Temporal's health check (see temporalHealth)
  const supervisorSocket = status.supervisor?.alive ? (state?.supervisor?.socket ?? undefined) : undefined;
  const early = resolved
    ? { health: temporalHealth(resolved, stateOf(COMPONENTS.temporal), supervisorSocket), llm: llmStatus(resolved) }
    : undefined;

  const [{ tryLoadConfig, readDotenv }, { stackValues }] = await Promise.all([import('./config/index.js'), import('./resolve.js')]);
  const loaded = tryLoadConfig({ home });
  const file = loaded.ok ? loaded.value.file : loaded.error.file;
  const config: StackStatus['config'] = !loaded.ok
    ? { file, exists: true, valid: false, error: loaded.error.error.message.split('\n')[0]! }
    : existsSync(file)
      ? { file, exists: true, valid: true }
      : { file, exists: false, valid: null };
  if (!resolved && loaded.ok) {
    try {
      resolved = stackValues(loaded.value.config) as unknown as ResolvedView;
    } catch {
      resolved = recorded;
    }
  }
  resolved ??= recorded;

  // which Ollama the stack uses (find-ollama): external, from PATH, or installed by stigmer. It is a
  // component when stigmer runs it, or an external one the stack was started with; with a hosted
  // provider (or managed: false) there is none.
  const recordedOllama = ollamaOf(state?.tasks['find-ollama']?.outputs);
  const ollamaRow = ollamaInUse(state?.tasks['find-ollama']?.outputs, state?.tasks['use-ollama']?.outputs);
  // stigmer's own was not started when its download failed under managed: auto (use-ollama)
  const notStarted = !!recordedOllama && MANAGED_OLLAMA.has(recordedOllama.source) && !ollamaRow;
  const ollamaChoice =
    up && recordedOllama
      ? { source: recordedOllama.source, description: notStarted ? 'none: its download failed, so the stack runs without the local model (see `stigmer doctor`)' : recordedOllama.description }
      : undefined;

  const entries = Object.entries(COMPONENTS).filter(([name]) => name !== 'ollama' || ollamaRow);
  const components: ComponentStatus[] = entries.map(([name, task]) => {
    const v = views.find((x) => x.task === task);
    // The address as the config writes it: the same text `stigmer status` shows for the task.
    const address =
      name === 'temporal' ? (resolved?.temporal.address ?? null) : name === 'server' ? (resolved?.server.address ?? null) : name === 'ollama' ? (ollamaRow?.host ?? null) : null;
    const none = { restarts: null, last_exit: null, health: null, next_restart_in_ms: null };
    if (name === 'temporal' && resolved && !resolved.temporal.managed) {
      return { name, task, state: 'external', pid: null, uptime_ms: null, address, ...none };
    }
    if (name === 'ollama' && ollamaRow?.source === 'external') {
      return { name, task, state: 'external', pid: null, uptime_ms: null, address: ollamaRow.base_url, ...none };
    }
    if (!v) return { name, task, state: 'stopped', pid: null, uptime_ms: null, address: null, ...none };
    return {
      name,
      task,
      state: v.state,
      pid: v.pid ?? null,
      uptime_ms: v.uptime_ms ?? null,
      address: v.state === 'stopped' || v.state === 'undone' ? null : (v.address ?? address),
      restarts: v.restarts ?? null,
      last_exit: v.last_exit ?? null,
      // a dead process's last check is history, not health
      health: v.uptime_ms !== undefined ? (v.health ?? null) : null,
      next_restart_in_ms: v.next_restart_in_ms ?? null,
    };
  });
  const managed = components.filter((c) => c.state !== 'external');
  const ready = managed.filter((c) => c.state === 'ready').length;
  const started = managed.filter((c) => c.state !== 'stopped' && c.state !== 'undone').length;
  const stack: StackStatus['stack'] = started === 0 ? 'stopped' : ready === managed.length ? 'running' : 'degraded';

  const runner = views.find((v) => v.task === COMPONENTS['agent-runner']);
  const runnerEnv = runner?.pid && runner.state === 'ready' ? environNames(runner.pid) : undefined;
  const [health, llm] = await Promise.all([
    early?.health ?? (resolved ? temporalHealth(resolved, components[0]!.state, supervisorSocket) : Promise.resolve('')),
    early?.llm ?? (resolved ? llmStatus(resolved) : Promise.resolve(null)),
  ]);

  const dotenv = readDotenv(process.cwd());
  const secrets: StackStatus['secrets'] = {};
  for (const p of LLM_PROVIDERS) {
    const variable = LLM_DEFAULTS[p].key_env;
    if (!variable) continue;
    secrets[variable] = {
      needed: resolved?.llm.provider === p,
      agent_runner: runnerEnv ? runnerEnv.has(variable) : null,
      environment: !!(process.env[variable] || dotenv[variable]),
      source: process.env[variable] ? 'environment' : dotenv[variable] ? '.env' : null,
    };
  }
  return {
    stack,
    home,
    config,
    components,
    temporal: resolved ? { ...pick(resolved.temporal), health } : null,
    llm: llm && ollamaChoice && llm.provider === 'ollama' ? { ...llm, ollama: ollamaChoice } : llm,
    secrets,
    supervisor: status.supervisor,
  };
}

function pick(t: ResolvedView['temporal']): ResolvedView['temporal'] {
  return { managed: t.managed, address: t.address, host: t.host, port: t.port, version: t.version, ui_url: t.ui_url, bin: t.bin };
}

/** Names of the variables in a process's environment (never their values). */
function environNames(pid: number): Set<string> | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/environ`, 'latin1');
    return new Set(text.split('\0').filter((e) => e.includes('=')).map((e) => e.slice(0, e.indexOf('='))));
  } catch {
    return undefined;
  }
}

/**
 * SERVING / NOT_SERVING / not running / unreachable (...): the readiness check itself, one
 * attempt (grpc.health.v1.Health/Check of the WorkflowService). A managed Temporal's check is
 * made by the stack's live supervisor when there is one (it has @grpc/grpc-js loaded for its own
 * liveness checks: the CLI does not load it for one call); else, or when the supervisor cannot
 * answer (an older one, gone meanwhile), here.
 */
async function temporalHealth(r: ResolvedView, componentState: ComponentState, supervisorSocket: string | undefined): Promise<string> {
  const t = r.temporal;
  if (t.managed && componentState !== 'ready') return 'not running';
  const [{ WORKFLOW_SERVICE }, { askOnce }] = await Promise.all([import('../process/grpc-codec.js'), import('../daemon/protocol.js')]);
  if (t.managed && supervisorSocket) {
    const answer = await askOnce(supervisorSocket, { op: 'health', address: t.address, service: WORKFLOW_SERVICE, timeoutMs: GRPC_MS }, GRPC_MS + 1000);
    if (answer?.t === 'health') return describeTemporalHealth(answer.answer, t.address);
  }
  const [{ GrpcChannel }, { findTemporalApiKey }] = await Promise.all([import('../process/grpc-client.js'), import('./config/temporal-auth.js')]);
  // An external Temporal with its TLS and API key, as wait-temporal checks it.
  let key: { value: string; from: string } | undefined;
  try {
    key = t.auth ? findTemporalApiKey({ managed: t.managed, auth: t.auth, profile: t.profile ?? null, profile_file: t.profile_file ?? null }, process.env) : undefined;
  } catch {
    key = undefined;
  }
  if (key) registerSecret(key.value);
  const channel = new GrpcChannel({
    address: t.address,
    ...(t.tls && !t.managed ? { tls: t.tls as GrpcTls } : {}),
    ...(key ? { apiKey: key.value, apiKeyName: key.from } : {}),
  });
  try {
    return describeTemporalHealth(await channel.health(WORKFLOW_SERVICE, { signal: AbortSignal.timeout(GRPC_MS + 200), timeoutMs: GRPC_MS }), t.address);
  } finally {
    channel.close();
  }
}

function describeTemporalHealth(h: GrpcAnswer<ServingStatus>, address: string): string {
  if (h.ok) return h.value;
  const { problem, detail } = h.error;
  // cancelled: by the bound of the call (nothing else cancels it)
  if (problem === 'CANCELLED') return `unreachable (no answer from ${address} within ${GRPC_MS / 1000} s)`;
  if (problem === 'REFUSED' || problem === 'UNAVAILABLE' || problem === 'DEADLINE_EXCEEDED') return `unreachable (${detail})`;
  return detail;
}

async function llmStatus(r: ResolvedView): Promise<StackStatus['llm']> {
  const { provider, model, base_url } = r.llm;
  if (!isLlmProvider(provider)) return { provider, model, base_url, reachable: null, model_present: null, message: `unknown provider ${provider}`, hint: null };
  if (provider !== 'ollama') {
    return { provider, model, base_url, reachable: null, model_present: null, message: 'not checked (no network call is made for hosted providers)', hint: null };
  }
  const { checkOllama } = await import('./llm/check.js');
  const c = await checkOllama(base_url, model, { timeoutMs: PROBE_MS });
  return { provider, model, base_url, reachable: c.reachable, model_present: c.modelPresent ?? null, message: c.message, hint: c.hint ?? null };
}

/** Exit code 0 when every component is up, 1 when degraded, 3 when stopped (as `stigmer status`). */
export async function printStackStatus(json: boolean): Promise<number> {
  const s = await stackStatus();
  const code = s.stack === 'running' ? 0 : s.stack === 'stopped' ? 3 : 1;
  if (json) {
    process.stdout.write(`${mask(JSON.stringify(s, null, 2))}\n`);
    return code;
  }
  const { table, describeExit, describeHealth, describeSupervisor } = await import('../engine/inspect.js');
  const now = Date.now();
  const out: string[] = [`Stigmer local stack: ${s.stack} (${s.home})`, ''];
  const supervised = s.supervisor !== null || s.components.some((c) => c.restarts !== null || c.last_exit);
  const rows = [['COMPONENT', 'STATE', 'PID', 'UPTIME', ...(supervised ? ['RESTARTS', 'LAST EXIT', 'HEALTH'] : []), 'ADDRESS']];
  for (const c of s.components) {
    const sup = supervised ? [c.restarts !== null ? String(c.restarts) : '-', c.last_exit ? describeExit(c.last_exit, now) : '-', c.health ? describeHealth(c.health, now) : '-'] : [];
    const next = c.next_restart_in_ms !== null ? ` (next restart in ${formatMs(c.next_restart_in_ms)})` : '';
    rows.push([c.name, c.state, c.pid ? String(c.pid) : '-', c.uptime_ms !== null ? formatMs(c.uptime_ms) : '-', ...sup, `${c.address ?? '-'}${next}`]);
  }
  out.push(table(rows), '');
  const supLine = describeSupervisor(s.supervisor, now);
  if (supLine) out.push(`Supervisor:${supLine.slice('supervisor:'.length)}`);
  if (s.temporal) {
    const t = s.temporal;
    const what = t.managed ? `managed, Temporal CLI ${t.version}` : 'external';
    out.push(`Temporal:  ${t.address} (${what})${t.ui_url ? `, UI ${t.ui_url}` : ''}; health: ${t.health}`);
  }
  if (s.llm) {
    const l = s.llm;
    const why = l.message.replace(/^could not reach ollama at \S+: /, '');
    const state = l.reachable === null ? l.message : !l.reachable ? `not reachable (${why})` : l.model_present ? 'reachable, model pulled' : 'reachable, model not pulled';
    out.push(`LLM:       ${l.provider} ${l.model} at ${l.base_url}; ${state}`);
    if (l.hint) out.push(`           hint: ${l.hint}`);
    if (l.ollama) out.push(`Ollama:    ${l.ollama.description}`);
  }
  const secretParts = Object.entries(s.secrets).map(([name, v]) => {
    const where = [v.agent_runner ? 'agent-runner' : '', v.source ?? ''].filter(Boolean);
    return `${name} ${where.length ? `set (${where.join(', ')})` : 'not set'}${v.needed ? ' [needed]' : ''}`;
  });
  const needsNone = s.llm?.provider === 'ollama' ? 'none needed (ollama); ' : '';
  out.push(`Secrets:   ${needsNone}${secretParts.join(', ')}`);
  if (!s.config.exists) out.push(`Config:    ${s.config.file} does not exist yet: the defaults apply (\`stigmer init\` or \`stigmer local start\` writes it)`);
  else if (!s.config.valid) out.push(`Config:    ${s.config.file} is invalid: ${s.config.error} (see \`stigmer config list\`)`);
  process.stdout.write(`${mask(out.join('\n'))}\n`);
  return code;
}
