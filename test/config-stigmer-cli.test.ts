/**
 * The real Stigmer CLI writes the same ~/.stigmer/config.yaml (yaml.v3, 4-space indents, its
 * GetDefault() plus what its commands set): stigmer accepts its keys, keeps them through
 * `config set`, lists them as kept, masks its secrets, and still rejects other unknown keys.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cleanupHome, runCli, tempHome } from './helpers.js';

// What `stigmer` (the Go CLI) saves: a header, then yaml.Marshal of GetDefault() and a few settings.
const REAL_STIGMER = `# Stigmer CLI Configuration
# For configuration options and examples, see:
# https://github.com/stigmer/stigmer/blob/main/docs/cli/configuration.md

backend:
    type: local
    local:
        llm:
            provider: anthropic
            api_key: sk-ant-from-the-go-cli-5e3d1c
        temporal:
            managed: true
        execution:
            mode: local
            auto_pull: true
            cleanup: true
            ttl: 3600
    cloud:
        endpoint: api.stigmer.ai:443
        token: stg-token-9a8b7c6d5e
        org_id: org-123
context:
    organization: acme
`;

test("the real Stigmer CLI's config file: valid, its keys kept and listed as such, secrets masked", async (t) => {
  const home = tempHome();
  t.after(() => cleanupHome(home));
  const file = join(home, 'config.yaml');
  writeFileSync(file, REAL_STIGMER);
  const env = { STIGMER_LLM_PROVIDER: undefined, ANTHROPIC_API_KEY: undefined };
  const list = await runCli(['config', 'list', '--show-origin'], { home, env });
  assert.equal(list.code, 0, list.stderr);
  assert.match(list.stdout, /backend\.local\.execution\.mode +local +file \(kept for the Stigmer CLI\)/);
  assert.match(list.stdout, /backend\.local\.execution\.ttl +3600 +file \(kept for the Stigmer CLI\)/);
  assert.match(list.stdout, /context\.organization +acme +file \(kept for the Stigmer CLI\)/);
  assert.match(list.stdout, /backend\.local\.llm\.api_key +\*{8} +file \(kept for the Stigmer CLI\)/);
  assert.match(list.stdout, /backend\.local\.llm\.provider +anthropic +file/);
  assert.doesNotMatch(list.stdout, /backend\.local\.execution\.sandbox_image/, 'kept keys the file lacks are not listed');
  for (const secret of ['sk-ant-from-the-go-cli-5e3d1c', 'stg-token-9a8b7c6d5e']) assert.ok(!list.stdout.includes(secret));
  const get = await runCli(['config', 'get', 'backend.cloud.token'], { home, env });
  assert.equal(get.stdout, '********\n');

  const set = await runCli(['config', 'set', 'backend.local.temporal.port', '7300'], { home, env });
  assert.equal(set.code, 0, set.stderr);
  const after = readFileSync(file, 'utf8');
  for (const line of ['        execution:', '            ttl: 3600', '            api_key: sk-ant-from-the-go-cli-5e3d1c', '    organization: acme', '# Stigmer CLI Configuration']) {
    assert.ok(after.includes(`${line}\n`), `kept: ${line}`);
  }
  const setKept = await runCli(['config', 'set', 'backend.local.execution.mode', 'sandbox'], { home, env });
  assert.equal(setKept.code, 0, setKept.stderr);
  assert.match(readFileSync(file, 'utf8'), /mode: sandbox/);

  writeFileSync(file, REAL_STIGMER.replace('        execution:', '        executon:'));
  const typo = await runCli(['config', 'list'], { home, env });
  assert.equal(typo.code, 2);
  assert.match(typo.stderr, /config\.yaml:13:9: unknown key "backend\.local\.executon" \(did you mean "execution"\?\)/);
});
