/**
 * File-system errors as one line a person can act on: the path, the errno and what it means
 * ("/home/me/.stigmer/state.json: ENOSPC (no space left on device)"), and whether retrying can
 * help (a full disk can be freed; a read-only or foreign-owned data dir never works as it is).
 */
import { EXIT } from './errors.js';

const MEANING: Record<string, string> = {
  ENOSPC: 'no space left on device',
  EDQUOT: 'disk quota exceeded',
  EROFS: 'read-only file system',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  ENOTDIR: 'a path component is not a directory',
  EISDIR: 'is a directory',
  EEXIST: 'already exists',
  ENOENT: 'no such file or directory',
  EIO: 'input/output error',
  EMFILE: 'too many open files',
};

export const isFsError = (err: unknown): err is NodeJS.ErrnoException => err instanceof Error && typeof (err as NodeJS.ErrnoException).code === 'string' && /^E[A-Z]+$/.test((err as NodeJS.ErrnoException).code!);

/** "ENOSPC (no space left on device)", or the error's message when it has no errno. */
export function errnoText(err: unknown): string {
  if (!isFsError(err)) return (err as Error)?.message ?? String(err);
  const code = err.code!;
  return `${code} (${MEANING[code] ?? err.message.replace(/^[A-Z]+: /, '').split(',')[0]})`;
}

/** "<path>: ENOSPC (no space left on device)"; `path` defaults to the one the error names. */
export function describeFsError(err: unknown, path?: string): string {
  const where = path ?? (isFsError(err) ? err.path : undefined) ?? '';
  return `${where ? `${where}: ` : ''}${errnoText(err)}`;
}

/** 2 for a data dir that can never work as it is (read-only, not ours, not a directory), else 1. */
export function fsExitCode(err: unknown): number {
  const code = isFsError(err) ? err.code : undefined;
  return code === 'EROFS' || code === 'EACCES' || code === 'EPERM' || code === 'ENOTDIR' || code === 'EISDIR' ? EXIT.usage : EXIT.taskFailed;
}
