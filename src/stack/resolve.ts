/**
 * The values the stack graph needs, computed from the stigmer config in one place, so the tasks
 * file stays declarative (`${{ tasks.resolve-config.outputs.temporal.port }}`).
 */
import { join } from 'node:path';
import { UserError } from '../util/errors.js';
import { LLM_DEFAULTS } from './llm/defaults.js';
import { temporalRelease, type TemporalRelease } from './config/temporal.js';
import { TEMPORAL_NAMESPACE } from './config/defaults.js';
import type { StigmerConfig } from './config/types.js';

const DEFAULT_WAIT_TIMEOUT = '30s';

/** host and port of "host:port" (also "[::1]:7233"). */
function splitAddress(address: string): { host: string; port: number } {
  const i = address.lastIndexOf(':');
  const port = Number(address.slice(i + 1));
  if (i <= 0 || !Number.isInteger(port) || port < 1 || port > 65535) {
    throw new UserError(`Expected an address like host:port, got ${JSON.stringify(address)}`);
  }
  return { host: address.slice(0, i).replace(/^\[(.*)\]$/, '$1'), port };
}

/**
 * The stack's values, computed from the config: what the resolve-config task outputs and what
 * `stigmer local status` describes a stopped stack by. Throws UserError for a value that cannot
 * work (an address that is not host:port, a Temporal version with no release).
 */
export function resolveStack(config: StigmerConfig, env: Record<string, string | undefined> = process.env): Record<string, unknown> {
  const local = config.backend.local;
  const t = local.temporal;
  const { host, port } = t.managed ? { host: '127.0.0.1', port: t.port } : splitAddress(t.address);
  const release: TemporalRelease | undefined = t.managed ? temporalRelease(config) : undefined;
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
