/**
 * `stigmer local start|stop|restart|logs`: the packaged stigmer.tasks.yaml run by the engine
 * (src/engine/drivers.ts) with the stigmer home as its data dir. This file adds only what is specific to
 * the Stigmer stack: the config flags and the addresses printed once the stack is up (hints for
 * its failures live in the stack file).
 */
import { join } from 'node:path';
import type { App } from '../model/app.js';
import { EXIT, UserError } from '../util/errors.js';
import { fail } from '../model/failure.js';
import { mask } from '../util/mask.js';
import { dataPaths, packageRoot, stigmerHome } from '../util/paths.js';
import { didYouMean } from '../util/diagnostics.js';
import type { OutputMode } from '../render/types.js';
import type { KindRegistry } from '../model/kind.js';
import type { RunOutcome } from '../engine/run.js';
import type { ConfigFlags, StigmerConfig } from './config/types.js';

/** The stack file shipped with the package. */
export const STACK_FILE = join(packageRoot, 'stigmer.tasks.yaml');

/**
 * Friendly component names for `logs`, `status` and `restart`, and the task behind each. `ollama`
 * is a component only while stigmer runs its own `ollama serve` (find-ollama chose the one on PATH
 * or the downloaded release); an external Ollama is shown as such and never restarted.
 */
export const COMPONENTS = { temporal: 'start-temporal', server: 'start-server', 'agent-runner': 'start-agent-runner', ollama: 'start-ollama' } as const;

/** What find-ollama recorded in the state of the stack in `home` (which Ollama it uses), if anything. */
export interface RecordedOllama {
  source: string;
  description: string;
  base_url: string | null;
  host: string | null;
}

export async function recordedOllama(home: string): Promise<RecordedOllama | undefined> {
  const { StateStore } = await import('../engine/state.js');
  return ollamaOf(StateStore.read(dataPaths(home).state)?.tasks['find-ollama']?.outputs);
}

export function ollamaOf(outputs: unknown): RecordedOllama | undefined {
  const o = outputs as { source?: unknown; description?: unknown; base_url?: unknown; host?: unknown } | undefined;
  if (!o || typeof o.source !== 'string' || typeof o.description !== 'string') return undefined;
  return { source: o.source, description: o.description, base_url: typeof o.base_url === 'string' ? o.base_url : null, host: typeof o.host === 'string' ? o.host : null };
}

/**
 * The Ollama a stack uses, from what find-ollama and use-ollama recorded: your own (external), or
 * stigmer's unless use-ollama did not start it (a failed download under managed: auto); undefined
 * when there is none (a hosted provider, managed: false).
 */
export function ollamaInUse(findOutputs: unknown, useOutputs: unknown): RecordedOllama | undefined {
  const found = ollamaOf(findOutputs);
  if (!found) return undefined;
  if (found.source === 'external') return found;
  return MANAGED_OLLAMA.has(found.source) && (useOutputs as { start?: unknown } | undefined)?.start !== false ? found : undefined;
}

/** find-ollama's sources under which stigmer itself runs `ollama serve` */
export const MANAGED_OLLAMA = new Set(['path', 'download']);

export interface StartOptions {
  app: App;
  /** the task kinds of the stack file (src/commands/kinds.ts) */
  kinds: KindRegistry;
  flags: ConfigFlags;
  foreground?: boolean;
  noInput?: boolean;
  output?: OutputMode;
  /** --no-pull: pull-model is skipped (check-llm still warns about a missing model) */
  noPull?: boolean;
}

export async function startStack(o: StartOptions): Promise<number> {
  const { loadConfig, loadDotenv } = await import('./config/index.js');
  const home = stigmerHome();
  const { config } = loadConfig({ home, flags: o.flags });
  // What `init` would have done: the commented default config, so there is a file to edit.
  const [{ ensureConfigFile }, { writeFileAtomic }, { configPath }] = await Promise.all([import('./config/template.js'), import('./config/edit.js'), import('./config/index.js')]);
  const file = configPath(home);
  if (ensureConfigFile(home, file, (f, text) => writeFileAtomic(f, text, 0o600)) && o.output !== 'json') {
    process.stdout.write(`Created the default config: ${file} (edit it, or: stigmer config set KEY VALUE)\n`);
  }
  if (config.backend.type === 'cloud' && o.output !== 'json') {
    process.stderr.write('stigmer: note: backend.type is cloud; `stigmer local start` runs the local stack anyway\n');
  }
  const json = o.output === 'json';
  const onReady = (outcome: RunOutcome): void => {
    const resolved = outcome.outputs.get('resolve-config');
    if (!resolved) return;
    if (json) process.stdout.write(`${JSON.stringify({ event: 'summary', ...summaryData(resolved) })}\n`);
    else process.stdout.write(mask(summaryText(resolved, o.foreground, ollamaInUse(outcome.outputs.get('find-ollama'), outcome.outputs.get('use-ollama')))));
  };
  // The stack's supervisor runs it and stays the parent of its services; in the foreground this
  // command stays attached until the stack stops (Ctrl-C stops it).
  const { upThroughSupervisor, upInForeground } = await import('../daemon/client.js');
  return (o.foreground ? upInForeground : upThroughSupervisor)({
    file: STACK_FILE,
    dataDir: home,
    config,
    env: { ...loadDotenv(process.cwd(), process.env), ...(o.noPull ? { STIGMER_OLLAMA_PULL: 'false' } : {}) },
    app: o.app,
    ...(o.output ? { output: o.output } : {}),
    ...(o.noInput ? { noInput: true } : {}),
    onReady,
  });
}

export async function stopStack(app: App, output?: OutputMode, quiet = false): Promise<number> {
  const [{ runDown }, { downThroughSupervisor }] = await Promise.all([import('../engine/drivers.js'), import('../daemon/client.js')]);
  const o = { dataDir: stigmerHome(), app, ...(output ? { output } : {}), quiet };
  // The live supervisor undoes the stack and exits; without one, undo from the state file.
  return (await downThroughSupervisor(o)) ?? (await runDown(o));
}

export async function restartStack(o: StartOptions): Promise<number> {
  // A config that cannot start the stack must not stop the running one: check it first.
  const { loadConfig } = await import('./config/index.js');
  loadConfig({ home: stigmerHome(), flags: o.flags });
  const stopped = await stopStack(o.app, o.output, true);
  if (stopped !== EXIT.ok) return stopped;
  return startStack(o);
}

/**
 * `stigmer local restart <component...>`: each component's task is rerun the way `stigmer run`
 * reruns a task (its running instance stopped, then started again), on the packaged stack file, so
 * it works from any directory. What it needs is reused while still satisfied (started again only if
 * the config changed it); what needs it is left running. A broken config stops nothing.
 */
export async function restartComponents(o: StartOptions, components: string[]): Promise<number> {
  const [{ loadConfig, loadDotenv }, { runTask }, { knownTaskNames }] = await Promise.all([import('./config/index.js'), import('../engine/drivers.js'), import('../engine/logs.js')]);
  const home = stigmerHome();
  const known = await knownTaskNames(home, STACK_FILE);
  const tasks = components.map((c) => {
    const task = (COMPONENTS as Record<string, string>)[c] ?? c;
    if (!known.includes(task)) {
      throw new UserError(`stigmer local restart: no component "${c}"${didYouMean(c, [...Object.keys(COMPONENTS), ...known])}. Components: ${Object.keys(COMPONENTS).join(', ')}`, EXIT.usage);
    }
    return task;
  });
  const { config } = loadConfig({ home, flags: o.flags });
  const t = config.backend.local.temporal;
  if (tasks.includes(COMPONENTS.temporal) && !t.managed) {
    throw new UserError(`stigmer local restart temporal: the Temporal in use is external (${t.address}); stigmer does not run it, so it does not restart it`, EXIT.usage);
  }
  if (tasks.includes(COMPONENTS.ollama)) {
    const llm = config.backend.local.llm;
    const used = await recordedOllama(home);
    const why =
      llm.provider !== 'ollama'
        ? `the LLM provider is ${llm.provider}: no Ollama is used`
        : llm.ollama.managed === 'false'
          ? `backend.local.llm.ollama.managed is false: stigmer runs no Ollama (it uses ${llm.base_url} as it is)`
          : used?.source === 'external'
            ? `the Ollama at ${used.base_url ?? llm.base_url} is your own (external): stigmer never starts, stops or restarts it`
            : undefined;
    if (why) throw new UserError(`stigmer local restart ollama: ${why}`, EXIT.usage);
  }
  const env = { ...loadDotenv(process.cwd(), process.env), ...(o.noPull ? { STIGMER_OLLAMA_PULL: 'false' } : {}) };
  for (const task of tasks) {
    // The stack's supervisor restarts it when one runs (the new instance is its child, supervised);
    // a stack without one (started by an older stigmer) is restarted here, as `stigmer run` would.
    const { restartThroughSupervisor, connectSupervisor } = await import('../daemon/client.js');
    const live = await connectSupervisor(home);
    if (live) {
      live.destroy();
      const code = await restartThroughSupervisor({
        file: STACK_FILE,
        task,
        dataDir: home,
        config,
        env,
        app: o.app,
        ...(o.output ? { output: o.output } : {}),
        ...(o.noInput ? { noInput: true } : {}),
      });
      if (code !== EXIT.ok) return code;
      continue;
    }
    const code = await runTask({
      file: STACK_FILE,
      kinds: o.kinds,
      dataDir: home,
      config: () => Promise.resolve(config),
      env,
      app: o.app,
      task,
      ...(o.output ? { output: o.output } : {}),
      ...(o.noInput ? { noInput: true } : {}),
    });
    if (code !== EXIT.ok) return code;
  }
  return EXIT.ok;
}

/**
 * `stigmer local logs [component...]`: component names (temporal, server, agent-runner, ollama) or any
 * task name of the stack; lines are prefixed by task name.
 */
export async function stackLogs(components: string[], o: { lines?: number; since?: number; follow: boolean; timestamps: boolean; signal: AbortSignal }): Promise<number> {
  const { printLogs, knownTaskNames, loggedTasks } = await import('../engine/logs.js');
  const home = stigmerHome();
  const known = [...new Set([...Object.values(COMPONENTS), ...(await knownTaskNames(home, STACK_FILE))])];
  const tasks = components.map((c) => {
    const task = (COMPONENTS as Record<string, string>)[c] ?? c;
    if (!known.includes(task)) {
      const logged = loggedTasks(home);
      throw new UserError(
        `stigmer: no log for "${c}"${didYouMean(c, [...Object.keys(COMPONENTS), ...known])}. Components: ${Object.keys(COMPONENTS).join(', ')}` +
          (logged.length ? `; task logs: ${logged.join(', ')}` : ` (no logs yet in ${dataPaths(home).logs})`),
        EXIT.usage,
      );
    }
    return task;
  });
  return printLogs(home, { ...o, tasks, known });
}

interface Resolved {
  temporal?: { managed?: boolean; address?: string; version?: string; ui_url?: string | null; cli_source?: string | null };
  server?: { address?: string };
  llm?: { provider?: string; model?: string; base_url?: string };
}

function summaryData(outputs: Record<string, unknown>): Record<string, unknown> {
  const r = outputs as Resolved;
  return {
    temporal: { address: r.temporal?.address, managed: r.temporal?.managed, version: r.temporal?.managed ? r.temporal.version : null, ui_url: r.temporal?.ui_url ?? null },
    server: { endpoint: r.server?.address },
    llm: { provider: r.llm?.provider, model: r.llm?.model, base_url: r.llm?.base_url },
  };
}

/** The addresses, once the stack is up. */
export function summaryText(outputs: Record<string, unknown>, foreground = false, ollama?: RecordedOllama): string {
  const r = outputs as Resolved;
  const t = r.temporal ?? {};
  const lines = ['', '✓ Stigmer is running'];
  const from = t.cli_source === 'path' ? ' from PATH' : t.cli_source === 'configured' ? ' (backend.local.temporal.bin)' : '';
  lines.push(`  Temporal gRPC:  ${t.address} (${t.managed ? `managed, Temporal CLI ${t.version}${from}` : 'external'})`);
  if (t.ui_url) lines.push(`  Temporal UI:    ${t.ui_url}`);
  lines.push(`  Server:         ${r.server?.address}`);
  lines.push(`  LLM:            ${r.llm?.provider} ${r.llm?.model} at ${r.llm?.base_url}`);
  // which Ollama: the one stigmer runs (from PATH or downloaded), or your own
  if (ollama) lines.push(`  Ollama:         ${ollama.description}`);
  // In the foreground, Ctrl-C stops it (the foreground session says so itself).
  if (!foreground) lines.push('Stop it with: stigmer local stop');
  lines.push('');
  return lines.join('\n');
}
