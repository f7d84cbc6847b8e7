/**
 * A local download mirror for tests: archives built in the test (good and hostile ones), served
 * by a node:http server on 127.0.0.1 with redirects, 404s, truncated and slow bodies, and the
 * goreleaser `checksums.txt` format. Nothing here reaches beyond loopback.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { gzipSync } from 'node:zlib';
import { Header } from 'tar';
import { cleanupHome, tempHome } from './helpers.js';

export interface ArchiveEntry {
  path: string;
  /** file content (type 'file'); ignored for other types */
  content?: string | Buffer;
  /** permission bits, e.g. 0o755; default 0o644 for files, 0o755 for dirs, 0o777 for links */
  mode?: number;
  type?: 'file' | 'dir' | 'symlink' | 'link' | 'chardev' | 'fifo';
  /** target of a symlink (relative to the entry's directory) or hard link (relative to the root) */
  linkpath?: string;
}

const tarTypes = {
  file: 'File',
  dir: 'Directory',
  symlink: 'SymbolicLink',
  link: 'Link',
  chardev: 'CharacterDevice',
  fifo: 'FIFO',
} as const;

const BLOCK = 512;

/**
 * A .tar.gz holding exactly the given entries, in order. The headers are encoded with tar's own
 * `Header` (tar's packer reads from disk and refuses the hostile entries the tests need: absolute
 * paths, `..`, escaping links), so any entry can be produced verbatim.
 */
export async function buildTarGz(entries: ArchiveEntry[]): Promise<Buffer> {
  return gzipSync(buildTar(entries));
}

/**
 * A .tar.zst of the given entries, compressed by the `zstd` program (real compressed blocks, as
 * Ollama's Linux releases have them).
 */
export function buildTarZst(entries: ArchiveEntry[], level = 3): Buffer {
  return zstdCompress(buildTar(entries), level);
}

/** `zstd -<level>` of `data` (multi-threaded, as release builds are). */
export function zstdCompress(data: Buffer, level = 3): Buffer {
  const r = spawnSync('zstd', [`-${level}`, '-T0', '-q', '-c'], { input: data, maxBuffer: 1 << 30 });
  if (r.error || r.status !== 0) throw new Error(`zstd failed: ${r.error?.message ?? r.stderr.toString()}`);
  return r.stdout;
}

/** An uncompressed tar of exactly the given entries. */
export function buildTar(entries: ArchiveEntry[]): Buffer {
  const blocks: Buffer[] = [];
  const mtime = new Date('2026-01-01T00:00:00Z');
  for (const e of entries) {
    const type = e.type ?? 'file';
    const body = type === 'file' ? Buffer.from(e.content ?? '') : Buffer.alloc(0);
    const header = new Header({
      path: type === 'dir' && !e.path.endsWith('/') ? `${e.path}/` : e.path,
      mode: e.mode ?? (type === 'file' ? 0o644 : type === 'dir' ? 0o755 : 0o777),
      uid: 0,
      gid: 0,
      size: body.length,
      mtime,
      type: tarTypes[type],
      ...(e.linkpath !== undefined ? { linkpath: e.linkpath } : {}),
      uname: '',
      gname: '',
    });
    const block = Buffer.alloc(BLOCK);
    if (header.encode(block, 0)) throw new Error(`test archive entry needs a pax header (path too long?): ${e.path}`);
    blocks.push(block, body);
    const pad = (BLOCK - (body.length % BLOCK)) % BLOCK;
    if (pad) blocks.push(Buffer.alloc(pad));
  }
  blocks.push(Buffer.alloc(BLOCK * 2));
  return Buffer.concat(blocks);
}

export function sha256hex(buf: Buffer | string): string {
  return createHash('sha256').update(buf).digest('hex');
}

/** A checksums file in goreleaser's format: `<sha256>  <name>` lines, sorted by name. */
export function checksumsFile(entries: Record<string, Buffer>): string {
  return Object.keys(entries)
    .sort()
    .map((name) => `${sha256hex(entries[name]!)}  ${name}\n`)
    .join('');
}

export interface RouteSpec {
  /** HTTP status (default 200, or 302 with redirectTo) */
  status?: number;
  body?: Buffer | string;
  headers?: Record<string, string>;
  /** announce the full Content-Length, send only this many bytes, then cut the connection */
  truncateAt?: number;
  /** answer 302 with this Location (a path on this mirror or a full URL) */
  redirectTo?: string;
  /** send the body in `chunks` pieces with this pause before each piece after the first */
  delayMs?: number;
  /** how many pieces to send the body in (default 1, or 8 when delayMs is set) */
  chunks?: number;
  /** send the headers and the first piece, then nothing more (until the mirror closes) */
  stall?: boolean;
}

export type Route = Buffer | string | RouteSpec;

export interface Mirror {
  /** base URL without a trailing slash, e.g. http://127.0.0.1:41234 */
  url: string;
  /** the paths requested so far, in order */
  requests: string[];
  /** routes can be changed while the mirror runs */
  routes: Record<string, Route>;
  close(): Promise<void>;
}

function toSpec(route: Route): RouteSpec {
  return Buffer.isBuffer(route) || typeof route === 'string' ? { body: route } : route;
}

/** Serve `routes` (path -> content) on 127.0.0.1 at a random port; anything else is a 404. */
export async function startMirror(routes: Record<string, Route>): Promise<Mirror> {
  const requests: string[] = [];
  const sockets = new Set<Socket>();
  const timers = new Set<NodeJS.Timeout>();
  const mirror = { routes } as Mirror;
  const later = (ms: number, fn: () => void): void => {
    const t = setTimeout(() => {
      timers.delete(t);
      fn();
    }, ms);
    timers.add(t);
  };

  const server = http.createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://mirror').pathname;
    requests.push(path);
    const route = mirror.routes[path];
    if (route === undefined) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('Not Found\n');
      return;
    }
    const spec = toSpec(route);
    if (spec.redirectTo !== undefined) {
      res.writeHead(spec.status ?? 302, { location: spec.redirectTo, ...spec.headers }).end();
      return;
    }
    const body = Buffer.from(spec.body ?? '');
    res.writeHead(spec.status ?? 200, {
      'content-type': 'application/octet-stream',
      'content-length': String(body.length),
      ...spec.headers,
    });
    const sendable = spec.truncateAt !== undefined ? body.subarray(0, spec.truncateAt) : body;
    const count = Math.max(1, spec.chunks ?? (spec.delayMs || spec.stall ? 8 : 1));
    const size = Math.ceil(sendable.length / count) || 1;
    const pieces: Buffer[] = [];
    for (let i = 0; i < sendable.length; i += size) pieces.push(sendable.subarray(i, i + size));

    const finish = (): void => {
      if (spec.truncateAt !== undefined) {
        // flush what was written, then cut the connection before the announced length
        res.socket?.end(() => res.socket?.destroy());
        later(50, () => res.socket?.destroy());
      } else res.end();
    };
    const send = (i: number): void => {
      if (res.destroyed) return;
      if (i >= pieces.length) return finish();
      res.write(pieces[i]);
      if (spec.stall) return;
      if (spec.delayMs) later(spec.delayMs, () => send(i + 1));
      else send(i + 1);
    };
    send(0);
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((res, rej) => {
    server.once('error', rej);
    server.listen(0, '127.0.0.1', () => res());
  });
  const { port } = server.address() as AddressInfo;

  mirror.url = `http://127.0.0.1:${port}`;
  mirror.requests = requests;
  mirror.close = () =>
    new Promise<void>((res) => {
      for (const t of timers) clearTimeout(t);
      timers.clear();
      for (const s of sockets) s.destroy();
      server.close(() => res());
    });
  return mirror;
}

/** Run `fn` with a mirror of `routes` and a temp home; both are gone afterwards, whatever happened. */
export async function withMirror(routes: Record<string, Route>, fn: (m: Mirror, home: string) => Promise<void>): Promise<void> {
  const home = tempHome();
  const mirror = await startMirror(routes);
  try {
    await fn(mirror, home);
  } finally {
    await mirror.close();
    await cleanupHome(home);
  }
}
