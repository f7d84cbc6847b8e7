/**
 * The parameters of a download, checked and normalised: the `download` kind's `with` and
 * `stigmer init` both come through here.
 */
import { dirname, resolve } from 'node:path';
import { fail } from '../../model/failure.js';
import { registerSecret } from '../../util/mask.js';
import { TaskError } from '../../model/kind.js';
import { isSha256 } from './checksums.js';

export interface DownloadParams {
  /** http(s) URL of the file or .tar.gz */
  url: string;
  /** directory to install into (resolved against the working directory when relative) */
  dest: string;
  /** expected sha256 of the downloaded bytes (64 hex digits); wins over checksumsUrl */
  sha256?: string | undefined;
  /** URL of a `<sha256>  <filename>` checksums file listing the URL's last path segment */
  checksumsUrl?: string | undefined;
  /** extract a .tar.gz or .tar.zst into dest (default: whether the URL ends in .tar.gz, .tgz, .tar.zst or .tzst) */
  extract?: boolean | undefined;
  /** mode of every installed file, e.g. "0755" or 0o755 (default: 0755 for a single file; for an archive, 0755 where the archive had +x, else 0644) */
  mode?: string | number | undefined;
  /** idle timeout for connect, headers and body (default 30 s) */
  idleTimeoutMs?: number | undefined;
}

/** The URL's last path segment (what checksums files list). */
export function urlFileName(url: string): string {
  const last = new URL(url).pathname.split('/').pop() ?? '';
  try {
    return decodeURIComponent(last);
  } catch {
    return last;
  }
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

/** DownloadParams after the checks: dest absolute, sha256 lowercase, mode a number. */
export interface Resolved {
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

export function resolveParams(p: DownloadParams): Resolved {
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
    extract: p.extract ?? /\.(tar\.gz|tgz|tar\.zst|tzst)$/i.test(filename),
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

