// Bundles the CLI (tsc's dist/src/cli.js) into dist/bundle/: ESM with code splitting, so every
// dynamic import() stays a lazy chunk that loads only in the commands that need it.
//
// Why: node 20's ESM loader costs ~0.5 ms a file, and `stigmer validate` loaded ~110 of them
// (ours, yaml's ~60 CommonJS files, commander); bundled it loads ~20. Measured here (medians):
//   @grpc/grpc-js    66 CommonJS files: ~85 ms from node_modules, ~55 ms bundled (min of 8 on a
//     busy machine); loaded lazily by the grpc probe and by local status, which must start fast
//   import('undici') 74 ms from node_modules, 43 ms bundled, but on no path that must start fast
//     (downloads, LLM calls in the agent-runner): 1 MB kept external
//   tar and listr2 gain nothing worth it (13 -> 13 ms, 17 -> 14 ms) and stay external, as does
//   @inquirer/password (only loaded to prompt); ajv and wait-on are not imported at run time.
//   dotenv stays external too: src/stack/config/dotenv.ts requires it only when a .env exists (it pulls
//   in node:crypto, ~3 ms), which a bundle cannot keep lazy for a synchronous reader.
// Tests import tsc's output under dist/src, dist/tasks and dist/test; bin/stigmer.js runs the
// bundle, so every CLI test runs it. Paths are found from the package root (src/util/paths.ts), never
// relative to a module's own file, so they hold in any chunk.
import { build } from 'esbuild';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const BUNDLED = new Set(['yaml', 'commander', '@grpc/grpc-js']);
const pkg = JSON.parse(readFileSync('package.json', 'utf8'));
const external = Object.keys(pkg.dependencies).filter((name) => !BUNDLED.has(name));

// Bundled CommonJS code (yaml, commander, grpc-js) requires node's builtins
// through esbuild's `__require` shim, which needs a `require` in its chunk; an ESM chunk has none.
// Only chunks that name `require` get one (createRequire costs ~50 us a chunk).
const REQUIRE_BANNER = "import { createRequire as __stigmerCreateRequire } from 'node:module'; const require = __stigmerCreateRequire(import.meta.url);\n";
const namesRequire = /(?<![\w$.])require(?![\w$])/;

/** Whether node would load `pkg` (imported from ESM) as CommonJS. */
function isCommonJs(pkg) {
  const file = fileURLToPath(import.meta.resolve(pkg));
  if (file.endsWith('.cjs')) return true;
  if (file.endsWith('.mjs')) return false;
  for (let dir = dirname(file); dir !== dirname(dir); dir = dirname(dir)) {
    try {
      return JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')).type !== 'module';
    } catch {
      // no package.json here
    }
  }
  return true;
}

// A dynamic import() of a bundled CommonJS package becomes a chunk that exports only `default`
// (esbuild cannot know CommonJS export names), where node gives named exports too: so
// `const { stringify } = await import('yaml')` got undefined. Such an import gets a small ESM
// facade that names the package's exports, read from the package at build time.
const commonJsFacade = {
  name: 'commonjs-dynamic-import-facade',
  setup(b) {
    b.onResolve({ filter: /^[^./]/ }, (args) =>
      args.kind === 'dynamic-import' && BUNDLED.has(args.path) && isCommonJs(args.path) ? { path: args.path, namespace: 'cjs-facade' } : undefined,
    );
    b.onLoad({ filter: /.*/, namespace: 'cjs-facade' }, (args) => {
      const names = Object.keys(createRequire(import.meta.url)(args.path)).filter((n) => /^[A-Za-z_$][\w$]*$/.test(n) && n !== 'default');
      const contents = `const m = require(${JSON.stringify(args.path)});\nexport default m;\nexport const { ${names.join(', ')} } = m;\n`;
      return { contents, resolveDir: process.cwd(), loader: 'js' };
    });
  },
};

// `stigmer validate` and `graph` (src/commands/engine-light.ts) are one script of their own,
// dist/bundle/engine-light.cjs: in the split bundle their path loaded ~45 chunks (~0.5-1 ms each).
// src/cli.ts's import of it is kept as is (external) in the split bundle: ./engine-light.js, the
// loader below; the commander path imports the module as a chunk of the split bundle. The script
// inlines its lazy imports too (evaluated only when taken), except the task kinds': validate and
// graph use only the registry's names, never load a kind, so those imports stay external (and
// would fail if ever taken).
//
// Most of what is left of their start is V8 compiling and running cold code (yaml's parser, the
// loader): the script is a CommonJS one (node 20 has no code cache for ESM), which the loader
// compiles with V8's code cache, engine-light.cache, made here after a validate and a graph ran
// (so it holds the functions they compile). V8 checks the cache against the source and its own
// version and flags, and compiles as usual when it does not fit (another node, --cpu-prof). A
// script cannot import(): the code it runs requires (the validators) instead.
const LIGHT = 'engine-light';
const lightEntry = {
  name: 'engine-light-entry',
  setup(b) {
    b.onResolve({ filter: /engine-light\.js$/ }, (args) => (args.importer.endsWith('/dist/src/cli.js') ? { path: `./${LIGHT}.js`, external: true } : undefined));
  },
};
const kindsExternal = {
  name: 'kinds-external',
  setup(b) {
    b.onResolve({ filter: /\/tasks\/[\w-]+\.js$/ }, (args) => (args.kind === 'dynamic-import' && args.importer.endsWith('/dist/src/commands/kinds.js') ? { path: args.path, external: true } : undefined));
  },
};
// The tasks validator (dist/validators/tasks.js, ~180 KB of ajv's code that validate and graph
// always run) is bundled into the script, so the code cache holds it too: load.ts's require of it
// becomes an import of that file, here only.
const TASKS_VALIDATOR_REQUIRE = "createRequire(import.meta.url)(validatorFile('tasks'))";
const inlineTasksValidator = {
  name: 'inline-tasks-validator',
  setup(b) {
    b.onLoad({ filter: /\/dist\/src\/engine\/load\.js$/ }, (args) => {
      const text = readFileSync(args.path, 'utf8');
      if (!text.includes(TASKS_VALIDATOR_REQUIRE)) throw new Error(`bundle: ${args.path} no longer says ${TASKS_VALIDATOR_REQUIRE}; update scripts/bundle.mjs`);
      const validator = JSON.stringify(join(process.cwd(), 'dist/validators/tasks.js'));
      return { contents: `import * as __stigmerTasksValidator from ${validator};\n${text.replace(TASKS_VALIDATOR_REQUIRE, '__stigmerTasksValidator')}`, loader: 'js' };
    });
  },
};
const LIGHT_LOADER = `// Written by scripts/bundle.mjs: runs ${LIGHT}.cjs (src/commands/engine-light.ts as one CommonJS
// script) with V8's code cache ${LIGHT}.cache when there is one that fits.
import { readFileSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Script } from 'node:vm';

const file = fileURLToPath(import.meta.url).replace(/\\.js$/, '.cjs');
const cache = file.replace(/\\.cjs$/, '.cache');
let cachedData;
try {
  // V8 checks the source's length, not its text: a script changed after the build (same length)
  // must not run the old code, so a cache older than the script is not used
  if (statSync(cache).mtimeMs >= statSync(file).mtimeMs) cachedData = readFileSync(cache);
} catch {
  // no cache: V8 compiles as usual
}
// the function node wraps a CommonJS module in; strict, as the ES modules it was bundled from
export const script = new Script(\`(function (exports, require, module, __filename, __dirname, __stigmerImportMetaUrl) {"use strict";\${readFileSync(file, 'utf8')}\\n})\`, { filename: file, ...(cachedData ? { cachedData } : {}) });
const module = { exports: {} };
script.runInThisContext()(module.exports, createRequire(file), module, file, dirname(file), pathToFileURL(file).href);
export const { runLight, parseLight } = module.exports;
`;

const common = {
  outdir: 'dist/bundle',
  bundle: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  external,
  // the version's one home is package.json: inlined, so `stigmer --version` reads no file (src/util/version.ts)
  define: { __STIGMER_VERSION__: JSON.stringify(pkg.version) },
  write: false,
  metafile: process.argv.includes('--analyze'),
  logLevel: 'warning',
};
// `stigmer local status` (src/commands/local-status.ts; goal: 2x `node -e 0`) and `stigmer status`
// (src/commands/status-light.ts; goal 1.5x) are files of their own too, dist/bundle/local-status.js
// and status-light.js: their paths loaded ~50 and ~20 chunks of the split bundle. The one lazy
// import that must stay lazy, local status's gRPC client (grpc-js, for a stack without a live
// supervisor), is an entry of the split bundle, which it imports as ./grpc-client.js.
const STATUS_LIGHT = ['local-status.js', 'status-light.js'];
const GRPC_CLIENT = 'dist/src/process/grpc-client.js';
const statusEntry = {
  name: 'status-light-entries',
  setup(b) {
    b.onResolve({ filter: /\/(local-status|status-light)\.js$/ }, (args) =>
      args.importer.endsWith('/dist/src/cli.js') ? { path: `./${args.path.slice(args.path.lastIndexOf('/') + 1)}`, external: true } : undefined,
    );
  },
};
const grpcClientExternal = {
  name: 'grpc-client-external',
  setup(b) {
    b.onResolve({ filter: /\/grpc-client\.js$/ }, (args) =>
      args.kind === 'dynamic-import' && join(args.resolveDir, args.path) === join(process.cwd(), GRPC_CLIENT) ? { path: './grpc-client.js', external: true } : undefined,
    );
  },
};
const [result, light, ...statusLight] = await Promise.all([
  build({ ...common, entryPoints: { cli: 'dist/src/cli.js', 'grpc-client': GRPC_CLIENT }, splitting: true, plugins: [commonJsFacade, lightEntry, statusEntry] }),
  build({
    ...common,
    entryPoints: { [LIGHT]: `dist/src/commands/${LIGHT}.js` },
    format: 'cjs',
    outExtension: { '.js': '.cjs' },
    define: { ...common.define, 'import.meta.url': '__stigmerImportMetaUrl' },
    plugins: [kindsExternal, inlineTasksValidator],
  }),
  ...STATUS_LIGHT.map((f) => build({ ...common, entryPoints: { [f.replace(/\.js$/, '')]: `dist/src/commands/${f}` }, splitting: false, plugins: [commonJsFacade, grpcClientExternal] })),
]);

// `stigmer down` has a bundle of its own, one file (src/down-cli.ts): a down through the supervisor
// loaded ~40 chunks of the split bundle above (~0.5 ms each), a third of its time. Its fallback,
// the whole CLI, stays the split bundle's cli.js.
// In that one file every lazy import is inlined (and a static import of an external package it
// holds, listr2's, is hoisted to the top): the lazy imports a down never takes (the engine, the
// live view, the foreground's log follower) are left out, as a module that says so if ever loaded.
const NOT_IN_DOWN = /\/(engine\/drivers|engine\/logs|render\/tty)\.js$/;
const downApart = {
  name: 'down-apart',
  setup(b) {
    b.onResolve({ filter: /^\.\/cli\.js$/ }, (args) => ({ path: args.path, external: true }));
    b.onResolve({ filter: NOT_IN_DOWN }, (args) => (args.kind === 'dynamic-import' ? { path: args.path, namespace: 'not-in-down' } : undefined));
    b.onLoad({ filter: /.*/, namespace: 'not-in-down' }, (args) => ({
      contents: `throw new Error(${JSON.stringify(`${args.path} is not in the down bundle (scripts/bundle.mjs NOT_IN_DOWN)`)});\n`,
      loader: 'js',
    }));
  },
};
const down = await build({ ...common, entryPoints: { down: 'dist/src/down-cli.js' }, splitting: false, plugins: [commonJsFacade, downApart] });

rmSync('dist/bundle', { recursive: true, force: true });
for (const file of [result, ...statusLight, down].flatMap((r) => r.outputFiles)) {
  mkdirSync(dirname(file.path), { recursive: true });
  writeFileSync(file.path, namesRequire.test(file.text) ? REQUIRE_BANNER + file.text : file.text);
}
for (const file of light.outputFiles) writeFileSync(file.path, file.text);
writeFileSync(`dist/bundle/${LIGHT}.js`, LIGHT_LOADER);

// The code cache: a validate and a graph of the packaged stack file, in a child with a temporary
// STIGMER_HOME (nothing of the builder's is read), then the script's cache after them.
{
  const home = mkdtempSync(join(tmpdir(), 'stigmer-bundle-'));
  try {
    const code = `const m = await import(${JSON.stringify(pathToFileURL(`dist/bundle/${LIGHT}.js`).href)});
for (const command of ['validate', 'graph']) if ((await m.runLight([command, '-f', ${JSON.stringify(join(process.cwd(), 'stigmer.tasks.yaml'))}])) !== 0) process.exit(1);
(await import('node:fs')).writeFileSync(${JSON.stringify(`dist/bundle/${LIGHT}.cache`)}, m.script.createCachedData());`;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', code], { cwd: process.cwd(), env: { ...process.env, STIGMER_HOME: home }, stdio: ['ignore', 'ignore', 'inherit'] });
    if (r.status !== 0) throw new Error(`bundle: making dist/bundle/${LIGHT}.cache failed (exit ${r.status ?? r.signal})`);
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
}
if (result.metafile) {
  const { analyzeMetafile } = await import('esbuild');
  process.stdout.write(await analyzeMetafile(result.metafile));
  process.stdout.write(await analyzeMetafile(light.metafile));
  for (const r of statusLight) process.stdout.write(await analyzeMetafile(r.metafile));
}
