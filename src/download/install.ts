/**
 * Download, verify and install a file or a .tar.gz into a directory, atomically.
 *
 *   <dest>.tmp-<pid>-<rand>.part   the download, hashed while it streams   (archives only)
 *   <dest>.tmp-<pid>-<rand>/       the extracted tree (or the single file) + install marker
 *   <dest>.tmp-<pid>-<rand>.old    a previous install, moved aside during the swap
 *
 * Nothing at `dest` is touched until the bytes are verified and extracted; the finished tree is
 * then renamed onto `dest` (same filesystem, so the rename is atomic). A run killed at any point
 * leaves only `*.tmp-*` siblings, which the next run removes, and never a `dest` holding a
 * marker for files that are not all there: the marker is written inside the temp dir before the
 * rename, and an install only counts when every file it lists still has its recorded sha256.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { chmod, lstat, mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { fail } from '../failure.js';
import { registerSecret } from '../mask.js';
import type { Progress } from '../types.js';
import { TaskError } from '../types.js';
import { extractArchive, scanArchive } from './archive.js';
import { findChecksum, isSha256 } from './checksums.js';
import { abortFailure, fetchText, fetchToFile } from './fetch.js';

export const INSTALL_MARKER = '.stigmer-install.json';

export interface DownloadParams {
  /** http(s) URL of the file or .tar.gz */
  url: string;
  /** directory to install into (resolved against the working directory when relative) */
  dest: string;
  /** expected sha256 of the downloaded bytes (64 hex digits); wins over checksumsUrl */
  sha256?: string | undefined;
  /** URL of a `<sha256>  <filename>` checksums file listing the URL's last path segment */
  checksumsUrl?: string | undefined;
  /** extract a .tar.gz into dest (default: whether the URL ends in .tar.gz or .tgz) */
  extract?: boolean | undefined;
  /** mode of every installed file, e.g. "0755" or 0o755 (default: see applyModes) */
  mode?: string | number | undefined;
  /** idle timeout for connect, headers and body (default 30 s) */
  idleTimeoutMs?: number | undefined;
}

export interface InstallOptions {
  signal?: AbortSignal | undefined;
  onProgress?: ((p: Progress) => void) | undefined;
  /** status lines ("downloading ...", "extracting ...") */
  onOutput?: ((line: string) => void) | undefined;
  /** download again even when a verified install is present */
  force?: boolean | undefined;
}

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

export interface InstallResult {
  outputs: DownloadOutputs;
  /** true when a verified install was already there and nothing was fetched */
  satisfied: boolean;
}

/** The marker written into dest; an install counts only while every listed file still matches. */
interface InstallMarker {
  url: string;
  sha256: string;
  installedAt: string;
  bytes: number;
  /** the main executable relative to dest, or null when dest itself is the output path */
  main: string | null;
  files: Record<string, string>;
}

/** Stage dirs of downloads running in this process: never cleaned up as stale. */
const active = new Set<string>();

/** The URL's last path segment (what checksums files list). */
export function urlFileName(url: string): string {
  return decodeURIComponent(new URL(url).pathname.split('/').pop() ?? '');
}

/** "0755", "755", "0o755" or 0o755 -> 0o755; integers written with octal digits (755) count as octal. */
export function parseMode(mode: string | number): number | undefined {
  let digits: string;
  if (typeof mode === 'number') {
    if (!Number.isInteger(mode) || mode < 0) return undefined;
    // YAML 1.2 reads `mode: 0755` as the integer 755: take its digits as octal when they can be
    digits = /^[0-7]{3,4}$/.test(String(mode)) ? String(mode) : mode.toString(8);
  } else {
    const m = /^(?:0o|0)?([0-7]{3,4})$/i.exec(mode.trim());
    if (!m) return undefined;
    digits = m[1]!;
  }
  const value = parseInt(digits, 8);
  return value <= 0o777 ? value : undefined;
}

interface Resolved {
  url: string;
  dest: string;
  filename: string;
  sha256?: string;
  checksumsUrl?: string;
  extract: boolean;
  mode?: number;
  idleTimeoutMs?: number;
}

function invalid(message: string, hint?: string): TaskError {
  return new TaskError(fail.invalidInput(message, hint));
}

function checkUrl(name: string, value: string): URL {
  let u: URL;
  try {
    u = new URL(value);
  } catch {
    throw invalid(`Expected ${name} to be an http(s) URL, got "${value}"`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw invalid(`Expected ${name} to be an http(s) URL, got "${value}"`);
  // credentials in a mirror URL are secrets: keep them out of every message
  if (u.password) registerSecret(decodeURIComponent(u.password));
  return u;
}

function resolveParams(p: DownloadParams): Resolved {
  const u = checkUrl('url', p.url);
  const filename = urlFileName(p.url);
  if (!filename || filename === '.' || filename === '..' || filename.includes('/')) {
    throw invalid(`Expected url to end in a file name, got "${u.pathname}"`);
  }
  if (p.sha256 !== undefined && !isSha256(p.sha256)) throw invalid(`Expected sha256 to be 64 hex digits, got "${p.sha256}"`);
  if (p.checksumsUrl !== undefined) checkUrl('checksums_url', p.checksumsUrl);
  if (p.sha256 === undefined && p.checksumsUrl === undefined) {
    throw invalid('download needs sha256 or checksums_url', 'Give the expected sha256, or the URL of the release\'s checksums file.');
  }
  if (!p.dest) throw invalid('Expected dest to be a directory path, got ""');
  const r: Resolved = {
    url: p.url,
    dest: resolve(p.dest),
    filename,
    extract: p.extract ?? /\.(tar\.gz|tgz)$/i.test(filename),
  };
  if (dirname(r.dest) === r.dest) throw invalid(`Expected dest to be a directory below the root, got "${p.dest}"`);
  if (p.sha256 !== undefined) r.sha256 = p.sha256.toLowerCase();
  else if (p.checksumsUrl !== undefined) r.checksumsUrl = p.checksumsUrl;
  if (p.mode !== undefined) {
    const m = parseMode(p.mode);
    if (m === undefined) throw invalid(`Expected mode to be octal permissions like "0755", got "${p.mode}"`);
    r.mode = m;
  }
  if (p.idleTimeoutMs !== undefined) r.idleTimeoutMs = p.idleTimeoutMs;
  return r;
}

async function hashFile(file: string): Promise<string> {
  const h = createHash('sha256');
  await pipeline(createReadStream(file), h);
  return h.digest('hex');
}

const DOC_FILE = /^(licen[cs]e|copying|notice|readme|changelog)([._-].*)?$/i;

/**
 * The main executable of a tree: the single top-level regular executable file when everything
 * else at the top level is a LICENSE/README-like document.
 */
async function findMain(dir: string, files: Record<string, string>): Promise<string | null> {
  const top = (await readdir(dir)).filter((n) => n !== INSTALL_MARKER && !DOC_FILE.test(n));
  if (top.length !== 1) return null;
  const name = top[0]!;
  if (!(name in files)) return null;
  const st = await lstat(join(dir, name));
  return st.isFile() && (st.mode & 0o111) !== 0 ? name : null;
}

/**
 * Normalise permissions and hash every regular file. Files get `mode` when given, else 0755 if
 * they were executable in the archive (`archiveModes`; a hard-linked copy keeps what tar gave
 * it) and 0644 otherwise, so the process umask does not decide whether a program can run.
 */
async function finishTree(dir: string, mode: number | undefined, archiveModes: Map<string, number>): Promise<Record<string, string>> {
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
        files[r] = await hashFile(join(dir, r));
      }
    }
  };
  await walk('');
  return Object.fromEntries(Object.entries(files).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

function outputsOf(dest: string, m: InstallMarker): DownloadOutputs {
  return { dest, path: m.main ? join(dest, m.main) : dest, sha256: m.sha256, files: Object.keys(m.files), bytes: m.bytes };
}

function safeRel(rel: string): boolean {
  return rel !== '' && !rel.startsWith('/') && !rel.split('/').some((s) => s === '..' || s === '.' || s === '');
}

/**
 * The outputs of a verified install of `url` at `dest`, or undefined when there is none (no
 * marker, another URL or sha256, a listed file missing or changed). Reads no network.
 */
export async function checkInstalled(params: DownloadParams): Promise<DownloadOutputs | undefined> {
  const r = resolveParams(params);
  let m: InstallMarker;
  try {
    m = JSON.parse(await readFile(join(r.dest, INSTALL_MARKER), 'utf8')) as InstallMarker;
  } catch {
    return undefined;
  }
  if (!m || typeof m !== 'object' || m.url !== r.url || typeof m.sha256 !== 'string') return undefined;
  if (r.sha256 !== undefined && m.sha256 !== r.sha256) return undefined;
  if (!m.files || typeof m.files !== 'object' || Object.keys(m.files).length === 0) return undefined;
  if (m.main !== null && (typeof m.main !== 'string' || !(m.main in m.files))) return undefined;
  for (const [rel, sum] of Object.entries(m.files)) {
    if (!safeRel(rel)) return undefined;
    const file = join(r.dest, rel);
    try {
      const st = await lstat(file);
      if (!st.isFile()) return undefined;
      if (rel === m.main && (st.mode & 0o111) === 0) return undefined;
      if ((await hashFile(file)) !== sum) return undefined;
    } catch {
      return undefined;
    }
  }
  return outputsOf(r.dest, m);
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Remove `<dest>.tmp-<pid>-*` leftovers of runs that are no longer alive. */
export async function removeStaleTemps(dest: string): Promise<string[]> {
  const parent = dirname(dest);
  const prefix = `${basename(dest)}.tmp-`;
  let names: string[];
  try {
    names = await readdir(parent);
  } catch {
    return [];
  }
  const removed: string[] = [];
  for (const name of names) {
    if (!name.startsWith(prefix)) continue;
    const path = join(parent, name);
    const stage = path.replace(/\.(part|old)$/, '');
    if (active.has(stage)) continue;
    const pid = Number(/^(\d+)-/.exec(name.slice(prefix.length))?.[1]);
    if (pid && pid !== process.pid && pidAlive(pid)) continue;
    await rm(path, { recursive: true, force: true });
    removed.push(path);
  }
  return removed;
}

/** Move `stage` onto `dest`; an existing dest is moved aside first and removed after the swap. */
async function swapInto(stage: string, dest: string): Promise<void> {
  let aside: string | undefined;
  try {
    await lstat(dest);
    aside = `${stage}.old`;
    await rename(dest, aside);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  try {
    await rename(stage, dest);
  } catch (err) {
    if (aside) await rename(aside, dest).catch(() => undefined);
    throw err;
  }
  if (aside) await rm(aside, { recursive: true, force: true });
}

/**
 * Refuse to replace a `dest` that stigmer did not install: an existing dest is replaced only when
 * it is empty or holds an install marker (an older or broken install), never a user's own files.
 */
async function checkReplaceable(dest: string): Promise<void> {
  let entries: string[];
  try {
    entries = await readdir(dest);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return;
    if (code !== 'ENOTDIR') throw err;
    entries = ['(a file)'];
  }
  if (entries.length === 0 || entries.includes(INSTALL_MARKER)) return;
  throw new TaskError(
    fail.taskError(`${dest} already exists and holds files stigmer did not install`, 'Remove it, or choose another dest: stigmer only replaces its own installs.'),
  );
}

function checkAbort(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw abortFailure(signal);
}

/**
 * Install `params.url` into `params.dest`, or reuse a verified install already there (no network
 * then). Failures are `TaskError`s (download-failed, checksum-mismatch, unsafe-archive, aborted,
 * invalid-input); on any failure nothing is left at `dest` that was not there before, and no temp
 * files remain.
 */
export async function installDownload(params: DownloadParams, opts: InstallOptions = {}): Promise<InstallResult> {
  const r = resolveParams(params);
  const say = (line: string): void => opts.onOutput?.(line);
  const fetchOpts = { signal: opts.signal, idleTimeoutMs: r.idleTimeoutMs };

  if (!opts.force) {
    const installed = await checkInstalled(params);
    if (installed) return { outputs: installed, satisfied: true };
  }
  checkAbort(opts.signal);
  await checkReplaceable(r.dest);
  await mkdir(dirname(r.dest), { recursive: true });
  await removeStaleTemps(r.dest);

  let expected = r.sha256;
  if (expected === undefined) {
    const checksumsUrl = r.checksumsUrl!;
    say(`fetching checksums ${checksumsUrl}`);
    expected = findChecksum(await fetchText(checksumsUrl, fetchOpts), r.filename);
    if (expected === undefined) throw new TaskError(fail.checksumMissing(r.filename, checksumsUrl));
  }

  const stage = `${r.dest}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  const part = `${stage}.part`;
  active.add(stage);
  try {
    await mkdir(stage, { mode: 0o755 });
    say(`downloading ${r.url}`);
    const target = r.extract ? part : join(stage, r.filename);
    const got = await fetchToFile(r.url, target, { ...fetchOpts, onProgress: opts.onProgress });
    if (got.sha256 !== expected) throw new TaskError(fail.checksumMismatch(r.url, expected, got.sha256));
    checkAbort(opts.signal);

    let archiveModes = new Map<string, number>();
    if (r.extract) {
      say(`extracting ${r.filename}`);
      const listing = await scanArchive(part);
      await extractArchive(part, stage, listing);
      await rm(part, { force: true });
      archiveModes = listing.files;
    } else {
      // a single downloaded file is usually a program
      archiveModes.set(r.filename, 0o755);
    }
    const files = await finishTree(stage, r.mode, archiveModes);
    if (Object.keys(files).length === 0) {
      throw new TaskError(fail.taskError(`the archive ${r.filename} holds no files`, 'Check the URL and the `extract` setting.'));
    }
    const main = r.extract ? await findMain(stage, files) : r.filename;
    const marker: InstallMarker = { url: r.url, sha256: got.sha256, installedAt: new Date().toISOString(), bytes: got.bytes, main, files };
    await writeFile(join(stage, INSTALL_MARKER), `${JSON.stringify(marker, null, 2)}\n`, { mode: 0o644 });
    checkAbort(opts.signal);
    await swapInto(stage, r.dest);
    say(`installed ${Object.keys(files).length} file(s) in ${r.dest}`);
    return { outputs: outputsOf(r.dest, marker), satisfied: false };
  } catch (err) {
    await rm(stage, { recursive: true, force: true }).catch(() => undefined);
    if (err instanceof TaskError) throw err;
    if (opts.signal?.aborted) throw abortFailure(opts.signal);
    const e = err as NodeJS.ErrnoException;
    throw new TaskError(fail.taskError(`could not install into ${r.dest}: ${e.code ? `${e.code} ${e.path ?? ''}`.trim() : e.message}`, 'Check the permissions and free space of the destination directory.'));
  } finally {
    await rm(part, { force: true }).catch(() => undefined);
    active.delete(stage);
  }
}
