/** The README's examples stay true: blocks that show what a command prints are compared with it. */
import { test } from 'node:test';
import assert from 'node:assert/strict';

test('the README shows the stack graph exactly as `stigmer graph` prints it', async () => {
  const { readFileSync } = await import('node:fs');
  const { join } = await import('node:path');
  const { repoRoot, runCli, tempHome, cleanupHome } = await import('./helpers.js');
  const readme = readFileSync(join(repoRoot, 'README.md'), 'utf8');
  const block = /<!-- stigmer graph -->\n```\n([\s\S]*?)```\n/.exec(readme);
  assert.ok(block, 'README.md has the <!-- stigmer graph --> block');
  const home = tempHome();
  try {
    const r = await runCli(['graph', '-f', join(repoRoot, 'stigmer.tasks.yaml')], { home });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(block[1], r.stdout, 'update the README block: node bin/stigmer.js graph -f stigmer.tasks.yaml');
  } finally {
    await cleanupHome(home);
  }
});
