/**
 * Installing the Ollama release (issue 11): download + verify + extract of a 200 MB .tar.zst test
 * archive (bin/ + lib/ollama/ like the real one: incompressible and compressible libraries) from a
 * loopback mirror, through stigmer's installer in a child process (installDownload, as the
 * `download` kind runs it) vs the shell doing the same on the same file:
 *
 *   curl -s URL | tee part | sha256sum   then   zstd -dc part | tar -x -C dir
 *
 * interleaved. Rows: the throughput ratio (baseline time / stigmer's: goal >= 0.8) and stigmer's
 * peak RSS (goal < 150 MB: the archive streams, it is never held in memory; VmHWM of the installer
 * process, since getrusage's maxRSS carries the forking bench process's own RSS over), both with the
 * `zstd` program as the decoder (what stigmer uses when one is on PATH), and the same ratio with
 * the pure-JavaScript fzstd (STIGMER_ZSTD=js, what stigmer falls back to; no goal).
 *
 *   node dist/bench/ollama-download.js [--quick]
 */
import { spawn, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startMirror } from '../test/mirror.js';
import { cliEnv, note, runIfMain, stats, tempHome } from './lib.js';
import { formatTable, type Suite, type SuiteResult } from './report.js';

const MB = 1024 * 1024;

/** A release-like tree compressed with `zstd -3 -T0` to about `target` bytes. */
function buildArchive(dir: string, target: number): Buffer {
  const src = join(dir, 'src');
  mkdirSync(join(src, 'bin'), { recursive: true });
  mkdirSync(join(src, 'lib', 'ollama', 'cuda_v12'), { recursive: true });
  writeFileSync(join(src, 'bin', 'ollama'), randomBytes(8 * MB), { mode: 0o755 });
  // incompressible (like weights of GPU kernels) ...
  for (let i = 0; i < 4; i++) writeFileSync(join(src, 'lib', 'ollama', 'cuda_v12', `libggml-cuda-${i}.so`), randomBytes(Math.floor(target * 0.2)));
  // ... and compressible (symbol tables, code): ~3:1
  const text = Buffer.alloc(Math.floor(target * 0.45));
  const words = randomBytes(64 * 1024);
  for (let o = 0; o < text.length; o += 4096) {
    const block = Buffer.from(words.subarray((o / 4096) % 15 * 4096, ((o / 4096) % 15) * 4096 + 4096).toString('base64').slice(0, 4096));
    block.copy(text, o);
  }
  writeFileSync(join(src, 'lib', 'ollama', 'libggml-base.so'), text);
  const r = spawnSync('sh', ['-c', `tar -C "${src}" -cf - . | zstd -3 -T0 -q -c`], { maxBuffer: 2 * target + 64 * MB });
  if (r.status !== 0) throw new Error(`building the archive failed: ${r.stderr}`);
  rmSync(src, { recursive: true, force: true });
  return r.stdout;
}

interface Run {
  ms: number;
  rssMb?: number;
}

/** stigmer's installer in a fresh node process: its wall time and peak RSS. */
function ours(url: string, sha: string, dest: string, zstd: 'program' | 'js'): Promise<Run> {
  const script = `
    const { installDownload } = await import(${JSON.stringify(new URL('../src/process/download/install.js', import.meta.url).href)});
    const t0 = performance.now();
    await installDownload({ url: ${JSON.stringify(url)}, sha256: ${JSON.stringify(sha)}, dest: ${JSON.stringify(dest)} }, { force: true });
    const ms = performance.now() - t0;
    // the peak RSS of this process since its exec (VmHWM): getrusage's maxRSS survives fork and
    // exec, so it would report the bench process itself (which holds the archive)
    const status = await import('node:fs').then((fs) => { try { return fs.readFileSync('/proc/self/status', 'utf8'); } catch { return ''; } });
    const hwm = /^VmHWM:\\s+(\\d+) kB/m.exec(status);
    process.stdout.write(JSON.stringify({ ms, rssMb: hwm ? Number(hwm[1]) / 1024 : process.resourceUsage().maxRSS / 1024 }));`;
  const env = cliEnv(dest, { STIGMER_ZSTD: zstd === 'js' ? 'js' : undefined });
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { env, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.once('exit', (code) => (code === 0 ? resolve(JSON.parse(out) as Run) : reject(new Error(`installer exited ${code}`))));
  });
}

/** The shell pipeline, spawned asynchronously: the mirror serving it runs in this process. */
async function baseline(url: string, dir: string): Promise<Run> {
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(join(dir, 'out'), { recursive: true });
  const t0 = performance.now();
  const child = spawn('sh', ['-c', `curl -sS "${url}" | tee "${dir}/part" | sha256sum >/dev/null && zstd -dc "${dir}/part" | tar -x -C "${dir}/out"`], { stdio: ['ignore', 'ignore', 'inherit'] });
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  const ms = performance.now() - t0;
  if (code !== 0) throw new Error('the shell baseline failed');
  return { ms };
}

export const ollamaDownload: Suite = {
  name: 'ollama-download',
  title: 'install the Ollama release: download + verify + extract of a 200 MB .tar.zst vs curl | sha256sum + zstd -d | tar x',
  async run({ quick }) {
    const runs = quick ? 2 : 5;
    const work = tempHome('stigmer-bench-ollama-');
    const archive = buildArchive(work, 200 * MB);
    const sha = createHash('sha256').update(archive).digest('hex');
    const mirror = await startMirror({ '/v0.32.15/ollama-linux-amd64.tar.zst': archive });
    const url = `${mirror.url}/v0.32.15/ollama-linux-amd64.tar.zst`;
    const ratio: number[] = [];
    const jsRatio: number[] = [];
    const rss: number[] = [];
    const raw: Record<string, number[]> = { baseline: [], program: [], js: [] };
    try {
      // one unmeasured round warms the page cache and the mirror
      await baseline(url, join(work, 'sh'));
      await ours(url, sha, join(work, 'dest'), 'program');
      for (let i = 0; i < runs; i++) {
        const b = await baseline(url, join(work, 'sh'));
        const p = await ours(url, sha, join(work, 'dest'), 'program');
        ratio.push(b.ms / p.ms);
        rss.push(p.rssMb!);
        raw['baseline']!.push(b.ms);
        raw['program']!.push(p.ms);
        if (i < (quick ? 1 : 2)) {
          const j = await ours(url, sha, join(work, 'dest'), 'js');
          jsRatio.push(b.ms / j.ms);
          raw['js']!.push(j.ms);
        }
      }
    } finally {
      await mirror.close();
      rmSync(work, { recursive: true, force: true });
    }
    note(`archive ${(archive.length / MB).toFixed(0)} MB; baseline ${raw['baseline']!.map((m) => m.toFixed(0)).join(', ')} ms; stigmer ${raw['program']!.map((m) => m.toFixed(0)).join(', ')} ms; fzstd ${raw['js']!.map((m) => m.toFixed(0)).join(', ')} ms`);
    const result: SuiteResult = {
      name: 'ollama-download',
      rows: [
        { bench: '14 ollama download', metric: 'throughput vs curl|sha256sum + zstd -d|tar x (zstd program)', unit: 'x', stats: stats(ratio, 2), goal: { min: 0.8 } },
        { bench: '14 ollama download', metric: 'peak RSS of the installer (zstd program)', unit: 'MB', stats: stats(rss), goal: { max: 150 } },
        { bench: '14 ollama download', metric: 'throughput vs the same (fzstd, pure JS)', unit: 'x', stats: stats(jsRatio, 2) },
      ],
      details: { archiveBytes: archive.length, ms: raw },
    };
    return result;
  },
};

runIfMain(import.meta.url, async (argv) => {
  const r = await ollamaDownload.run({ quick: argv.includes('--quick') });
  process.stdout.write(`${formatTable([r])}\n`);
  return 0;
});

