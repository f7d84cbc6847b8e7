/**
 * Where the Ollama release for this machine lives and where it is installed (contracts.md section 8):
 *   {base}/v{V}/ollama-linux-{amd64,arm64}.tar.zst   (.tgz before 0.14.0)   bin/ollama + lib/ollama/
 *   {base}/v{V}/ollama-darwin.tgz                                           ollama (flat, universal)
 *   {base}/v{V}/sha256sum.txt                                               `<sha256>  ./<asset>`
 * installed (verified, atomically, keeping the archive's layout) under <home>/bin/ollama-<V>/.
 */
import { join } from 'node:path';
import type { StigmerConfig } from './types.js';

export interface OllamaRelease {
  version: string;
  /** the asset's file name, as sha256sum.txt lists it (without the ./) */
  asset: string;
  archiveUrl: string;
  checksumsUrl: string;
  /** <home>/bin/ollama-<V> */
  installDir: string;
  /** the executable inside it */
  bin: string;
}

/** 0.13.5 < 0.14.0: the first Linux release packed as .tar.zst is 0.14.0. */
function zstdEra(version: string): boolean {
  const [major = 0, minor = 0] = version.split(/[.-]/).map(Number);
  return major > 0 || minor >= 14;
}

/** The release for `platform`/`arch`, or undefined where Ollama ships none stigmer can run. */
export function ollamaRelease(config: Pick<StigmerConfig, 'home' | 'backend'>, platform: string = process.platform, arch: string = process.arch): OllamaRelease | undefined {
  const { version, download_url: base } = config.backend.local.llm.ollama;
  const installDir = join(config.home, 'bin', `ollama-${version}`);
  let asset: string;
  let bin: string;
  if (platform === 'linux' && (arch === 'x64' || arch === 'arm64')) {
    asset = `ollama-linux-${arch === 'x64' ? 'amd64' : 'arm64'}.${zstdEra(version) ? 'tar.zst' : 'tgz'}`;
    bin = join(installDir, 'bin', 'ollama');
  } else if (platform === 'darwin') {
    asset = 'ollama-darwin.tgz';
    bin = join(installDir, 'ollama');
  } else return undefined;
  return { version, asset, archiveUrl: `${base}/v${version}/${asset}`, checksumsUrl: `${base}/v${version}/sha256sum.txt`, installDir, bin };
}
