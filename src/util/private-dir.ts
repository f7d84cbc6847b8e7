/**
 * The directories stigmer keeps things in (the home, a data dir, its logs): created private to
 * the user (0700), or checked to be a directory, with one clear error when they cannot be.
 *
 * Each missing level is made with its own mkdir rather than mkdirSync's recursive mode: under
 * /proc that one never returns (procfs answers ENOENT for a new entry whose parent exists, and
 * Node retries the parent and the entry forever, at 100% CPU).
 */
import { mkdirSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { EXIT, UserError } from './errors.js';
import { printable } from './diagnostics.js';

const REASONS: Record<string, string> = {
  EACCES: 'permission denied',
  EPERM: 'not permitted',
  EROFS: 'read-only file system',
  ENOSPC: 'no space left on the device',
  ENAMETOOLONG: 'the path is too long',
  ELOOP: 'too many symbolic links',
  ENOENT: 'the file system does not allow creating it',
};

/** `what` names the directory in messages ("data dir", "STIGMER_HOME"). Returns the absolute path. */
export function makePrivateDir(dir: string, what = 'data dir'): string {
  if (dir.includes('\0')) throw new UserError(`stigmer: the ${what} path contains a NUL byte`, EXIT.usage);
  const abs = resolve(dir);
  const fail = (at: string, err: NodeJS.ErrnoException | string): never => {
    const why = typeof err === 'string' ? err : `${REASONS[err.code ?? ''] ?? err.message} (${err.code ?? 'error'})`;
    throw new UserError(`stigmer: cannot use ${printable(abs)} as the ${what}: ${at === abs ? '' : `${printable(at)}: `}${why}`, EXIT.usage);
  };
  const missing: string[] = [];
  let underFile = false; // ENOTDIR: some parent is a file; keep walking up to name it
  for (let p = abs; ; p = dirname(p)) {
    let isDir: boolean;
    try {
      isDir = statSync(p).isDirectory();
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      if ((e.code === 'ENOENT' || e.code === 'ENOTDIR') && dirname(p) !== p) {
        underFile ||= e.code === 'ENOTDIR';
        missing.push(p);
        continue;
      }
      return fail(p, e);
    }
    if (!isDir) fail(p, 'it is a file, not a directory');
    if (underFile) fail(p, 'a part of the path is a file, not a directory');
    break;
  }
  for (const p of missing.reverse()) {
    try {
      mkdirSync(p, { mode: 0o700 });
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      // another process made it meanwhile
      if (e.code === 'EEXIST' && statSync(p, { throwIfNoEntry: false })?.isDirectory()) continue;
      fail(p, e);
    }
  }
  return abs;
}
