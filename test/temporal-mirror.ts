/**
 * A fake Temporal CLI release mirror: the real layout ({base}/v{V}/temporal_cli_{V}_{os}_{arch}.tar.gz
 * and {base}/v{V}/checksums.txt in goreleaser's format), each archive holding the stand-in
 * `temporal` (test/fixtures/temporal.mjs, mode 0755) and a LICENSE at its root. Point stigmer at it
 * with STIGMER_TEMPORAL_DOWNLOAD_URL=<mirror.url>.
 */
import { readFileSync } from 'node:fs';
import { buildTarGz, checksumsFile, startMirror, type Mirror, type Route } from './mirror.js';
import { fixture } from './helpers.js';

export interface TemporalMirrorOptions {
  /** releases to serve (default ['1.8.2']) */
  versions?: string[];
  /** checksums.txt lists a wrong sha256 for every archive */
  corrupt?: boolean;
  /** archives are cut off after this many bytes (the full Content-Length is announced) */
  truncateAt?: number;
  /** answer archive requests with a 302 to /assets/<name>, as GitHub does */
  redirect?: boolean;
}

export interface TemporalMirror extends Mirror {
  /** archive name for this machine and the first version, e.g. temporal_cli_1.8.2_linux_amd64.tar.gz */
  archiveName: string;
  /** request path of that archive */
  archivePath: string;
}

const PLATFORMS = ['darwin_amd64', 'darwin_arm64', 'linux_amd64', 'linux_arm64', 'windows_amd64', 'windows_arm64'];

/** The stand-in `temporal` script for a version. */
export function standInScript(version: string): string {
  return readFileSync(fixture('temporal.mjs'), 'utf8').replace(/^const VERSION = '[^']*';$/m, `const VERSION = '${version}';`);
}

export function hostArchiveName(version: string): string {
  const os = process.platform === 'darwin' ? 'darwin' : 'linux';
  const arch = process.arch === 'arm64' ? 'arm64' : 'amd64';
  return `temporal_cli_${version}_${os}_${arch}.tar.gz`;
}

export async function startTemporalMirror(opts: TemporalMirrorOptions = {}): Promise<TemporalMirror> {
  const versions = opts.versions ?? ['1.8.2'];
  const routes: Record<string, Route> = {};
  for (const version of versions) {
    const archive = await buildTarGz([
      { path: 'LICENSE', content: 'MIT License (stand-in for the Temporal CLI license)\n' },
      { path: 'temporal', content: standInScript(version), mode: 0o755 },
    ]);
    const archives: Record<string, Buffer> = {};
    for (const p of PLATFORMS) archives[`temporal_cli_${version}_${p}.tar.gz`] = archive;
    // goreleaser also lists the Windows .zip files
    archives[`temporal_cli_${version}_windows_amd64.zip`] = Buffer.from('PK stand-in');
    archives[`temporal_cli_${version}_windows_arm64.zip`] = Buffer.from('PK stand-in');
    let sums = checksumsFile(archives);
    if (opts.corrupt) sums = sums.replace(/^[0-9a-f]{64}/gm, 'f'.repeat(64));
    routes[`/v${version}/checksums.txt`] = sums;
    for (const [name, body] of Object.entries(archives)) {
      const spec = opts.truncateAt !== undefined ? { body, truncateAt: opts.truncateAt } : { body };
      if (opts.redirect) {
        routes[`/v${version}/${name}`] = { redirectTo: `/assets/${name}` };
        routes[`/assets/${name}`] = spec;
      } else routes[`/v${version}/${name}`] = spec;
    }
  }
  const mirror = await startMirror(routes);
  const archiveName = hostArchiveName(versions[0]!);
  return Object.assign(mirror, { archiveName, archivePath: `/v${versions[0]}/${archiveName}` });
}
