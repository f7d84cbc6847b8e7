#!/usr/bin/env node
// The CLI is the bundle `npm run build` writes (a published package ships it built).
import { readFileSync } from 'node:fs';

/** package.json's version, or undefined when it cannot be read (the bundle then answers). */
function packageVersion() {
  try {
    return JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')).version;
  } catch {
    return undefined;
  }
}

// Scripts call `stigmer --version` often: it is answered here, before the bundle's first chunk loads.
const args = process.argv.slice(2);
const version = args.length === 1 && (args[0] === '--version' || args[0] === '-V') ? packageVersion() : undefined;
if (typeof version === 'string') {
  process.stdout.write(`${version}\n`);
} else {
  try {
    // `down` has a bundle of its own, one file to load (src/down-cli.ts; it runs cli.js for what it does not take)
    if (args[0] === 'down') await import('../dist/bundle/down.js');
    else await import('../dist/bundle/cli.js');
  } catch (err) {
    const missing = /dist\/bundle\/(cli|down)\.js/.exec(err?.code === 'ERR_MODULE_NOT_FOUND' ? String(err.message) : '');
    if (!missing) throw err;
    const root = new URL('..', import.meta.url).pathname;
    process.stderr.write(`stigmer: this checkout is not built yet (no ${missing[0]})\n  hint: run: npm run build   (in ${root})\n`);
    process.exit(1);
  }
}
