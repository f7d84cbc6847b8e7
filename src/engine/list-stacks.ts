/**
 * `stigmer ls [--json]`: every stack on this machine (docker compose ls): its name, state, the
 * services up out of those recorded, the supervisor's pid, the tasks file and the data dir.
 *
 *   running   every recorded service is up
 *   degraded  some are up, some are not (dead, restarting, unhealthy, crash-looping), or none
 *             is up but some are still recorded: `up` brings them back, `down` clears them
 *   stopped   nothing recorded, or every service was stopped
 * (the rule of `stigmer status`'s exit code: status-view.ts)
 */
import { basename, resolve } from 'node:path';
import { EXIT } from '../util/errors.js';
import { stigmerHome } from '../util/paths.js';
import { table } from './inspect.js';
import { isService, readStatus, stackHealth } from './status-view.js';
import { knownDataDirs, readStackRecord } from './stacks.js';

export type StackState = 'running' | 'degraded' | 'stopped';

export interface StackView {
  /** `local` for <STIGMER_HOME>, else the data dir's name */
  name: string;
  data_dir: string;
  /** the tasks file, when recorded */
  file: string | null;
  state: StackState;
  services: { task: string; state: string; pid?: number }[];
  /** the stack's supervisor, when one was recorded */
  supervisor: { pid: number; alive: boolean } | null;
}

const UP = new Set(['ready', 'running']);

export function describeStack(dataDir: string, home = stigmerHome()): StackView {
  const status = readStatus(dataDir);
  const services = status.tasks.filter(isService).map((t) => ({ task: t.task, state: t.state, ...(t.pid !== undefined ? { pid: t.pid } : {}) }));
  // A stack whose state records only finished steps (no services) is not running anything.
  const state: StackState = services.length === 0 ? (stackHealth(status.tasks) === 'degraded' ? 'degraded' : 'stopped') : stackHealth(status.tasks);
  const file = status.file ?? readStackRecord(dataDir)?.file ?? null;
  const sup = status.supervisor;
  return {
    name: resolve(dataDir) === resolve(home) ? 'local' : basename(dataDir),
    data_dir: resolve(dataDir),
    file,
    state,
    services,
    supervisor: sup ? { pid: sup.pid, alive: sup.alive } : null,
  };
}

export function listStacks(home = stigmerHome()): StackView[] {
  return knownDataDirs(home).map((d) => describeStack(d, home));
}

export function printStacks(json: boolean, home = stigmerHome()): number {
  const stacks = listStacks(home);
  if (json) {
    process.stdout.write(JSON.stringify({ stacks }, null, 2) + '\n');
    return EXIT.ok;
  }
  if (!stacks.length) {
    process.stdout.write(`no stacks yet (none in ${home}); \`stigmer up\` in a project folder starts one\n`);
    return EXIT.ok;
  }
  const rows = [['NAME', 'STATE', 'SERVICES', 'SUPERVISOR', 'TASKS FILE', 'DATA DIR']];
  for (const s of stacks) {
    const up = s.services.filter((v) => UP.has(v.state)).length;
    const sup = s.supervisor ? `${s.supervisor.pid}${s.supervisor.alive ? '' : ' (dead)'}` : '-';
    rows.push([s.name, s.state, `${up}/${s.services.length}`, sup, s.file ?? '-', s.data_dir]);
  }
  process.stdout.write(table(rows) + '\n');
  return EXIT.ok;
}
