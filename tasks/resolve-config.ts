/**
 * `resolve-config`: turns the stigmer config into the values the stack graph needs, in one place,
 * so the tasks file stays declarative (`${{ tasks.resolve-config.outputs.temporal.port }}`).
 *
 *   with: { config: ${{ config }} }       the resolved config (src/config loadConfig)
 *
 * Pure and cheap: it only computes, and makes sure the data dir exists.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { fail } from '../src/model/failure.js';
import { TaskError, type TaskContext, type TaskKind, type TaskResult } from '../src/model/kind.js';
import { UserError } from '../src/util/errors.js';
import { LLM_DEFAULTS } from '../src/stack/llm/defaults.js';
import { temporalRelease, type TemporalRelease } from '../src/stack/config/temporal.js';
import { TEMPORAL_NAMESPACE } from '../src/stack/config/defaults.js';
import type { StigmerConfig } from '../src/stack/config/types.js';

const DEFAULT_WAIT_TIMEOUT = '30s';

export interface ResolveConfigWith {
  config: StigmerConfig;
}

/** host and port of "host:port" (also "[::1]:7233"). */
export function splitAddress(address: string): { host: string; port: number } {
  const i = address.lastIndexOf(':');
  const port = Number(address.slice(i + 1));
  if (i <= 0 || !Number.isInteger(port) || port < 1 || port > 65535) {
    throw new TaskError(fail.invalidInput(`Expected an address like host:port, got ${JSON.stringify(address)}`));
  }
  return { host: address.slice(0, i).replace(/^\[(.*)\]$/, '$1'), port };
}

function checkConfig(value: unknown): StigmerConfig {
  const c = value as StigmerConfig | undefined;
  if (!c || typeof c !== 'object' || typeof c.home !== 'string' || !c.backend?.local?.temporal || !c.backend.local.llm) {
    throw new TaskError(
      fail.invalidInput('Expected with.config to be the whole stigmer config', 'Pass it as `with: { config: ${{ config }} }`.'),
    );
  }
  return c;
}

/** The stack's values, computed from the config (exported for `stigmer local status`). */
export function resolveStack(config: StigmerConfig, env: Record<string, string | undefined> = process.env): Record<string, unknown> {
  const local = config.backend.local;
  const t = local.temporal;
  const { host, port } = t.managed ? { host: '127.0.0.1', port: t.port } : splitAddress(t.address);
  let release: TemporalRelease | undefined;
  if (t.managed) {
    try {
      release = temporalRelease(config);
    } catch (err) {
      if (err instanceof UserError) throw new TaskError(fail.invalidInput(err.message));
      throw err;
    }
  }
  const llm = { ...local.llm, key_env: LLM_DEFAULTS[local.llm.provider].key_env ?? null };
  const server = {
    address: local.endpoint,
    url: `http://${local.endpoint}`,
    health_url: `http://${local.endpoint}/healthz`,
    port: splitAddress(local.endpoint).port,
    command: local.server.command,
    args: local.server.args,
    data_dir: local.data_dir,
  };
  const agentRunner = {
    command: local.agent_runner.command,
    args: local.agent_runner.args,
    // The environment contract of the agent-runner (plus the provider's key, from gather-secrets).
    env: {
      MODE: 'local',
      STIGMER_BACKEND_ENDPOINT: local.endpoint,
      TEMPORAL_SERVICE_ADDRESS: t.address,
      TEMPORAL_NAMESPACE,
      STIGMER_LLM_PROVIDER: llm.provider,
      STIGMER_LLM_MODEL: llm.model,
      STIGMER_LLM_BASE_URL: llm.base_url,
    },
  };
  const temporal = {
    managed: t.managed,
    address: t.address,
    host,
    port,
    ui_port: t.managed ? t.ui_port : null,
    ui_url: t.managed ? `http://localhost:${t.ui_port}` : null,
    version: t.version,
    namespace: TEMPORAL_NAMESPACE,
    archive_url: release?.archiveUrl ?? null,
    checksums_url: release?.checksumsUrl ?? null,
    install_dir: release?.installDir ?? null,
    bin: release?.bin ?? null,
    db_file: join(local.data_dir, 'temporal.db'),
    /** how long wait-port waits for the Temporal frontend (STIGMER_TEMPORAL_WAIT_TIMEOUT) */
    wait_timeout: env['STIGMER_TEMPORAL_WAIT_TIMEOUT'] || DEFAULT_WAIT_TIMEOUT,
  };
  return { temporal, llm, server, agent_runner: agentRunner, data_dir: local.data_dir, home: config.home };
}

const resolveConfig: TaskKind<ResolveConfigWith> = {
  name: 'resolve-config',
  mode: 'oneshot',
  pure: true,
  async run(ctx: TaskContext<ResolveConfigWith>): Promise<TaskResult> {
    const config = checkConfig(ctx.with.config);
    const outputs = resolveStack(config, { ...process.env, ...ctx.env });
    try {
      mkdirSync(config.backend.local.data_dir, { recursive: true });
    } catch (err) {
      throw new TaskError(fail.taskError(`could not create the data dir ${config.backend.local.data_dir}: ${(err as Error).message}`));
    }
    const t = outputs['temporal'] as { managed: boolean; address: string; version: string };
    const { provider, model } = config.backend.local.llm;
    return {
      outputs,
      summary: `${t.managed ? `managed Temporal ${t.version} on ${t.address}` : `external Temporal at ${t.address}`}; ${provider} ${model}`,
    };
  },
};

export default resolveConfig;
