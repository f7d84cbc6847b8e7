/**
 * `resolve-config`: turns the stigmer config into the values the stack graph needs, in one place,
 * so the tasks file stays declarative (`${{ tasks.resolve-config.outputs.temporal.port }}`).
 *
 *   with: { config: ${{ config }} }       the resolved config (src/config loadConfig)
 *
 * Pure and cheap: it only computes (src/stack/resolve.ts), makes sure the data dir exists, and for a
 * managed Temporal keeps the SQLite file of another CLI minor version as a backup (temporal-db.ts).
 */
import { makePrivateDir } from '../src/util/private-dir.js';
import { fail } from '../src/model/failure.js';
import { TaskError, type TaskContext, type TaskKind, type TaskResult } from '../src/model/kind.js';
import { UserError } from '../src/util/errors.js';
import { stackValues } from '../src/stack/resolve.js';
import { checkTemporalDb } from '../src/stack/temporal-db.js';
import type { StigmerConfig } from '../src/stack/config/types.js';

export interface ResolveConfigWith {
  config: StigmerConfig;
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

const resolveConfig: TaskKind<ResolveConfigWith> = {
  name: 'resolve-config',
  mode: 'oneshot',
  pure: true,
  async run(ctx: TaskContext<ResolveConfigWith>): Promise<TaskResult> {
    const config = checkConfig(ctx.with.config);
    let outputs: Record<string, unknown>;
    try {
      outputs = stackValues(config, { ...process.env, ...ctx.env });
    } catch (err) {
      if (err instanceof UserError) throw new TaskError(fail.invalidInput(err.message));
      throw err;
    }
    try {
      makePrivateDir(config.backend.local.data_dir, 'backend.local.data_dir');
    } catch (err) {
      // makePrivateDir says why in its own words ("stigmer: cannot use X as the ...: <reason>")
      throw new TaskError(fail.writeFailed('create the data dir', config.backend.local.data_dir, (err as Error).message.replace(/^stigmer: cannot use .* as the [\w. ]+: /, '')));
    }
    const t = outputs['temporal'] as { managed: boolean; address: string; version: string; db_file: string };
    let note: string | null = null;
    if (t.managed) {
      try {
        note = checkTemporalDb(t.db_file, t.version).note;
      } catch (err) {
        throw new TaskError(fail.writeFailed('keep the old Temporal SQLite file', t.db_file, (err as Error).message));
      }
      if (note) ctx.output(note);
    }
    const { provider, model } = config.backend.local.llm;
    return {
      outputs,
      summary: `${t.managed ? `managed Temporal ${t.version} on ${t.address}` : `external Temporal at ${t.address}`}; ${provider} ${model}${note ? `; ${note}` : ''}`,
    };
  },
};

export default resolveConfig;
