#!/usr/bin/env node
// The CLI is the bundle `npm run build` writes (a published package ships it built).
try {
  await import('../dist/bundle/cli.js');
} catch (err) {
  if (err?.code !== 'ERR_MODULE_NOT_FOUND' || !String(err.message).includes('dist/bundle/cli.js')) throw err;
  const root = new URL('..', import.meta.url).pathname;
  process.stderr.write(`stigmer: this checkout is not built yet (no dist/bundle/cli.js)\n  hint: run: npm run build   (in ${root})\n`);
  process.exit(1);
}
