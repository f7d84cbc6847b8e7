/**
 * The config cascade (flag > env > .env > file > default) with origins, provider-aware defaults,
 * exact file diagnostics, and the `stigmer config` command.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadConfig, temporalRelease } from '../src/stack/config/index.js';
import { UserError } from '../src/util/errors.js';
import { packageRoot } from '../src/util/paths.js';
import { cleanupHome, runCli, tempHome } from './helpers.js';

function home(t: { after: (fn: () => Promise<void>) => void }): string {
  const h = tempHome('stigmer-config-');
  t.after(() => cleanupHome(h));
  return h;
}

function writeConfig(h: string, text: string): string {
  const file = join(h, 'config.yaml');
  writeFileSync(file, text);
  return file;
}

test('no file, no environment: the zero-config defaults, every origin "default"', (t) => {
  const h = home(t);
  const r = loadConfig({ home: h, cwd: h, env: {} });
  assert.equal(r.exists, false);
  assert.equal(r.file, join(h, 'config.yaml'));
  assert.deepEqual(r.config, {
    home: h,
    backend: {
      type: 'local',
      local: {
        endpoint: 'localhost:50051',
        data_dir: join(h, 'data'),
        llm: {
          provider: 'ollama',
          model: 'qwen2.5-coder:7b',
          base_url: 'http://localhost:11434',
          ollama: { managed: 'auto', version: '0.32.15', download_url: 'https://github.com/ollama/ollama/releases/download' },
        },
        temporal: {
          managed: true,
          address: '127.0.0.1:7233',
          version: '1.8.2',
          port: 7233,
          ui_port: 8233,
          download_url: 'https://github.com/temporalio/cli/releases/download',
          bin: null,
          namespace: 'default',
          auth: 'none',
          tls: { enabled: false, server_ca_cert: null, server_name: null, client_cert: null, client_key: null, disable_host_verification: false },
          profile: null,
          profile_file: null,
          api_key_from: null,
          address_from: 'managed',
          namespaces: [],
          search_attributes: {},
          dynamic_config: {},
          headless: false,
          log_level: null,
          extra_args: [],
        },
        server: { command: process.execPath, args: [join(packageRoot, 'bin', 'stigmer.js'), 'internal', 'server'] },
        agent_runner: { command: process.execPath, args: [join(packageRoot, 'bin', 'stigmer.js'), 'internal', 'agent-runner'] },
      },
      cloud: { endpoint: 'api.stigmer.ai:443' },
    },
  });
  assert.ok(Object.values(r.origins).every((o) => o === 'default'), JSON.stringify(r.origins));
});

test('every source of the cascade, each winning over the ones below it', (t) => {
  const h = home(t);
  writeConfig(
    h,
    [
      'backend:',
      '  local:',
      '    endpoint: 127.0.0.1:6000',
      '    llm:',
      '      provider: anthropic',
      '      model: claude-from-file',
      '      base_url: https://file.example',
      '    temporal:',
      '      port: 7300',
      '      version: 1.7.0',
      '      ui_port: 8300',
    ].join('\n'),
  );
  const cwd = join(h, 'project');
  mkdirSync(cwd);
  writeFileSync(join(cwd, '.env'), 'STIGMER_LLM_MODEL=claude-from-dotenv\nSTIGMER_TEMPORAL_VERSION=1.6.0\nSTIGMER_TEMPORAL_UI_PORT=8400\n');
  const r = loadConfig({
    home: h,
    cwd,
    env: { STIGMER_TEMPORAL_VERSION: '1.8.1', STIGMER_LLM_BASE_URL: 'https://env.example' },
    flags: { llmBaseUrl: 'https://flag.example' },
  });
  const l = r.config.backend.local;
  assert.equal(l.llm.provider, 'anthropic');
  assert.equal(r.origins['backend.local.llm.provider'], 'file');
  assert.equal(l.llm.model, 'claude-from-dotenv');
  assert.equal(r.origins['backend.local.llm.model'], '.env');
  assert.equal(r.sources['backend.local.llm.model'], `STIGMER_LLM_MODEL in ${join(cwd, '.env')}`);
  assert.equal(l.llm.base_url, 'https://flag.example');
  assert.equal(r.origins['backend.local.llm.base_url'], 'flag');
  assert.equal(r.sources['backend.local.llm.base_url'], '--llm-base-url');
  // the real environment wins over .env
  assert.equal(l.temporal.version, '1.8.1');
  assert.equal(r.origins['backend.local.temporal.version'], 'env');
  assert.equal(r.sources['backend.local.temporal.version'], 'STIGMER_TEMPORAL_VERSION');
  assert.equal(l.temporal.ui_port, 8400);
  assert.equal(r.origins['backend.local.temporal.ui_port'], '.env');
  assert.equal(l.temporal.port, 7300);
  assert.equal(r.origins['backend.local.temporal.port'], 'file');
  assert.equal(l.temporal.address, '127.0.0.1:7300');
  assert.equal(l.endpoint, '127.0.0.1:6000');
  assert.equal(r.origins['backend.local.endpoint'], 'file');
  assert.equal(r.sources['backend.local.endpoint'], join(h, 'config.yaml'));
  assert.equal(r.origins['backend.type'], 'default');
});

test('the model and base URL follow the provider: anthropic without a model gets Anthropic\'s default', (t) => {
  const h = home(t);
  writeConfig(h, 'backend:\n  local:\n    llm:\n      provider: ollama\n      model: llama3.2\n      base_url: http://127.0.0.1:9999\n');
  const viaEnv = loadConfig({ home: h, cwd: h, env: { STIGMER_LLM_PROVIDER: 'anthropic' } });
  assert.deepEqual(viaEnv.config.backend.local.llm, { provider: 'anthropic', model: 'claude-sonnet-4-5', base_url: 'https://api.anthropic.com', ollama: { managed: 'auto', version: '0.32.15', download_url: 'https://github.com/ollama/ollama/releases/download' } });
  assert.equal(viaEnv.origins['backend.local.llm.model'], 'default');
  assert.equal(viaEnv.sources['backend.local.llm.model'], 'for anthropic');

  const viaFlag = loadConfig({ home: h, cwd: h, env: {}, flags: { llmProvider: 'openai' } });
  assert.deepEqual(viaFlag.config.backend.local.llm, { provider: 'openai', model: 'gpt-4.1-mini', base_url: 'https://api.openai.com/v1', ollama: { managed: 'auto', version: '0.32.15', download_url: 'https://github.com/ollama/ollama/releases/download' } });

  // a model given with the provider, at the same level, is kept
  const both = loadConfig({ home: h, cwd: h, env: { STIGMER_LLM_PROVIDER: 'anthropic', STIGMER_LLM_MODEL: 'claude-opus-4-8' } });
  assert.equal(both.config.backend.local.llm.model, 'claude-opus-4-8');
  // without an override, the file's own model stays
  const file = loadConfig({ home: h, cwd: h, env: {} });
  assert.deepEqual(file.config.backend.local.llm, { provider: 'ollama', model: 'llama3.2', base_url: 'http://127.0.0.1:9999', ollama: { managed: 'auto', version: '0.32.15', download_url: 'https://github.com/ollama/ollama/releases/download' } });
});

test('backend.local.llm.ollama: managed from the file (a YAML boolean or a word) and the environment, version and mirror', (t) => {
  const h = home(t);
  writeConfig(h, 'backend:\n  local:\n    llm:\n      ollama:\n        managed: true\n        version: 0.30.1\n        download_url: http://mirror.example/ollama/\n');
  const r = loadConfig({ home: h, cwd: h, env: {} });
  assert.deepEqual(r.config.backend.local.llm.ollama, { managed: 'true', version: '0.30.1', download_url: 'http://mirror.example/ollama' });
  assert.equal(r.origins['backend.local.llm.ollama.managed'], 'file');
  const env = loadConfig({ home: h, cwd: h, env: { STIGMER_OLLAMA_MANAGED: 'false', STIGMER_OLLAMA_VERSION: '0.13.5', STIGMER_OLLAMA_DOWNLOAD_URL: 'http://127.0.0.1:1/r' } });
  assert.deepEqual(env.config.backend.local.llm.ollama, { managed: 'false', version: '0.13.5', download_url: 'http://127.0.0.1:1/r' });
  assert.equal(env.sources['backend.local.llm.ollama.managed'], 'STIGMER_OLLAMA_MANAGED');
  assert.throws(() => loadConfig({ home: h, cwd: h, env: { STIGMER_OLLAMA_MANAGED: 'sometimes' } }), /Expected STIGMER_OLLAMA_MANAGED to be one of auto, true, false, got "sometimes"/);
  writeConfig(h, 'backend:\n  local:\n    llm:\n      ollama:\n        managed: maybe\n');
  assert.throws(() => loadConfig({ home: h, cwd: h, env: {} }), /managed/);
});

test('the Ollama release for each platform: .tar.zst from 0.14.0 on Linux (.tgz before), the flat .tgz on macOS', async () => {
  const { ollamaRelease } = await import('../src/stack/config/ollama.js');
  const cfg = (version: string) => ({ home: '/h', backend: { local: { llm: { ollama: { managed: 'auto', version, download_url: 'http://m' } } } } }) as unknown as Parameters<typeof ollamaRelease>[0];
  assert.deepEqual(ollamaRelease(cfg('0.32.15'), 'linux', 'x64'), {
    version: '0.32.15',
    asset: 'ollama-linux-amd64.tar.zst',
    archiveUrl: 'http://m/v0.32.15/ollama-linux-amd64.tar.zst',
    checksumsUrl: 'http://m/v0.32.15/sha256sum.txt',
    installDir: '/h/bin/ollama-0.32.15',
    bin: '/h/bin/ollama-0.32.15/bin/ollama',
  });
  assert.equal(ollamaRelease(cfg('0.32.15'), 'linux', 'arm64')?.asset, 'ollama-linux-arm64.tar.zst');
  assert.equal(ollamaRelease(cfg('0.13.5'), 'linux', 'x64')?.asset, 'ollama-linux-amd64.tgz');
  assert.equal(ollamaRelease(cfg('0.32.15'), 'darwin', 'arm64')?.bin, '/h/bin/ollama-0.32.15/ollama');
  assert.equal(ollamaRelease(cfg('0.32.15'), 'win32', 'x64'), undefined);
});

test('a Temporal address from the environment or a flag means external Temporal', (t) => {
  const h = home(t);
  writeConfig(h, 'backend:\n  local:\n    temporal:\n      managed: true\n      port: 7400\n');
  const env = loadConfig({ home: h, cwd: h, env: { TEMPORAL_SERVICE_ADDRESS: 'my-temporal:7233' } });
  assert.equal(env.config.backend.local.temporal.managed, false);
  assert.equal(env.config.backend.local.temporal.address, 'my-temporal:7233');
  assert.equal(env.origins['backend.local.temporal.managed'], 'env');
  assert.equal(env.origins['backend.local.temporal.address'], 'env');

  const flag = loadConfig({ home: h, cwd: h, env: { TEMPORAL_SERVICE_ADDRESS: 'my-temporal:7233' }, flags: { temporalAddress: '10.0.0.5:7233' } });
  assert.equal(flag.config.backend.local.temporal.address, '10.0.0.5:7233');
  assert.equal(flag.origins['backend.local.temporal.address'], 'flag');

  const managed = loadConfig({ home: h, cwd: h, env: {} });
  assert.equal(managed.config.backend.local.temporal.address, '127.0.0.1:7400');
  assert.equal(managed.origins['backend.local.temporal.address'], 'file');

  writeConfig(h, 'backend:\n  local:\n    temporal:\n      managed: false\n      address: tmp.example:7233\n');
  const external = loadConfig({ home: h, cwd: h, env: {} });
  assert.equal(external.config.backend.local.temporal.managed, false);
  assert.equal(external.config.backend.local.temporal.address, 'tmp.example:7233');
  assert.equal(external.origins['backend.local.temporal.managed'], 'file');
});

test('STIGMER_SERVER_BIN / STIGMER_AGENT_RUNNER_BIN and the file name other executables', (t) => {
  const h = home(t);
  const env = loadConfig({ home: h, cwd: h, env: { STIGMER_SERVER_BIN: '/opt/server', STIGMER_AGENT_RUNNER_BIN: '/opt/runner' } });
  assert.deepEqual(env.config.backend.local.server, { command: '/opt/server', args: [] });
  assert.deepEqual(env.config.backend.local.agent_runner, { command: '/opt/runner', args: [] });
  assert.equal(env.origins['backend.local.server.command'], 'env');
  writeConfig(h, 'backend:\n  local:\n    server:\n      command: my-server\n      args: [--verbose]\n    data_dir: state\n');
  const file = loadConfig({ home: h, cwd: h, env: {} });
  assert.deepEqual(file.config.backend.local.server, { command: 'my-server', args: ['--verbose'] });
  assert.equal(file.config.backend.local.data_dir, join(h, 'state'));
});

test('an invalid value in the environment or a flag is a usage error naming it', (t) => {
  const h = home(t);
  const err = (fn: () => unknown): UserError => {
    try {
      fn();
    } catch (e) {
      assert.ok(e instanceof UserError);
      return e;
    }
    throw new Error('expected a UserError');
  };
  const a = err(() => loadConfig({ home: h, cwd: h, env: { STIGMER_TEMPORAL_PORT: 'abc' } }));
  assert.equal(a.message, 'Expected STIGMER_TEMPORAL_PORT to be an integer from 1 to 65535, got "abc"');
  assert.equal(a.exitCode, 2);
  const b = err(() => loadConfig({ home: h, cwd: h, env: {}, flags: { llmProvider: 'antropic' } }));
  assert.equal(b.message, 'Expected --llm-provider to be one of ollama, anthropic, openai, got "antropic" (did you mean "anthropic"?)');
});

test('an invalid file: every error as file:line:col with the line and a caret', (t) => {
  const h = home(t);
  const file = writeConfig(h, 'backend:\n  type: local\n  local:\n    llm:\n      provider: olama\n      modle: x\n    temporal:\n      port: "7233"\n');
  let message = '';
  try {
    loadConfig({ home: h, cwd: h, env: {} });
  } catch (e) {
    assert.ok(e instanceof UserError);
    assert.equal(e.exitCode, 2);
    message = e.message;
  }
  assert.equal(
    message,
    [
      `${file}:5:17: Expected backend.local.llm.provider to be one of ollama, anthropic, openai, got "olama" (did you mean "ollama"?)`,
      '    |',
      '  5 |       provider: olama',
      '    |                 ^^^^^',
      '',
      `${file}:6:7: unknown key "backend.local.llm.modle" (did you mean "model"?)`,
      '    |',
      '  6 |       modle: x',
      '    |       ^^^^^',
      '',
      `${file}:8:13: Expected backend.local.temporal.port to be an integer from 1 to 65535, got "7233"`,
      '    |',
      '  8 |       port: "7233"',
      '    |             ^^^^^^',
      '',
      `3 errors in ${file}`,
    ].join('\n'),
  );
});

test('a YAML syntax error: file:line:col', (t) => {
  const h = home(t);
  const file = writeConfig(h, 'backend:\n  local:\n    llm: {provider: ollama\n  type: local\n');
  assert.throws(
    () => loadConfig({ home: h, cwd: h, env: {} }),
    (e: unknown) => e instanceof UserError && e.exitCode === 2 && e.message.startsWith(`${file}:4:`) && e.message.includes('invalid YAML: '),
  );
});

test('temporalRelease: the release layout for each os/arch, and a clear error elsewhere', (t) => {
  const h = home(t);
  const { config } = loadConfig({ home: h, cwd: h, env: { STIGMER_TEMPORAL_DOWNLOAD_URL: 'http://127.0.0.1:9/mirror/' } });
  assert.deepEqual(temporalRelease(config, 'linux', 'x64'), {
    version: '1.8.2',
    archiveUrl: 'http://127.0.0.1:9/mirror/v1.8.2/temporal_cli_1.8.2_linux_amd64.tar.gz',
    checksumsUrl: 'http://127.0.0.1:9/mirror/v1.8.2/checksums.txt',
    fileName: 'temporal_cli_1.8.2_linux_amd64.tar.gz',
    installDir: join(h, 'bin', 'temporal-1.8.2'),
    bin: join(h, 'bin', 'temporal-1.8.2', 'temporal'),
  });
  assert.equal(temporalRelease(config, 'darwin', 'arm64').fileName, 'temporal_cli_1.8.2_darwin_arm64.tar.gz');
  const official = loadConfig({ home: h, cwd: h, env: {} }).config;
  assert.equal(
    temporalRelease(official, 'linux', 'arm64').archiveUrl,
    'https://github.com/temporalio/cli/releases/download/v1.8.2/temporal_cli_1.8.2_linux_arm64.tar.gz',
  );
  assert.throws(() => temporalRelease(config, 'win32', 'x64'), /no Temporal CLI release stigmer can manage for win32\/x64/);
});

test('stigmer config path / get / list --show-origin', async (t) => {
  const h = home(t);
  writeConfig(h, 'backend:\n  local:\n    temporal:\n      port: 7300\n');
  const path = await runCli(['config', 'path'], { home: h });
  assert.equal(path.stdout, `${join(h, 'config.yaml')}\n`);
  const get = await runCli(['config', 'get', 'backend.local.temporal.address'], { home: h, env: { STIGMER_LLM_PROVIDER: undefined } });
  assert.equal(get.stdout, '127.0.0.1:7300\n');
  const section = await runCli(['config', 'get', 'backend.local.llm'], { home: h, env: { STIGMER_LLM_PROVIDER: 'openai', STIGMER_OLLAMA_MANAGED: 'auto' } });
  assert.equal(section.stdout, 'provider: openai\nmodel: gpt-4.1-mini\nbase_url: https://api.openai.com/v1\nollama:\n  managed: auto\n  version: 0.32.15\n  download_url: https://github.com/ollama/ollama/releases/download\n');

  const list = await runCli(['config', 'list', '--show-origin'], { home: h, env: { STIGMER_LLM_PROVIDER: 'anthropic' } });
  assert.equal(list.code, 0, list.stderr);
  const line = (key: string): string => list.stdout.split('\n').find((l) => l.startsWith(`${key} `))!.replace(/ +/g, ' ');
  assert.equal(line('backend.local.llm.provider'), 'backend.local.llm.provider anthropic env (STIGMER_LLM_PROVIDER)');
  assert.equal(line('backend.local.llm.model'), 'backend.local.llm.model claude-sonnet-4-5 default (for anthropic)');
  assert.equal(line('backend.local.temporal.port'), `backend.local.temporal.port 7300 file (${join(h, 'config.yaml')})`);
  assert.equal(line('backend.type'), 'backend.type local default');

  const json = await runCli(['config', 'list', '--json'], { home: h });
  assert.deepEqual(JSON.parse(json.stdout)['backend.local.temporal.port'], { value: 7300, origin: 'file', source: join(h, 'config.yaml') });

  const bad = await runCli(['config', 'get', 'backend.local.llm.modle'], { home: h });
  assert.equal(bad.code, 2);
  assert.equal(bad.stderr, 'unknown config key "backend.local.llm.modle" (did you mean "backend.local.llm.model"?)\nRun `stigmer config list` to see every key.\n');
});

test('stigmer config set keeps comments and key order, validates, writes 0600 atomically', async (t) => {
  const h = home(t);
  const original = [
    '# my stigmer config',
    'backend:',
    '  type: local # always local here',
    '  local:',
    '    # the LLM',
    '    llm:',
    '      provider: ollama',
    '      model: qwen2.5-coder:7b',
    '    temporal:',
    '      managed: true',
    '',
  ].join('\n');
  const file = writeConfig(h, original);
  const set = await runCli(['config', 'set', 'backend.local.temporal.port', '7301'], { home: h });
  assert.equal(set.code, 0, set.stderr);
  assert.equal(set.stdout, `Set backend.local.temporal.port to 7301 in ${file}\n`);
  const provider = await runCli(['config', 'set', 'backend.local.llm.provider', 'anthropic'], { home: h });
  assert.equal(provider.code, 0, provider.stderr);
  const managed = await runCli(['config', 'set', 'backend.local.temporal.managed', 'no'], { home: h });
  assert.equal(managed.code, 0, managed.stderr);
  assert.equal(
    readFileSync(file, 'utf8'),
    [
      '# my stigmer config',
      'backend:',
      '  type: local # always local here',
      '  local:',
      '    # the LLM',
      '    llm:',
      '      provider: anthropic',
      '    temporal:',
      '      managed: false',
      '      port: 7301',
      '',
    ].join('\n'),
  );
  assert.equal(statSync(file).mode & 0o777, 0o600);

  const invalid = await runCli(['config', 'set', 'backend.local.temporal.ui_port', '99999'], { home: h });
  assert.equal(invalid.code, 2);
  assert.equal(invalid.stderr, `Expected backend.local.temporal.ui_port to be an integer from 1 to 65535, got "99999"\n${file} was not changed.\n`);
  const unknown = await runCli(['config', 'set', 'backend.local.temporal.prot', '1'], { home: h });
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /^unknown config key "backend\.local\.temporal\.prot" \(did you mean "backend\.local\.temporal\.port"\?\)/);
  assert.ok(!/\n\s+at /.test(unknown.stderr), 'no stack trace');

  // overridden by the environment: said so
  const over = await runCli(['config', 'set', 'backend.local.llm.model', 'claude-opus-4-8'], { home: h, env: { STIGMER_LLM_MODEL: 'x-model' } });
  assert.match(over.stdout, /Note: STIGMER_LLM_MODEL \(env\) takes precedence over the file, so the effective value stays x-model\./);

  // a running stack: restart to apply
  writeFileSync(join(h, 'state.json'), JSON.stringify({ version: 1, tasks: { 'start-server': { kind: 'process', status: 'ready', undo: [] } } }));
  const running = await runCli(['config', 'set', 'backend.local.llm.model', 'claude-sonnet-4-5'], { home: h });
  assert.match(running.stdout, /restart the stack for this to apply: stigmer local restart\n$/);
  rmSync(join(h, 'state.json'));
});

test('stigmer config set creates the file; a broken file is reported with its position', async (t) => {
  const h = home(t);
  const file = join(h, 'config.yaml');
  const created = await runCli(['config', 'set', 'backend.local.server.args', '[--port, "9"]'], { home: h });
  assert.equal(created.code, 0, created.stderr);
  assert.equal(readFileSync(file, 'utf8'), 'backend:\n  local:\n    server:\n      args: [ --port, "9" ]\n');
  writeFileSync(file, 'backend:\n  local:\n    temporal:\n      port: high\n');
  const get = await runCli(['config', 'get', 'backend.type'], { home: h });
  assert.equal(get.code, 2);
  assert.match(get.stderr, new RegExp(`^${file.replace(/[.]/g, '\\.')}:4:13: Expected backend\\.local\\.temporal\\.port to be an integer from 1 to 65535, got "high"\n`));
  // set can repair the very key that is broken
  const fix = await runCli(['config', 'set', 'backend.local.temporal.port', '7233'], { home: h });
  assert.equal(fix.code, 0, fix.stderr);
  assert.equal(readFileSync(file, 'utf8'), 'backend:\n  local:\n    temporal:\n      port: 7233\n');
});

test('config set on the shipped template uncomments the line the template shows, in its section; unset puts it back byte for byte', async (t) => {
  const h = home(t);
  const init = await runCli(['init', '--no-download'], { home: h });
  assert.equal(init.code, 0, init.stderr);
  const file = join(h, 'config.yaml');
  const template = readFileSync(file, 'utf8');
  const sets: [string, string][] = [
    ['backend.local.temporal.port', '7300'],
    ['backend.local.server.command', '/opt/stigmer-server'],
    ['backend.local.endpoint', '127.0.0.1:9999'],
    ['backend.cloud.endpoint', 'api.example.com:443'],
    ['backend.local.llm.model', 'llama3.2'],
  ];
  for (const [key, value] of sets) {
    const r = await runCli(['config', 'set', key, value], { home: h });
    assert.equal(r.code, 0, r.stderr);
  }
  // Each change is the template's own line, uncommented in place; its comment stays in its column.
  const swap = (text: string, from: string, to: string): string => {
    assert.ok(text.includes(from), `template line ${JSON.stringify(from)}`);
    return text.replace(from, to);
  };
  let expected = template;
  expected = swap(expected, '      # port: 7233                   # gRPC frontend', '      port: 7300                     # gRPC frontend');
  expected = swap(expected, '    # server:\n    #   command: /path/to/stigmer-server   #', '    server:\n      command: /opt/stigmer-server         #');
  expected = swap(expected, '    # endpoint: localhost:50051     #', '    endpoint: 127.0.0.1:9999        #');
  expected = swap(expected, '  # cloud:\n  #   endpoint: api.stigmer.ai:443', '  cloud:\n    endpoint: api.example.com:443');
  expected = swap(expected, '      # model: qwen2.5-coder:7b       #', '      model: llama3.2                 #');
  assert.equal(readFileSync(file, 'utf8'), expected);

  // unset (and set ... null) bring back the template's commented default, comment included
  for (const [i, [key]] of sets.entries()) {
    const r = await runCli(i % 2 ? ['config', 'set', key, 'null'] : ['config', 'unset', key], { home: h });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`^Unset ${key.replace(/\./g, '\\.')} in .*; it is back to its default, `));
  }
  assert.equal(readFileSync(file, 'utf8'), template);
  assert.ok(!readFileSync(file, 'utf8').includes('"null"'));
  const again = await runCli(['config', 'unset', 'backend.local.temporal.port'], { home: h });
  assert.equal(again.code, 0);
  assert.equal(again.stdout, `backend.local.temporal.port is not set in ${file}; nothing changed\n`);
  const bad = await runCli(['config', 'unset', 'backend.local.temporal.prot'], { home: h });
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /did you mean "backend\.local\.temporal\.port"/);

  // A key already set, set again with a longer or shorter value: its comment keeps its column too.
  for (const [key, value] of [
    ['backend.local.llm.provider', 'anthropic'],
    ['backend.local.llm.provider', 'openai'],
    ['backend.local.temporal.port', '7300'],
    ['backend.local.temporal.port', '17300'],
    ['backend.local.temporal.port', '9'],
  ]) {
    const r = await runCli(['config', 'set', key!, value!], { home: h });
    assert.equal(r.code, 0, r.stderr);
  }
  expected = swap(template, '      provider: ollama              #', '      provider: openai              #');
  expected = swap(expected, '      # port: 7233                   # gRPC frontend', '      port: 9                        # gRPC frontend');
  assert.equal(readFileSync(file, 'utf8'), expected);
});

test('config unset of the only key of a section comments the section out; a user comment on the line stays', async (t) => {
  const h = home(t);
  const file = writeConfig(h, 'backend:\n  local:\n    temporal:\n      port: 7301   # mine\n    llm:\n      provider: ollama\n');
  const r = await runCli(['config', 'unset', 'backend.local.temporal.port'], { home: h });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(readFileSync(file, 'utf8'), 'backend:\n  local:\n    # temporal:\n    #   port: 7233  # mine\n    llm:\n      provider: ollama\n');
  const back = await runCli(['config', 'set', 'backend.local.temporal.port', '7400'], { home: h });
  assert.equal(back.code, 0, back.stderr);
  assert.equal(readFileSync(file, 'utf8'), 'backend:\n  local:\n    temporal:\n      port: 7400    # mine\n    llm:\n      provider: ollama\n');
});
