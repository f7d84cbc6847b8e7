/**
 * Where the Temporal CLI release for this machine lives and where it is installed:
 *   {base}/v{V}/temporal_cli_{V}_{os}_{arch}.tar.gz   and   {base}/v{V}/checksums.txt
 * installed (verified, atomically) as <home>/bin/temporal-<V>/temporal.
 */
import { join } from 'node:path';
import { UserError } from '../../util/errors.js';
import type { StigmerConfig } from './types.js';

export interface TemporalRelease {
  version: string;
  archiveUrl: string;
  checksumsUrl: string;
  /** the archive's file name, as listed in checksums.txt */
  fileName: string;
  /** <home>/bin/temporal-<V> */
  installDir: string;
  /** <installDir>/temporal */
  bin: string;
}

const OS: Record<string, string> = { linux: 'linux', darwin: 'darwin' };
const ARCH: Record<string, string> = { x64: 'amd64', arm64: 'arm64' };

export function temporalRelease(
  config: Pick<StigmerConfig, 'home' | 'backend'>,
  platform: string = process.platform,
  arch: string = process.arch,
): TemporalRelease {
  const os = OS[platform];
  const cpu = ARCH[arch];
  if (!os || !cpu) {
    throw new UserError(
      `There is no Temporal CLI release stigmer can manage for ${platform}/${arch} (it manages linux and darwin on x64 and arm64).\n` +
        'Run a Temporal server yourself and point stigmer at it: stigmer config set backend.local.temporal.managed false; ' +
        'stigmer config set backend.local.temporal.address <host:port>',
    );
  }
  const { version, download_url: base } = config.backend.local.temporal;
  const fileName = `temporal_cli_${version}_${os}_${cpu}.tar.gz`;
  const installDir = join(config.home, 'bin', `temporal-${version}`);
  return {
    version,
    archiveUrl: `${base}/v${version}/${fileName}`,
    checksumsUrl: `${base}/v${version}/checksums.txt`,
    fileName,
    installDir,
    bin: join(installDir, 'temporal'),
  };
}
