/**
 * Safe .tar.gz extraction. tar 7 on its own strips a leading `/`, skips `..` entries and escaping
 * links with a warning, and reports success; stigmer instead refuses the whole archive. Every
 * entry is checked twice: once while listing the archive (before anything is written) and again
 * as tar extracts it, with `strict: true` so any warning fails the extraction.
 *
 * The checks need the whole archive at once: a symlink declared late can make an earlier entry
 * unsafe (`b -> a/..` is harmless until `a -> .` appears), so the listing collects every symlink
 * first and then judges each entry against all of them.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { Transform, Writable } from 'node:stream';
import { posix } from 'node:path';
import { fail } from '../../model/failure.js';
import { TaskError } from '../../model/kind.js';
import type { ReadEntry } from 'tar';
import { openDecoder, type ZstdDecoder } from './zstd.js';

/** What the checks need to know about an entry (a subset of tar's ReadEntry). */
export interface EntryInfo {
  path: string;
  type: string;
  linkpath?: string | undefined;
  mode?: number | undefined;
}

export interface ArchiveListing {
  /** regular files by normalised path, with their mode in the archive */
  files: Map<string, number>;
  /** normalised paths of the symlinks */
  symlinks: Set<string>;
  entries: number;
}

const REGULAR = new Set(['File', 'OldFile', 'ContiguousFile']);

/** `a/./b/` -> `a/b`; `./` -> `` */
function normalise(path: string): string {
  const n = posix.normalize(path).replace(/\/+$/, '');
  return n === '.' ? '' : n.replace(/^\.\//, '');
}

function isAbsolute(path: string): boolean {
  return path.startsWith('/') || /^[A-Za-z]:/.test(path);
}

/** The first proper prefix of `segments` (joined) that is a symlink, if any. */
function throughSymlink(segments: string[], symlinks: Set<string>, upTo = segments.length - 1): string | undefined {
  for (let i = 1; i <= upTo; i++) {
    const prefix = segments.slice(0, i).join('/');
    if (symlinks.has(prefix)) return prefix;
  }
  return undefined;
}

/**
 * Resolve a link target written relative to `fromDir` (segments), one segment at a time, so
 * that a `..` after a symlinked directory is caught rather than normalised away. Returns the
 * reason it is unsafe, or undefined.
 */
function linkEscapes(fromDir: string[], target: string, symlinks: Set<string>): 'escapes' | { through: string } | undefined {
  const stack = [...fromDir];
  const parts = target.split('/');
  for (let i = 0; i < parts.length; i++) {
    const seg = parts[i]!;
    if (seg === '' || seg === '.') continue;
    if (seg === '..') {
      if (stack.length === 0) return 'escapes';
      stack.pop();
      continue;
    }
    stack.push(seg);
    const here = stack.join('/');
    const more = parts.slice(i + 1).some((p) => p !== '' && p !== '.');
    if (more && symlinks.has(here)) return { through: here };
  }
  return undefined;
}

/** Why `entry` is unsafe to extract, or undefined when it is fine. */
export function checkEntry(entry: EntryInfo, symlinks: Set<string>): string | undefined {
  const raw = entry.path;
  if (isAbsolute(raw)) return 'has an absolute path';
  if (raw.split('/').includes('..')) return 'has a ".." path segment';
  const rel = normalise(raw);
  const segments = rel === '' ? [] : rel.split('/');
  const via = throughSymlink(segments, symlinks);
  if (via !== undefined) return `is inside the symlink "${via}"`;

  switch (entry.type) {
    case 'File':
    case 'OldFile':
    case 'ContiguousFile':
    case 'Directory':
      return undefined;
    case 'SymbolicLink':
    case 'Link': {
      const what = entry.type === 'Link' ? 'a hard link' : 'a symlink';
      const target = entry.linkpath ?? '';
      const outside = `is ${what} to "${target}", outside the destination`;
      if (target === '' ) return `is ${what} without a target`;
      if (isAbsolute(target)) return outside;
      // a symlink's target is relative to its own directory, a hard link's to the archive root
      const from = entry.type === 'Link' ? [] : segments.slice(0, -1);
      const r = linkEscapes(from, target, symlinks);
      if (r === 'escapes') return outside;
      if (r) return `is ${what} to "${target}", through the symlink "${r.through}"`;
      return undefined;
    }
    case 'CharacterDevice':
    case 'BlockDevice':
      return 'is a device file';
    case 'FIFO':
      return 'is a named pipe (FIFO)';
    default:
      return `has an unsupported type (${entry.type})`;
  }
}

/** Whether a file name is a zstd-compressed tarball (`.tar.zst`, `.tzst`). */
export function isTarZst(name: string): boolean {
  return /\.(tar\.zst|tzst)$/i.test(name);
}

function readFailure(file: string, err: unknown): TaskError {
  const e = err as { code?: string; message?: string };
  const detail =
    e.code === 'TAR_BAD_ARCHIVE' ? `not a ${isTarZst(file) ? '.tar.zst' : '.tar.gz'} archive` : e.code === 'ZSTD_BAD' ? e.message ?? 'not a zstd stream' : e.message ?? String(err);
  return new TaskError(fail.badArchive(posix.basename(file), detail));
}

/**
 * Judge every entry against all of the archive's symlinks: the first unsafe one is refused
 * (unsafe-archive); else the regular files with their modes, and the symlinks.
 */
function judgeAll(all: EntryInfo[]): { files: Map<string, number>; symlinks: Set<string> } {
  const symlinks = new Set<string>();
  for (const e of all) if (e.type === 'SymbolicLink' && !isAbsolute(e.path)) symlinks.add(normalise(e.path));
  const files = new Map<string, number>();
  for (const e of all) {
    const why = checkEntry(e, symlinks);
    if (why) throw new TaskError(fail.unsafeArchive(e.path, why));
    if (REGULAR.has(e.type)) files.set(normalise(e.path), e.mode ?? 0o644);
  }
  return { files, symlinks };
}

/**
 * List the archive and check every entry. Throws `unsafe-archive` for the first unsafe entry;
 * nothing is written.
 */
export async function scanArchive(file: string): Promise<ArchiveListing> {
  const { list } = await import('tar');
  const all: EntryInfo[] = [];
  try {
    await list({
      file,
      strict: true,
      // judging happens below, once every symlink is known; returning false skips the body
      filter: (_path, entry) => {
        const e = entry as unknown as EntryInfo;
        all.push({ path: e.path, type: e.type, linkpath: e.linkpath, mode: e.mode });
        return false;
      },
    });
  } catch (err) {
    throw readFailure(file, err);
  }
  const { files, symlinks } = judgeAll(all);
  if (all.length === 0) throw readFailure(file, new Error('the archive is empty'));
  return { files, symlinks, entries: all.length };
}

/**
 * Extract into `dir` (which should be empty and on the same filesystem as the destination),
 * re-checking every entry; any unsafe entry or tar warning fails the whole extraction (the
 * caller removes `dir`).
 */
export async function extractArchive(file: string, dir: string, listing: ArchiveListing): Promise<void> {
  const { extract } = await import('tar');
  let refused: TaskError | undefined;
  try {
    await extract({
      file,
      cwd: dir,
      strict: true,
      preservePaths: false,
      preserveOwner: false,
      filter: (_path, entry) => {
        const e = entry as unknown as EntryInfo;
        const why = checkEntry(e, listing.symlinks);
        if (why) {
          refused ??= new TaskError(fail.unsafeArchive(e.path, why));
          return false;
        }
        return true;
      },
    });
  } catch (err) {
    throw refused ?? readFailure(file, err);
  }
  if (refused) throw refused;
}

/** What a streaming extraction found: the listing, plus the sha256 of every file as it was written. */
export interface StreamedListing extends ArchiveListing {
  /** normalised path -> sha256 of the bytes written to it (the last entry of a path wins) */
  hashes: Map<string, string>;
}

export interface ZstExtractor {
  /**
   * Where the compressed bytes go. It applies the decoder's and the unpacker's backpressure; once
   * the extraction has failed it keeps accepting (and dropping) bytes, so the download goes on to
   * its end and its sha256 decides what the failure was (a bad archive, or the wrong bytes).
   */
  sink: Writable;
  /** Once the sink has finished: the listing, or the archive's failure (unsafe-archive, bad-archive). */
  finish(): Promise<StreamedListing>;
  /** Stop at once (an aborted or failed download): the decoder is killed, the unpacker ended. */
  abort(): void;
}

/**
 * Extract a `.tar.zst` into `dir` as its bytes arrive: compressed bytes -> the zstd decoder ->
 * tar's unpacker, in one pass (decompressing twice, once to list and once to extract, would double
 * the slowest part of installing a 1 GB archive; and nothing of it is held in memory or written to
 * disk compressed). Each entry is judged as it arrives against the symlinks seen so far, so nothing
 * is ever written through a link; once the archive has ended, every entry is judged again against
 * all of its symlinks, and a late symlink that makes an earlier entry unsafe rejects the whole
 * archive. `dir` must be a private temp dir the caller removes on any failure (a wrong sha256
 * included), so nothing of a refused archive is ever installed.
 */
export async function zstExtractor(dir: string, decoder: ZstdDecoder, name: string): Promise<ZstExtractor> {
  const { Unpack } = await import('tar');
  const all: EntryInfo[] = [];
  const seen = new Set<string>();
  const hashes = new Map<string, string>();
  let refused: TaskError | undefined;
  const unpack = new Unpack({
    cwd: dir,
    strict: true,
    preservePaths: false,
    preserveOwner: false,
    filter: (_path, entry) => {
      const e = entry as unknown as EntryInfo;
      const info: EntryInfo = { path: e.path, type: e.type, linkpath: e.linkpath, mode: e.mode };
      all.push(info);
      const why = refused ? 'after an unsafe entry' : checkEntry(info, seen);
      if (why) {
        if (!refused) {
          refused = new TaskError(fail.unsafeArchive(info.path, why));
          // refused whole: stop decoding (not from inside the unpacker's own write)
          queueMicrotask(() => stop(refused));
        }
        return false;
      }
      if (info.type === 'SymbolicLink') seen.add(normalise(info.path));
      return true;
    },
    // every file's sha256 while it is written (the install marker needs them; reading the tree
    // back to hash it would cost as much again as extracting it)
    transform: (entry) => {
      const e = entry as unknown as EntryInfo;
      if (!REGULAR.has(e.type)) return undefined;
      const path = normalise(e.path);
      const h = createHash('sha256');
      return new Transform({
        transform(chunk: Buffer, _enc, cb) {
          h.update(chunk);
          cb(null, chunk);
        },
        flush(cb) {
          hashes.set(path, h.digest('hex'));
          cb();
        },
      }) as unknown as ReadEntry;
    },
  });
  let failed: unknown;
  let ended = false;
  const dec = await openDecoder(decoder);
  const closed = new Promise<void>((resolve) => unpack.on('close', () => resolve()));
  /** a write waiting for the decoder's drain; released when the extraction stops */
  let waiting: (() => void) | undefined;
  const stop = (err: unknown): void => {
    failed ??= err;
    dec.destroy();
    if (!ended) unpack.end();
    ended = true;
    waiting?.();
  };
  // the first complaint decides (the archive is refused); stop feeding it and let it finish the
  // files it is writing (the caller removes dir only once finish() has settled)
  unpack.on('error', stop);
  dec.on('error', stop);
  dec.on('end', () => {
    ended = true;
  });
  dec.pipe(unpack);
  const stopped = (): boolean => failed !== undefined || refused !== undefined;
  const sink = new Writable({
    highWaterMark: 1 << 20,
    write(chunk: Buffer, _enc, cb) {
      if (stopped()) return cb();
      // (the decoder may push synchronously, so the unpacker can have failed inside this write)
      if (dec.write(chunk) || stopped()) return cb();
      const release = (): void => {
        if (waiting !== release) return;
        waiting = undefined;
        dec.off('drain', release);
        cb();
      };
      waiting = release;
      dec.once('drain', release);
    },
    final(cb) {
      if (!ended && failed === undefined) dec.end();
      void closed.then(() => cb());
    },
  });
  return {
    sink,
    abort: () => stop(new Error('aborted')),
    async finish() {
      await closed;
      // Judged against every symlink, the first unsafe entry is the one scanArchive would name.
      const { files, symlinks } = judgeAll(all);
      if (refused) throw refused;
      if (failed !== undefined) throw readFailure(name, failed);
      if (all.length === 0) throw readFailure(name, new Error('the archive is empty'));
      return { files, symlinks, entries: all.length, hashes };
    },
  };
}

/** Extract a `.tar.zst` file into `dir` (zstExtractor, fed from the file). */
export async function extractZstArchive(file: string, dir: string, decoder: ZstdDecoder, name = posix.basename(file)): Promise<StreamedListing> {
  const x = await zstExtractor(dir, decoder, name);
  await new Promise<void>((resolve) => {
    const source = createReadStream(file, { highWaterMark: 1 << 20 });
    source.on('error', (err) => {
      x.abort();
      x.sink.destroy(err);
      resolve();
    });
    x.sink.on('finish', () => resolve());
    x.sink.on('error', () => resolve());
    source.pipe(x.sink);
  });
  return x.finish();
}
