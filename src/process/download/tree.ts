/**
 * The installed tree and its marker, `<dest>/.stigmer-install.json`: which URL and sha256 were
 * installed and the sha256 of every file. An install counts only while every listed file still
 * hashes to its recorded value, so a half-finished or tampered install never does.
 *
 * Hashing a real Temporal CLI (a binary of ~100 MB) on every `local start` would cost a few hundred
 * ms, so the marker also keeps each file's stamp (size, inode, mtime and ctime in ns) taken when it
 * was installed. A file whose stamp still matches is not hashed again: any write, truncation,
 * replacement or chmod changes its ctime, which only the kernel sets. A file whose stamp differs
 * (or a marker without stamps) is hashed as before.
 */
import { createHash } from 'node:crypto';
import { createReadStream, lstatSync, readFileSync } from 'node:fs';
import { chmod, lstat, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';

export const INSTALL_MARKER = '.stigmer-install.json';

export interface DownloadOutputs {
  dest: string;
  /** the main executable: the single program of an archive, the file of a plain download, else dest */
  path: string;
  /** sha256 of the downloaded bytes */
  sha256: string;
  /** installed regular files, relative to dest */
  files: string[];
  /** size of the download */
  bytes: number;
}

/** The marker written into dest; an install counts only while every listed file still matches. */
export interface InstallMarker {
  url: string;
  sha256: string;
  installedAt: string;
  bytes: number;
  /** the main executable relative to dest, or null when dest itself is the output path */
  main: string | null;
  files: Record<string, string>;
  /** relative path -> `fileStamp` at install time (absent in markers of older installs) */
  stamps?: Record<string, string>;
}

/** "size:inode:mtimeNs:ctimeNs" of a regular file (not following links), or undefined. */
export function fileStamp(file: string): string | undefined {
  try {
    const st = lstatSync(file, { bigint: true });
    return st.isFile() ? `${st.size}:${st.ino}:${st.mtimeNs}:${st.ctimeNs}` : undefined;
  } catch {
    return undefined;
  }
}

/** The stamps of installed files, taken once their permissions are final. */
export function stampFiles(dir: string, files: Record<string, string>): Record<string, string> {
  const stamps: Record<string, string> = {};
  for (const rel of Object.keys(files)) {
    const stamp = fileStamp(join(dir, rel));
    if (stamp) stamps[rel] = stamp;
  }
  return stamps;
}

export async function hashFile(file: string): Promise<string> {
  const h = createHash('sha256');
  await pipeline(createReadStream(file), h);
  return h.digest('hex');
}

const DOC_FILE = /^(licen[cs]e|copying|notice|readme|changelog)([._-].*)?$/i;

/**
 * The main executable of a tree: the single top-level regular executable file when everything
 * else at the top level is a LICENSE/README-like document.
 */
export async function findMain(dir: string, files: Record<string, string>): Promise<string | null> {
  const top = (await readdir(dir)).filter((n) => n !== INSTALL_MARKER && !DOC_FILE.test(n));
  if (top.length !== 1) return null;
  const name = top[0]!;
  if (!(name in files)) return null;
  const st = await lstat(join(dir, name));
  return st.isFile() && (st.mode & 0o111) !== 0 ? name : null;
}

/**
 * Normalise permissions and hash every regular file (`known`: the sha256 of files hashed while
 * they were extracted; a hard-linked copy, not among them, is read back). Files get `mode` when given, else 0755 if
 * they were executable in the archive (`archiveModes`; a hard-linked copy keeps what tar gave
 * it) and 0644 otherwise, so the process umask does not decide whether a program can run.
 */
export async function finishTree(dir: string, mode: number | undefined, archiveModes: Map<string, number>, known?: Map<string, string>): Promise<Record<string, string>> {
  const files: Record<string, string> = {};
  const walk = async (rel: string): Promise<void> => {
    const abs = rel ? join(dir, rel) : dir;
    await chmod(abs, 0o755);
    for (const d of await readdir(abs, { withFileTypes: true })) {
      const r = rel ? `${rel}/${d.name}` : d.name;
      if (d.isDirectory()) await walk(r);
      else if (d.isFile()) {
        if (r === INSTALL_MARKER) continue;
        const archived = archiveModes.get(r) ?? (await stat(join(dir, r))).mode;
        await chmod(join(dir, r), mode ?? ((archived & 0o111) !== 0 ? 0o755 : 0o644));
        files[r] = known?.get(r) ?? (await hashFile(join(dir, r)));
      }
    }
  };
  await walk('');
  return Object.fromEntries(Object.entries(files).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

export function outputsOf(dest: string, m: InstallMarker): DownloadOutputs {
  return { dest, path: m.main ? join(dest, m.main) : dest, sha256: m.sha256, files: Object.keys(m.files), bytes: m.bytes };
}

function safeRel(rel: string): boolean {
  return rel !== '' && !rel.startsWith('/') && !rel.split('/').some((s) => s === '..' || s === '.' || s === '');
}

/**
 * The outputs of a verified install of `r.url` at `r.dest` (with `r.sha256`, when given), or undefined when there is none (no
 * marker, another URL or sha256, a listed file missing or changed). Reads no network.
 */
export async function readInstall(r: { dest: string; url: string; sha256?: string | undefined }): Promise<DownloadOutputs | undefined> {
  let m: InstallMarker;
  try {
    // Synchronous on purpose: the usual case (stamps match) then settles in one turn of the event
    // loop, not behind the imports of the tasks that start beside it.
    m = JSON.parse(readFileSync(join(r.dest, INSTALL_MARKER), 'utf8')) as InstallMarker;
  } catch {
    return undefined;
  }
  if (!m || typeof m !== 'object' || m.url !== r.url || typeof m.sha256 !== 'string') return undefined;
  if (r.sha256 !== undefined && m.sha256 !== r.sha256) return undefined;
  if (!m.files || typeof m.files !== 'object' || Object.keys(m.files).length === 0) return undefined;
  if (m.main !== null && (typeof m.main !== 'string' || !(m.main in m.files))) return undefined;
  const stamps = m.stamps && typeof m.stamps === 'object' ? m.stamps : {};
  for (const [rel, sum] of Object.entries(m.files)) {
    if (!safeRel(rel)) return undefined;
    const file = join(r.dest, rel);
    const stamp = fileStamp(file);
    if (stamp === undefined) return undefined;
    if (stamps[rel] === stamp) continue;
    try {
      if ((await hashFile(file)) !== sum) return undefined;
    } catch {
      return undefined;
    }
  }
  return outputsOf(r.dest, m);
}

