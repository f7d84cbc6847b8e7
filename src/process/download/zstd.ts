/**
 * A streaming zstd decompressor. Node 20's `zlib` has no zstd (it arrived in Node 22.15), so the
 * bytes go through one of two decoders, both streaming (the Ollama archive for Linux is over 1 GB;
 * nothing here holds it in memory):
 *
 *   - the `zstd` program, when one is on PATH (the reference decoder, about ten times faster);
 *   - fzstd, a pure-JavaScript decoder from npm, everywhere else.
 *
 * `STIGMER_ZSTD=js` forces fzstd; `STIGMER_ZSTD=<path>` names the program.
 */
import { spawn } from 'node:child_process';
import { accessSync, constants, statSync } from 'node:fs';
import { delimiter, isAbsolute, join } from 'node:path';
import { Duplex, Transform } from 'node:stream';
import { onPath } from '../../util/on-path.js';

export interface ZstdDecoder {
  /** "zstd (/usr/bin/zstd)" or "fzstd (JavaScript)", for messages and the bench */
  name: string;
  stream(): Duplex;
}


/** fzstd behind a Transform: compressed bytes in, tar bytes out. */
export function jsDecoder(): ZstdDecoder {
  return {
    name: 'fzstd (JavaScript)',
    stream() {
      let decoder: import('fzstd').Decompress | undefined;
      const out = new Transform({
        transform(chunk: Buffer, _enc, cb) {
          try {
            decoder!.push(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.length));
            cb();
          } catch (err) {
            cb(zstdError(err));
          }
        },
        flush(cb) {
          try {
            decoder!.push(new Uint8Array(0), true);
            cb();
          } catch (err) {
            cb(zstdError(err));
          }
        },
      });
      return Object.assign(out, {
        async init(): Promise<void> {
          const { Decompress } = await import('fzstd');
          decoder = new Decompress((data) => {
            if (data.length > 0) out.push(Buffer.from(data.buffer, data.byteOffset, data.length));
          });
        },
      });
    },
  };
}

function zstdError(err: unknown): Error {
  const msg = err instanceof Error ? err.message : String(err);
  return Object.assign(new Error(`not a zstd stream, or a damaged one (${msg})`), { code: 'ZSTD_BAD' });
}

/**
 * The `zstd` program as a Duplex: bytes written go to its stdin, its stdout is read; a non-zero
 * exit fails the stream with what it printed. Destroying the stream kills the program.
 */
class ZstdProgram extends Duplex {
  private readonly child;
  private stderr = '';
  private exited = false;

  constructor(bin: string) {
    super();
    this.child = spawn(bin, ['-d', '-c', '-q'], { stdio: ['pipe', 'pipe', 'pipe'] });
    const { stdin, stdout, stderr } = this.child;
    stdin.on('error', () => {
      // EPIPE when zstd stopped early: its exit status says why
    });
    stderr.setEncoding('utf8');
    stderr.on('data', (d: string) => {
      if (this.stderr.length < 4096) this.stderr += d;
    });
    stdout.on('data', (chunk: Buffer) => {
      if (!this.push(chunk)) stdout.pause();
    });
    this.child.on('error', (err) => this.destroy(Object.assign(new Error(`could not run ${bin}: ${err.message}`), { code: 'ZSTD_BAD' })));
    this.child.on('close', (code, signal) => {
      this.exited = true;
      if (code === 0) this.push(null);
      else if (!this.destroyed) {
        const why = this.stderr.trim().split('\n').pop()?.replace(/^zstd: (\/\*stdin\*\\: )?/, '') || `exit ${code ?? signal}`;
        this.destroy(zstdError(new Error(why)));
      }
    });
  }

  override _read(): void {
    this.child.stdout.resume();
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    if (this.child.stdin.write(chunk)) cb();
    else this.child.stdin.once('drain', () => cb());
  }

  override _final(cb: (err?: Error | null) => void): void {
    this.child.stdin.end();
    cb();
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    if (!this.exited) this.child.kill('SIGKILL');
    cb(err);
  }
}

/** The decoder to use: STIGMER_ZSTD, else `zstd` on PATH, else fzstd. */
export function zstdDecoder(env: Record<string, string | undefined> = process.env): ZstdDecoder {
  const choice = env['STIGMER_ZSTD'];
  if (choice === 'js') return jsDecoder();
  const bin = choice && isAbsolute(choice) ? choice : onPath('zstd', env['PATH']);
  if (!bin) return jsDecoder();
  return { name: `zstd (${bin})`, stream: () => new ZstdProgram(bin) };
}

/** Start a decoder's stream (fzstd loads lazily). */
export async function openDecoder(decoder: ZstdDecoder): Promise<Duplex> {
  const s = decoder.stream() as Duplex & { init?: () => Promise<void> };
  if (s.init) await s.init();
  return s;
}
