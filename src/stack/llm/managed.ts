/**
 * Which Ollama the stack uses (backend.local.llm.ollama.managed):
 *
 *   auto   one answering at base_url (GET /api/version) is used as it is: external, never started,
 *          stopped or reconfigured; else an `ollama` on PATH, started by stigmer; else the
 *          release, downloaded, verified and started by stigmer
 *   true   stigmer always runs its own `ollama serve` on base_url's port (127.0.0.1 only)
 *   false  never starts one
 *
 * An Ollama stigmer itself started earlier (its `ollama serve` carries STIGMER_MANAGED_BY=<home> in
 * its environment) is not mistaken for the user's own: it stays managed, and the process task
 * reuses it.
 */
import { accessSync, constants, readFileSync, statSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { inspectPort } from '../../process/proc.js';
import { onPath } from '../../util/on-path.js';

export type OllamaSource = 'external' | 'path' | 'download' | 'off' | 'none';

/** resolve-config's `ollama` outputs (src/stack/resolve.ts). */
export interface OllamaValues {
  used: boolean;
  managed: 'auto' | 'true' | 'false';
  base_url: string;
  model: string;
  local: boolean;
  port: number | null;
  host: string | null;
  version: string;
  archive_url: string | null;
  checksums_url: string | null;
  install_dir: string | null;
  install_bin: string | null;
  models_dir: string;
}

export interface OllamaChoice {
  source: OllamaSource;
  /** download-ollama runs */
  download: boolean;
  /** start-ollama runs */
  start: boolean;
  /** pull-model runs */
  pull: boolean;
  /** the `ollama` stigmer runs (null when it runs none) */
  bin: string | null;
  /** the version an external Ollama reported */
  external_version: string | null;
  /** one line for the summary and `local status` */
  description: string;
}

/** GET <base>/api/version: the version when an Ollama answers 200 with one, else undefined. */
export async function ollamaVersion(baseUrl: string, timeoutMs = 1500, signal?: AbortSignal): Promise<string | undefined> {
  let url: URL;
  try {
    url = new URL(`${baseUrl.replace(/\/+$/, '')}/api/version`);
  } catch {
    return undefined;
  }
  const { get } = url.protocol === 'https:' ? await import('node:https') : await import('node:http');
  return new Promise((resolve) => {
    const req = get(url, { agent: false, timeout: timeoutMs, headers: { accept: 'application/json' } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => {
        if (body.length < 4096) body += d;
      });
      res.once('end', () => {
        if (res.statusCode !== 200) return resolve(undefined);
        try {
          const v = (JSON.parse(body) as { version?: unknown }).version;
          resolve(typeof v === 'string' ? v : undefined);
        } catch {
          resolve(undefined);
        }
      });
      res.once('error', () => resolve(undefined));
    });
    req.once('timeout', () => req.destroy());
    req.once('error', () => resolve(undefined));
    const onAbort = (): void => {
      req.destroy();
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    req.once('close', () => signal?.removeEventListener('abort', onAbort));
  });
}


/** Whether the process listening on `port` is an `ollama serve` stigmer started for `home`. */
export function heldByUs(port: number, home: string): boolean {
  const holder = inspectPort(port).holder;
  if (!holder) return false;
  try {
    return readFileSync(`/proc/${holder.pid}/environ`, 'latin1').split('\0').includes(`STIGMER_MANAGED_BY=${home}`);
  } catch {
    return false;
  }
}

export interface FindOptions {
  env: Record<string, string | undefined>;
  home: string;
  /** false: --no-pull */
  pull: boolean;
  signal?: AbortSignal;
}

/** Decide which Ollama the stack uses; only `ollamaVersion` touches the network (loopback, usually). */
export async function findOllama(o: OllamaValues, opts: FindOptions): Promise<OllamaChoice> {
  const none = (source: OllamaSource, description: string, pull = false): OllamaChoice => ({ source, download: false, start: false, pull, bin: null, external_version: null, description });
  if (!o.used) return none('none', 'not used (the provider is not ollama)');
  if (o.managed === 'false') return none('off', `not managed (backend.local.llm.ollama.managed: false): using ${o.base_url} as it is`);
  const answering = await ollamaVersion(o.base_url, 1500, opts.signal);
  const ours = answering !== undefined && o.local && o.port !== null && heldByUs(o.port, opts.home);
  if (answering !== undefined && !ours && (o.managed === 'auto' || !o.local)) {
    return { ...none('external', `your Ollama ${answering} at ${o.base_url} (external: stigmer never starts or stops it)`, opts.pull), external_version: answering };
  }
  if (!o.local) {
    return none('external', `${o.base_url} is not a local http://localhost or 127.0.0.1 URL: stigmer runs no Ollama for it`, opts.pull);
  }
  const found = onPath('ollama', opts.env['PATH']);
  if (found) {
    return { source: 'path', download: false, start: true, pull: opts.pull, bin: found, external_version: null, description: `${found} (from PATH), run by stigmer on ${o.host}` };
  }
  if (!o.install_bin) {
    return none('off', `Ollama ships no release stigmer can run on ${process.platform}/${process.arch}: install it yourself, or use a hosted provider`);
  }
  return {
    source: 'download',
    download: true,
    start: true,
    pull: opts.pull,
    bin: o.install_bin,
    external_version: null,
    description: `Ollama ${o.version} installed by stigmer in ${o.install_dir}, run on ${o.host}`,
  };
}
