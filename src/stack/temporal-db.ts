/**
 * The managed dev server's SQLite file remembers which Temporal CLI version created it, in
 * `<db>.version` beside it. Upstream gives no migration guarantee for dev-server files, so when
 * temporal.version moves to another minor (1.7.x -> 1.8.x) the old file and its journal files are
 * kept as `<db>.<old version>.bak...` and the new server starts a fresh one; stigmer says so.
 * A file without a marker (made before stigmer kept one) is taken as the current version's.
 *
 * Renaming while an old server still runs is safe on POSIX: it keeps writing to the renamed
 * file until the process kind stops it, moments later (the version is part of its command).
 */
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';

const SIBLINGS = ['', '-wal', '-shm', '-journal'];

function minorOf(version: string): string {
  return version.split('.').slice(0, 2).join('.');
}

export interface DbCheck {
  /** the version that created the file, when known */
  createdBy: string | null;
  /** the backup made now, if any */
  backup: string | null;
  /** one line for the user when something was done */
  note: string | null;
}

/** Check the file against `version` (only for a managed Temporal); writes the marker. */
export function checkTemporalDb(dbFile: string, version: string): DbCheck {
  const marker = `${dbFile}.version`;
  let createdBy: string | null = null;
  try {
    createdBy = readFileSync(marker, 'utf8').trim() || null;
  } catch {
    createdBy = null;
  }
  const exists = existsSync(dbFile);
  if (exists && createdBy && minorOf(createdBy) !== minorOf(version)) {
    const backup = `${dbFile}.${createdBy}.bak`;
    for (const s of SIBLINGS) if (existsSync(dbFile + s)) renameSync(dbFile + s, backup + s);
    writeFileSync(marker, `${version}\n`);
    return {
      createdBy,
      backup,
      note:
        `Temporal CLI ${createdBy} created ${dbFile}; ${version} is another minor version and dev-server files have no ` +
        `migration guarantee, so the old file is kept as ${backup} and ${version} starts a new one (switch temporal.version back to ${createdBy} to use it again).`,
    };
  }
  if (!createdBy || !exists) writeFileSync(marker, `${exists && createdBy ? createdBy : version}\n`);
  return { createdBy: exists ? (createdBy ?? version) : version, backup: null, note: null };
}
