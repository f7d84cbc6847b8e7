/**
 * A fake Ollama release mirror (contracts.md section 8): {base}/v{V}/ollama-linux-amd64.tar.zst,
 * ollama-linux-arm64.tar.zst (bin/ollama + lib/ollama/...), ollama-darwin.tgz (flat), and
 * {base}/v{V}/sha256sum.txt in coreutils' format with ./ names. The archives hold the stand-in
 * test/fixtures/ollama.mjs. Point stigmer at it with STIGMER_OLLAMA_DOWNLOAD_URL=<mirror.url>.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { buildTarGz, buildTarZst, sha256hex, startMirror, type ArchiveEntry, type Mirror, type Route } from './mirror.js';
import { fixture } from './helpers.js';

export interface OllamaMirrorOptions {
  version?: string;
  /** sha256sum.txt lists a wrong sha256 for every asset */
  corrupt?: boolean;
  /** assets are cut off after this many bytes (the full Content-Length is announced) */
  truncateAt?: number;
  /** entries added to every archive (hostile ones) */
  extra?: ArchiveEntry[];
  /** bytes of filler library in the Linux archives (default 64 KiB) */
  libBytes?: number;
}

export interface OllamaMirror extends Mirror {
  /** this machine's asset, e.g. ollama-linux-amd64.tar.zst */
  asset: string;
  assetPath: string;
}

export function standInOllama(version: string): string {
  return readFileSync(fixture('ollama.mjs'), 'utf8').replaceAll('__STANDIN_VERSION__', version);
}

export function hostAsset(): string {
  if (process.platform === 'darwin') return 'ollama-darwin.tgz';
  return `ollama-linux-${process.arch === 'arm64' ? 'arm64' : 'amd64'}.tar.zst`;
}

export async function startOllamaMirror(opts: OllamaMirrorOptions = {}): Promise<OllamaMirror> {
  const version = opts.version ?? '0.32.15';
  const script = standInOllama(version);
  const lib = randomBytes(opts.libBytes ?? 64 * 1024);
  const linux: ArchiveEntry[] = [
    { path: 'bin', type: 'dir' },
    { path: 'bin/ollama', content: script, mode: 0o755 },
    { path: 'lib/ollama', type: 'dir' },
    { path: 'lib/ollama/libggml-base.so', content: lib },
    { path: 'lib/ollama/cuda_v12/libcudart.so.12.8.90', content: 'cuda stand-in' },
    { path: 'lib/ollama/cuda_v12/libcudart.so.12', type: 'symlink', linkpath: 'libcudart.so.12.8.90' },
    ...(opts.extra ?? []),
  ];
  const zst = buildTarZst(linux);
  const assets: Record<string, Buffer> = {
    'ollama-linux-amd64.tar.zst': zst,
    'ollama-linux-arm64.tar.zst': zst,
    'ollama-darwin.tgz': await buildTarGz([{ path: 'ollama', content: script, mode: 0o755 }, { path: 'libggml-base.dylib', content: lib }, ...(opts.extra ?? [])]),
  };
  let sums = Object.keys(assets)
    .sort()
    .map((name) => `${sha256hex(assets[name]!)}  ./${name}\n`)
    .join('');
  if (opts.corrupt) sums = sums.replace(/^[0-9a-f]{64}/gm, 'e'.repeat(64));
  const routes: Record<string, Route> = { [`/v${version}/sha256sum.txt`]: sums };
  for (const [name, body] of Object.entries(assets)) routes[`/v${version}/${name}`] = opts.truncateAt !== undefined ? { body, truncateAt: opts.truncateAt } : body;
  const mirror = await startMirror(routes);
  const asset = hostAsset();
  return Object.assign(mirror, { asset, assetPath: `/v${version}/${asset}` });
}
