/**
 * `stigmer config get <key> | set <key> <value> | list [--show-origin] | path`
 *
 * get and list show effective values (the whole cascade: environment, .env, file, defaults);
 * set changes the file only, keeping its comments, and says when something overrides it or when
 * a running stack must be restarted.
 */
import type { Command } from 'commander';
import type { App } from '../model/app.js';

export function register(program: Command, app: App): void {
  void app;
  const config = program
    .command('config')
    .description('show or change the stigmer config (<STIGMER_HOME>/config.yaml)')
    .addHelpText(
      'after',
      '\nPrecedence, highest first: flags of `stigmer local start`, environment, .env in the working directory, the file, defaults.',
    );

  config
    .command('get')
    .description('print the effective value of a key (or a section)')
    .argument('<key>', 'dotted key, e.g. backend.local.llm.provider')
    .action(async (key: string) => {
      const { loadConfig, configValue } = await import('../stack/config/index.js');
      const { requireKey } = await import('../stack/config/edit.js');
      const { sectionKeys } = await import('../stack/config/keys.js');
      const { config: cfg, kept } = loadConfig();
      const spec = sectionKeys().includes(key) ? undefined : requireKey(key);
      if (spec?.kept) {
        process.stdout.write(`${spec.secret && key in kept ? '********' : display(kept[key])}\n`);
        return;
      }
      process.stdout.write(`${await formatValue(configValue(cfg, key))}\n`);
    });

  config
    .command('set')
    .description('set a key in the config file (validated, comments kept)')
    .argument('<key>', 'dotted key, e.g. backend.local.llm.provider')
    .argument('<value>', 'the value (true/false for booleans, [a, b] for lists)')
    .addHelpText('after', '\nExamples:\n  stigmer config set backend.local.llm.provider anthropic\n  stigmer config set backend.local.temporal.port 7300\n  stigmer config set backend.local.llm.model null    # same as: stigmer config unset backend.local.llm.model')
    .action(async (key: string, value: string) => {
      const { isNullValue } = await import('../stack/config/edit.js');
      if (isNullValue(value)) return unset(key);
      const { configPath } = await import('../stack/config/index.js');
      const { setConfigValue } = await import('../stack/config/edit.js');
      const { stigmerHome } = await import('../util/paths.js');
      const home = stigmerHome();
      const file = configPath(home);
      const result = setConfigValue(file, key, value);
      const out: string[] = [`Set ${key} to ${display(result.value)} in ${file}`];
      out.push(...result.notes.map((n) => `Note: ${n}`));
      process.stdout.write(`${[...out, ...(await afterChange(home, key, 'stays'))].join('\n')}\n`);
    });

  config
    .command('unset')
    .description('remove a key from the config file: it goes back to its default (comment kept)')
    .argument('<key>', 'dotted key, e.g. backend.local.temporal.port')
    .addHelpText('after', '\nExample:\n  stigmer config unset backend.local.temporal.port')
    .action(async (key: string) => unset(key));

  async function unset(key: string): Promise<void> {
    const { configPath, loadConfig } = await import('../stack/config/index.js');
    const { unsetConfigValue } = await import('../stack/config/edit.js');
    const { stigmerHome } = await import('../util/paths.js');
    const home = stigmerHome();
    const file = configPath(home);
    const { changed } = unsetConfigValue(file, key);
    const loaded = loadConfig({ home });
    const out = [changed ? `Unset ${key} in ${file}; it is back to its default, ${display(readKey(loaded.config, key))}` : `${key} is not set in ${file}; nothing changed`];
    process.stdout.write(`${[...out, ...(changed ? await afterChange(home, key, 'is') : [])].join('\n')}\n`);
  }

  /** Notes after a change to the file: an override that hides it, a running stack to restart. */
  async function afterChange(home: string, key: string, verb: 'stays' | 'is'): Promise<string[]> {
    const { tryLoadConfig } = await import('../stack/config/index.js');
    const { stackRunning } = await import('../stack/config/edit.js');
    const out: string[] = [];
    const tried = tryLoadConfig({ home });
    // The file is valid but not yet complete (auth: mtls before its certificate): say what is missing.
    if (!tried.ok) return [`Note: the config is not usable yet: ${tried.error.error.message.split('\n')[0]}`];
    const loaded = tried.value;
    const origin = loaded.origins[key];
    if (origin && origin !== 'file' && origin !== 'default') {
      out.push(`Note: ${loaded.sources[key]} (${origin}) takes precedence over the file, so the effective value ${verb} ${display(readKey(loaded.config, key))}.`);
    }
    if (stackRunning(home)) out.push('The local stack is running: restart the stack for this to apply: stigmer local restart');
    return out;
  }

  config
    .command('list')
    .description('print every effective value')
    .option('--show-origin', 'also show where each value came from (flag, env, .env, file, default)')
    .option('--json', 'print JSON: { key: { value, origin, source } }')
    .action(async (opts: { showOrigin?: boolean; json?: boolean }) => {
      const { loadConfig, CONFIG_KEYS } = await import('../stack/config/index.js');
      const loaded = loadConfig();
      // The real Stigmer CLI's keys are listed only when the file has them; secrets masked.
      const rows = CONFIG_KEYS.filter((k) => !k.kept || k.key in loaded.kept).map(({ key, kept, secret }) => ({
        key,
        value: kept ? (secret ? '********' : loaded.kept[key]) : readKey(loaded.config, key),
        origin: loaded.origins[key] ?? 'default',
        source: loaded.sources[key] ?? 'default',
      }));
      if (opts.json) {
        const obj: Record<string, unknown> = {};
        for (const r of rows) obj[r.key] = { value: r.value, origin: r.origin, source: r.source };
        process.stdout.write(`${JSON.stringify(obj, null, 2)}\n`);
        return;
      }
      const keyWidth = Math.max(...rows.map((r) => r.key.length));
      const lines = rows.map((r) => {
        const value = display(r.value);
        if (!opts.showOrigin) return `${r.key.padEnd(keyWidth)}  ${value}`;
        const detail = r.source === r.origin ? '' : ` (${r.source})`;
        return `${r.key.padEnd(keyWidth)}  ${value.padEnd(24)}  ${r.origin}${detail}`;
      });
      process.stdout.write(`${lines.join('\n')}\n`);
    });

  config
    .command('path')
    .description('print the path of the config file')
    .action(async () => {
      const { configPath } = await import('../stack/config/index.js');
      process.stdout.write(`${configPath()}\n`);
    });
}

function readKey(obj: unknown, key: string): unknown {
  let cur = obj;
  for (const p of key.split('.')) cur = cur && typeof cur === 'object' ? (cur as Record<string, unknown>)[p] : undefined;
  return cur;
}

function display(value: unknown): string {
  if (Array.isArray(value) || (value && typeof value === 'object')) return JSON.stringify(value);
  if (value === undefined || value === null) return '';
  return String(value);
}

async function formatValue(value: unknown): Promise<string> {
  if (value && typeof value === 'object' && !Array.isArray(value)) {
    const { stringify } = await import('yaml');
    return stringify(value).trimEnd();
  }
  return display(value);
}
