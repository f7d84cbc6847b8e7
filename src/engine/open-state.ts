/**
 * Opening a data dir's state for a command that may undo: the state file is checked like input
 * (state-file.ts) and whatever is wrong with it is said, one line each, before anything runs.
 *   corrupt    -> kept aside as state.json.corrupt-<time>; what it recorded may still run (the
 *                 marker sweep finds it); the command goes on with an empty state, exit 1 at the end
 *   unreadable -> StateUnreadable: the caller sweeps by marker and exits (1, or 2 when it never works)
 *   refused records -> reported, never acted on, kept in the file; exit 1 at the end
 */
import { copyFileSync, renameSync } from 'node:fs';
import { EXIT, UserError } from '../util/errors.js';
import { describeFsError } from '../util/fs-error.js';
import { dataPaths } from '../util/paths.js';
import type { TasksFile } from './load.js';
import { loadState } from './state-file.js';
import { StateStore } from './state.js';

export class StateUnreadable extends Error {
  constructor(
    message: string,
    readonly exitCode: number,
  ) {
    super(message);
    this.name = 'StateUnreadable';
  }
}

export interface OpenedState {
  state: StateStore;
  /** something was wrong with the file: the command exits 1 even if all else goes well */
  troubled: boolean;
}

const stamp = (): string => new Date().toISOString().replace(/[:.]/g, '-');

export function openState(dataDir: string, say: (line: string) => void, file?: TasksFile): OpenedState {
  const path = dataPaths(dataDir).state;
  const loaded = loadState(path);
  let troubled = false;
  if (loaded.status === 'unreadable') {
    throw new StateUnreadable(`stigmer: cannot read ${loaded.reason}; services it recorded may still run`, /EACCES|EPERM|EISDIR/.test(loaded.reason) ? EXIT.usage : EXIT.taskFailed);
  }
  if (loaded.status === 'corrupt') {
    troubled = true;
    const aside = `${path}.corrupt-${stamp()}`;
    let kept: string;
    try {
      renameSync(path, aside);
      kept = `kept it as ${aside}`;
    } catch (err) {
      kept = `could not set it aside (${describeFsError(err, aside)})`;
    }
    say(`stigmer: ${path} is corrupt (${loaded.reason}); services it recorded may still run. ${kept}; stopping what carries this stack's marker`);
  }
  const state = new StateStore(path, loaded);
  if (state.problems.length) {
    troubled = true;
    for (const p of state.problems) say(`stigmer: ${p}`);
    if (file) {
      // This run may write new records over the refused ones: keep the file as it was.
      const aside = `${path}.corrupt-${stamp()}`;
      try {
        copyFileSync(path, aside);
        say(`stigmer: the refused records are never acted on; a copy of the file is kept as ${aside}`);
      } catch (err) {
        say(`stigmer: could not keep a copy of ${path} (${describeFsError(err, aside)})`);
      }
    } else {
      say(`stigmer: the refused records are never acted on and stay in ${path}: check them, then remove them or the file`);
    }
  }
  if (file) {
    const other = state.data.file;
    if (other && other !== file.path && Object.values(state.tasks).some((r) => r.undo.length > 0)) {
      throw new UserError(`${dataDir} holds a running stack started from ${other}.\n` + `Run \`stigmer down --data-dir ${dataDir}\` first, or use another --data-dir.`, EXIT.usage);
    }
    state.data.file = file.path;
  }
  return { state, troubled };
}
