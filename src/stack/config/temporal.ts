/**
 * Where the Temporal CLI release for this machine lives and where it is installed:
 *   {base}/v{V}/temporal_cli_{V}_{os}_{arch}.tar.gz   and   {base}/v{V}/checksums.txt
 * installed (verified, atomically) as <home>/bin/temporal-<V>/temporal.
 */
import { accessSync, constants, existsSync, statSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { UserError } from '../../util/errors.js';
import type { StigmerConfig } from './types.js';
import { onPath } from '../../util/on-path.js';

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

/** Which Temporal CLI the managed server runs, and where it came from. */
export interface TemporalCli {
  bin: string;
  /** the version it reports (`temporal --version`), or the release's for a download */
  version: string;
  /** configured: backend.local.temporal.bin; path: `temporal` on PATH; download: stigmer's own install */
  source: 'configured' | 'path' | 'download';
}

/**
 * The environment without Temporal's own client variables (TEMPORAL_ADDRESS, TEMPORAL_PROFILE,
 * TEMPORAL_CONFIG_FILE, TEMPORAL_API_KEY, TEMPORAL_TLS*, ...): whenever stigmer runs the Temporal
 * CLI, the user's own profiles and settings must not change what it does.
 */
export function withoutTemporalEnv(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(env).filter(([k]) => !k.startsWith('TEMPORAL_')));
}

/** `temporal version 1.8.2 (Server ...)` -> 1.8.2, when `bin` runs and says so. */
function reportedVersion(bin: string): { version?: string; error?: string } {
  // node:child_process on demand: `local status` loads this module and never runs it (~3 ms to load)
  const r = process.getBuiltinModule('node:child_process').spawnSync(bin, ['--version'], { encoding: 'utf8', timeout: 5000, stdio: ['ignore', 'pipe', 'pipe'], env: withoutTemporalEnv(process.env) });
  if (r.error) return { error: (r.error as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : r.error.message };
  const m = /temporal version (\d+\.\d+\.\d+\S*)/.exec(r.stdout ?? '');
  if (r.status !== 0 || !m) return { error: `\`${bin} --version\` answered ${r.status === 0 ? JSON.stringify((r.stdout ?? '').trim().slice(0, 80)) : `with exit code ${r.status}`}` };
  return { version: m[1]! };
}


/**
 * The CLI to run: `backend.local.temporal.bin` when set (it must answer `--version`); else
 * stigmer's own install when it is there; else a `temporal` on PATH that answers `--version`;
 * else the release, to be downloaded. Throws UserError for a configured CLI that does not run.
 */
export function chooseTemporalCli(config: Pick<StigmerConfig, 'backend'>, release: TemporalRelease, env: Record<string, string | undefined> = process.env): TemporalCli {
  const own = config.backend.local.temporal.bin;
  if (own) {
    const r = reportedVersion(own);
    if (!r.version) {
      throw new UserError(`backend.local.temporal.bin (or STIGMER_TEMPORAL_BIN): ${own} is not a working Temporal CLI: ${r.error}\nPoint it at a \`temporal\` executable, or unset it to let stigmer download one: stigmer config unset backend.local.temporal.bin`);
    }
    return { bin: own, version: r.version, source: 'configured' };
  }
  if (!existsSync(release.bin)) {
    const found = onPath('temporal', env['PATH']);
    const version = found ? reportedVersion(found).version : undefined;
    if (found && version) return { bin: found, version, source: 'path' };
  }
  return { bin: release.bin, version: release.version, source: 'download' };
}
