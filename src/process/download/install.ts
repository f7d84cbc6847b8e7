/**
 * Download, verify and install a file, a .tar.gz or a .tar.zst into a directory, atomically.
 *
 *   <dest>.tmp-<pid>-<rand>.part   the download, hashed while it streams   (.tar.gz archives only;
 *                                  a .tar.zst is extracted as it arrives, straight into the dir below)
 *   <dest>.tmp-<pid>-<rand>/       the extracted tree (or the single file) + install marker
 *   <dest>.tmp-<pid>-<rand>.old    a previous install, moved aside during the swap
 *
 * Nothing at `dest` is touched until the bytes are verified and extracted; the finished tree is
 * then renamed onto `dest` (same filesystem, so the rename is atomic). A run killed at any point
 * leaves only `*.tmp-*` siblings, which the next run removes, and never a `dest` holding a
 * marker for files that are not all there: the marker is written inside the temp dir before the
 * rename, and an install only counts when every file it lists still has its recorded sha256.
 */
import { randomBytes } from 'node:crypto';
import { lstat, mkdir, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { fail } from '../../model/failure.js';
import type { Progress } from '../../model/kind.js';
import { TaskError } from '../../model/kind.js';
import { pidExists } from '../identity.js';
import { findChecksum } from './checksums.js';
import { resolveParams } from './params.js';
import type { DownloadParams, Resolved } from './params.js';
import { finishTree, findMain, INSTALL_MARKER, outputsOf, readInstall, stampFiles } from './tree.js';
import type { DownloadOutputs, InstallMarker } from './tree.js';

export type { DownloadParams } from './params.js';
export { parseMode, urlFileName } from './params.js';
export type { DownloadOutputs } from './tree.js';
export { INSTALL_MARKER } from './tree.js';

export interface InstallOptions {
  signal?: AbortSignal | undefined;
  onProgress?: ((p: Progress) => void) | undefined;
  /** status lines ("downloading ...", "extracting ...") */
  onOutput?: ((line: string) => void) | undefined;
  /** download again even when a verified install is present */
  force?: boolean | undefined;
}

export interface InstallResult {
  outputs: DownloadOutputs;
  /** true when a verified install was already there and nothing was fetched */
  satisfied: boolean;
}

/**
 * The outputs of a verified install of `params.url` at `params.dest`, or undefined when there is
 * none (no marker, another URL or sha256, a listed file missing or changed). Reads no network.
 */
export async function checkInstalled(params: DownloadParams): Promise<DownloadOutputs | undefined> {
  return readInstall(resolveParams(params));
}

let inChild = false;

/**
 * Fresh installs from now on run in a child process (src/process/download/child.ts): the
 * supervisor turns it on, so what fetching and extracting cost goes when the child exits.
 */
export function installInChildProcess(on: boolean): void {
  inChild = on;
}

/** Stage dirs of downloads running in this process: never cleaned up as stale. */
const active = new Set<string>();

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
    if (pid && pid !== process.pid && pidExists(pid)) continue;
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
    fail.destNotOurs(dest),
  );
}

/**
 * The fetching and extracting modules, loaded only when something must be installed: a start that
 * finds a verified install (every `local start` after the first) does not pay for them.
 */
async function loadFetching(): Promise<typeof import('./fetch.js') & typeof import('./archive.js') & typeof import('./zstd.js')> {
  const [fetching, archive, zstd] = await Promise.all([import('./fetch.js'), import('./archive.js'), import('./zstd.js')]);
  return { ...fetching, ...archive, ...zstd };
}

function checkAbort(signal: AbortSignal | undefined, abortFailure: (signal: AbortSignal) => TaskError): void {
  if (signal?.aborted) throw abortFailure(signal);
}

/**
 * Install `params.url` into `params.dest`, or reuse a verified install already there (no network
 * then). Failures are `TaskError`s (download-failed, checksum-mismatch, unsafe-archive, aborted,
 * invalid-input, write-failed and dest-not-ours for the file system); on any failure nothing is left at `dest` that
 * was not there before, and no temp files remain.
 */
export async function installDownload(params: DownloadParams, opts: InstallOptions = {}): Promise<InstallResult> {
  const r = resolveParams(params);
  if (!opts.force) {
    const installed = await readInstall(r);
    if (installed) return { outputs: installed, satisfied: true };
  }
  if (inChild) return { outputs: await (await import('./child.js')).installInChild(params, opts), satisfied: false };
  try {
    return { outputs: await installFresh(r, opts), satisfied: false };
  } catch (err) {
    if (err instanceof TaskError) throw err;
    if (opts.signal?.aborted) throw (await import('./fetch.js')).abortFailure(opts.signal);
    const e = err as NodeJS.ErrnoException;
    const what = e.code ? `${e.code}${e.path ? ` ${e.path}` : ''}` : e.message;
    throw new TaskError(fail.writeFailed('install into', r.dest, what));
  }
}

async function installFresh(r: Resolved, opts: InstallOptions): Promise<DownloadOutputs> {
  const say = (line: string): void => opts.onOutput?.(line);
  const fetchOpts = { signal: opts.signal, idleTimeoutMs: r.idleTimeoutMs };
  const { abortFailure, extractArchive, fetchInto, fetchText, fetchToFile, isTarZst, scanArchive, zstExtractor, zstdDecoder } = await loadFetching();
  checkAbort(opts.signal, abortFailure);
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
    let archiveModes = new Map<string, number>();
    let hashes: Map<string, string> | undefined;
    let got: { sha256: string; bytes: number };
    if (r.extract && isTarZst(r.filename)) {
      // Streamed: the bytes are hashed and extracted into the private stage dir as they arrive
      // (download, decoder and unpacker in step, each one's backpressure respected), and the
      // stage is installed only once the whole download matched its sha256.
      const decoder = zstdDecoder();
      say(`downloading ${r.url}`);
      say(`extracting ${r.filename} with ${decoder.name} as it arrives`);
      const x = await zstExtractor(stage, decoder, r.filename);
      try {
        got = await fetchInto(r.url, () => x.sink, { ...fetchOpts, onProgress: opts.onProgress });
      } catch (err) {
        x.abort();
        await x.finish().catch(() => undefined);
        throw err;
      }
      if (got.sha256 !== expected) {
        x.abort();
        await x.finish().catch(() => undefined);
        throw new TaskError(fail.checksumMismatch(r.url, expected, got.sha256));
      }
      const listing = await x.finish();
      archiveModes = listing.files;
      hashes = listing.hashes;
    } else {
      say(`downloading ${r.url}`);
      const target = r.extract ? part : join(stage, r.filename);
      got = await fetchToFile(r.url, target, { ...fetchOpts, onProgress: opts.onProgress });
      if (got.sha256 !== expected) throw new TaskError(fail.checksumMismatch(r.url, expected, got.sha256));
      checkAbort(opts.signal, abortFailure);
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
    }
    checkAbort(opts.signal, abortFailure);
    const files = await finishTree(stage, r.mode, archiveModes, hashes);
    if (Object.keys(files).length === 0) {
      throw new TaskError(fail.badArchive(r.filename));
    }
    const main = r.extract ? await findMain(stage, files) : r.filename;
    const marker: InstallMarker = { url: r.url, sha256: got.sha256, installedAt: new Date().toISOString(), bytes: got.bytes, main, files, stamps: stampFiles(stage, files) };
    await writeFile(join(stage, INSTALL_MARKER), `${JSON.stringify(marker, null, 2)}\n`, { mode: 0o644 });
    checkAbort(opts.signal, abortFailure);
    await swapInto(stage, r.dest);
    say(`installed ${Object.keys(files).length} file(s) in ${r.dest}`);
    return outputsOf(r.dest, marker);
  } catch (err) {
    await rm(stage, { recursive: true, force: true }).catch(() => undefined);
    throw err;
  } finally {
    await rm(part, { force: true }).catch(() => undefined);
    active.delete(stage);
  }
}
