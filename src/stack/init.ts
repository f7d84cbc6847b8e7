/**
 * What `stigmer init` does, as a checklist:
 *
 *   ✓ Created config directory: ~/.stigmer
 *   ✓ Downloaded Temporal CLI v1.8.2: ~/.stigmer/bin/temporal-1.8.2/temporal
 *   ✓ Created default config with Ollama: ~/.stigmer/config.yaml
 *   ✓ Configured for zero-dependency local mode (Ollama, managed Temporal)
 *
 * The config is written before the download (the download reads it), but the lines print in
 * this order. A failed download exits 1 with the reason; nothing half-installed is left.
 */
import { copyFileSync, existsSync } from 'node:fs';
import { makePrivateDir } from '../util/private-dir.js';
import { join } from 'node:path';
import { signalExitCode, type App } from '../model/app.js';
import { EXIT, UserError } from '../util/errors.js';
import { mask } from '../util/mask.js';
import { formatBytes } from '../util/format.js';
import { stigmerHome } from '../util/paths.js';
import { TaskError, type Progress } from '../model/kind.js';
import { describeFailure } from '../model/failure.js';
import { configPath, loadConfig, temporalRelease, type StigmerConfig } from './config/index.js';
import { writeFileAtomic } from './config/edit.js';
import { defaultConfigText, refreshSchemaCopy } from './config/template.js';

export interface InitOptions {
  force: boolean;
  download: boolean;
  app: App;
  /** where the checklist goes (default stdout) */
  out?: (line: string) => void;
}

const PROVIDER_NAMES = { ollama: 'Ollama', anthropic: 'Anthropic', openai: 'OpenAI' } as const;

export async function runInit(opts: InitOptions): Promise<number> {
  const say = opts.out ?? ((line: string) => process.stdout.write(`${mask(line)}\n`));
  const home = stigmerHome();
  const homeExisted = existsSync(home);
  makePrivateDir(home, 'STIGMER_HOME');
  makePrivateDir(join(home, 'bin'), 'STIGMER_HOME');
  makePrivateDir(join(home, 'logs'), 'STIGMER_HOME');

  const file = configPath(home);
  let configLine: string;
  const existed = existsSync(file);
  if (existed && !opts.force) {
    configLine = `✓ Kept existing config: ${file}`;
  } else {
    if (existed) copyFileSync(file, `${file}.bak`);
    writeFileAtomic(file, defaultConfigText(home), 0o600);
    refreshSchemaCopy(home);
    configLine = existed ? `✓ Rewrote config with the defaults: ${file} (previous one in ${file}.bak)` : `✓ Created default config with Ollama: ${file}`;
  }

  let config: StigmerConfig;
  try {
    config = loadConfig({ home }).config;
  } catch (err) {
    if (err instanceof UserError) {
      throw new UserError(`${err.message}\nFix ${file}, or run \`stigmer init --force\` to rewrite it with the defaults (the old one is kept as config.yaml.bak).`, EXIT.usage);
    }
    throw err;
  }
  makePrivateDir(config.backend.local.data_dir, 'backend.local.data_dir');
  say(homeExisted ? `✓ Config directory exists: ${home}` : `✓ Created config directory: ${home}`);

  const temporal = config.backend.local.temporal;
  if (!temporal.managed) {
    say(`✓ Using external Temporal at ${temporal.address} (nothing to download)`);
  } else if (!opts.download) {
    say(`- Skipped the Temporal CLI v${temporal.version} download (--no-download); stigmer local start downloads it`);
  } else {
    say(await downloadTemporal(config, opts.app));
  }
  say(configLine);

  const { provider, model } = config.backend.local.llm;
  if (provider === 'ollama' && temporal.managed) {
    say('✓ Configured for zero-dependency local mode (Ollama, managed Temporal)');
  } else {
    const where = temporal.managed ? 'managed Temporal' : `external Temporal at ${temporal.address}`;
    say(`✓ Configured for local mode (${PROVIDER_NAMES[provider]} ${model}, ${where})`);
  }
  say('');
  say('Next: stigmer local start');
  return EXIT.ok;
}

async function downloadTemporal(config: StigmerConfig, app: App): Promise<string> {
  const release = temporalRelease(config);
  const { installDownload } = await import('../process/download/install.js');
  app.listen();
  const bar = progressBar(`Temporal CLI v${release.version}`);
  try {
    const { satisfied, outputs } = await installDownload(
      { url: release.archiveUrl, checksumsUrl: release.checksumsUrl, dest: release.installDir, extract: true },
      { signal: app.signal, onProgress: bar.update },
    );
    bar.done();
    return satisfied
      ? `✓ Temporal CLI v${release.version} already installed: ${outputs.path}`
      : `✓ Downloaded Temporal CLI v${release.version}: ${outputs.path}`;
  } catch (err) {
    bar.done();
    const sig = app.interruptedBy();
    if (sig) throw new UserError('', signalExitCode[sig]);
    if (err instanceof TaskError) {
      const f = describeFailure(err.failure);
      throw new UserError(
        `✗ Could not install the Temporal CLI v${release.version}: ${f.message}${f.hint ? `\n  ${f.hint}` : ''}\n` +
          '  Set STIGMER_TEMPORAL_DOWNLOAD_URL (or backend.local.temporal.download_url) to use a mirror, or run `stigmer init --no-download`.',
        EXIT.taskFailed,
      );
    }
    throw err;
  }
}

/**
 * A one-line bar on a terminal (stderr, redrawn in place); without one, a plain line at each
 * quarter, so CI logs stay short.
 */
function progressBar(label: string): { update: (p: Progress) => void; done: () => void } {
  const tty = !!process.stderr.isTTY && !process.env['CI'] && (process.stderr.columns ?? 0) > 0;
  let lastQuarter = -1;
  let drawn = false;
  return {
    update(p) {
      const pct = p.total ? Math.min(100, Math.floor((p.done / p.total) * 100)) : undefined;
      const size = `${formatBytes(p.done)}${p.total ? ` of ${formatBytes(p.total)}` : ''}`;
      if (tty) {
        const width = Math.max(10, Math.min(30, (process.stderr.columns ?? 80) - label.length - 40));
        const filled = pct === undefined ? 0 : Math.round((pct / 100) * width);
        const bar = pct === undefined ? '' : `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${String(pct).padStart(3)}% `;
        process.stderr.write(`\r\x1b[2KDownloading ${label} ${bar}${size}`);
        drawn = true;
        return;
      }
      if (pct === undefined) return;
      const quarter = Math.floor(pct / 25);
      if (quarter > lastQuarter) {
        lastQuarter = quarter;
        process.stderr.write(`Downloading ${label}: ${pct}% (${size})\n`);
      }
    },
    done() {
      if (tty && drawn) process.stderr.write('\r\x1b[2K');
    },
  };
}

