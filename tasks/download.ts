/**
 * `uses: download` — fetch a URL, verify its sha256 (inline or from a checksums file) while it
 * streams, extract a .tar.gz safely, and install into `dest` atomically. Satisfied, without any
 * network, when `dest` already holds a verified install of the same URL.
 *
 *   with: { url, sha256 | checksums_url, dest, extract, mode }
 *
 * The idle timeout (connect, headers, gap between body bytes) is 30 s; `STIGMER_DOWNLOAD_TIMEOUT`
 * (a duration like "2m", from the task's env or stigmer's) changes it. The task's own `timeout`
 * bounds the whole download through the abort signal.
 *
 * No undo: downloads are a cache. `stigmer down` stops what was started but keeps installed
 * binaries, so the next `up` does not fetch them again.
 */
import { isAbsolute, join } from 'node:path';
import { parseDuration } from '../src/util/duration.js';
import { formatBytes } from '../src/util/format.js';
import { fail } from '../src/model/failure.js';
import { installDownload } from '../src/process/download/install.js';
import type { DownloadParams } from '../src/process/download/install.js';
import { TaskError } from '../src/model/kind.js';
import type { TaskContext, TaskKind, TaskResult } from '../src/model/kind.js';

export interface DownloadWith {
  url: string;
  sha256?: string;
  checksums_url?: string;
  /** relative to the tasks file's directory */
  dest: string;
  /** a boolean, or "true"/"false" when it came from an expression */
  extract?: boolean | string;
  mode?: string | number;
}

function parseExtract(value: boolean | string | undefined): boolean | undefined {
  if (value === undefined || typeof value === 'boolean') return value;
  const v = value.trim().toLowerCase();
  if (v === '') return undefined;
  if (v === 'true') return true;
  if (v === 'false') return false;
  throw new TaskError(fail.invalidInput(`Expected extract to be true or false, got "${value}"`));
}

function idleTimeout(ctx: TaskContext<DownloadWith>): number | undefined {
  const raw = ctx.env['STIGMER_DOWNLOAD_TIMEOUT'] ?? process.env['STIGMER_DOWNLOAD_TIMEOUT'];
  if (raw === undefined || raw === '') return undefined;
  try {
    return parseDuration(raw, 'STIGMER_DOWNLOAD_TIMEOUT');
  } catch (err) {
    throw new TaskError(fail.invalidInput((err as Error).message));
  }
}

/** The kind's `with` as installDownload's parameters (dest resolved against the tasks file). */
export function downloadParams(ctx: TaskContext<DownloadWith>): DownloadParams {
  const w = ctx.with;
  return {
    url: w.url,
    dest: isAbsolute(w.dest) ? w.dest : join(ctx.baseDir, w.dest),
    sha256: w.sha256,
    checksumsUrl: w.checksums_url,
    extract: parseExtract(w.extract),
    mode: w.mode,
    idleTimeoutMs: idleTimeout(ctx),
  };
}

const download: TaskKind<DownloadWith> = {
  name: 'download',
  mode: 'oneshot',
  async run(ctx): Promise<TaskResult> {
    const { outputs, satisfied } = await installDownload(downloadParams(ctx), {
      signal: ctx.signal,
      force: ctx.force,
      onProgress: (p) => ctx.progress(p),
      onOutput: (line) => ctx.output(line),
    });
    const summary = satisfied
      ? `already installed: ${outputs.path}`
      : `installed ${outputs.path} (${formatBytes(outputs.bytes)} downloaded)`;
    return { outputs: { ...outputs }, satisfied, summary };
  },
};

export default download;
