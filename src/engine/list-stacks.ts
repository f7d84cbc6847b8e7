/**
 * `stigmer ls [--json]`: every stack on this machine (docker compose ls): its name, state, the
 * services up out of those recorded, the supervisor's pid, the tasks file and the data dir.
 *
 *   running   every recorded service is up
 *   degraded  some are up, some are not (dead, restarting, unhealthy, crash-looping), or none
 *             is up but some are still recorded: `up` brings them back, `down` clears them
 *   stopped   nothing recorded
 */
import { readFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { EXIT } from '../util/errors.js';
import { stigmerHome } from '../util/paths.js';
import { isAlive } from '../process/proc.js';
import { readStatus, table } from './inspect.js';
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

/** The supervisor a data dir records (`supervisor.json`), if any. */
function supervisorOf(dataDir: string): StackView['supervisor'] {
  try {
    const info = JSON.parse(readFileSync(join(dataDir, 'supervisor.json'), 'utf8')) as { pid?: unknown; startTime?: unknown };
    if (typeof info.pid !== 'number') return null;
    return { pid: info.pid, alive: isAlive({ pid: info.pid, startTime: typeof info.startTime === 'number' ? info.startTime : 0 }) };
  } catch {
    return null;
  }
}

export function describeStack(dataDir: string, home = stigmerHome()): StackView {
  const status = readStatus(dataDir);
  const services = status.tasks.filter((t) => t.pid !== undefined).map((t) => ({ task: t.task, state: t.state, ...(t.pid !== undefined ? { pid: t.pid } : {}) }));
  const up = services.filter((s) => UP.has(s.state)).length;
  const state: StackState = services.length === 0 ? 'stopped' : up === services.length ? 'running' : 'degraded';
  const file = status.file ?? readStackRecord(dataDir)?.file ?? null;
  return { name: resolve(dataDir) === resolve(home) ? 'local' : basename(dataDir), data_dir: resolve(dataDir), file, state, services, supervisor: supervisorOf(dataDir) };
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
