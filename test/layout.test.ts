/**
 * The layout's rules, checked on the import graph of src/ and tasks/ (static imports, `export
 * from` and dynamic `import()`, type-only ones included: a type import is still a dependency):
 *
 * - the engine side (src/model, engine, render, process, util) never imports the Stigmer stack
 *   (src/stack), a task kind (tasks/) or the CLI (src/*.ts, src/commands): it gets its kinds and
 *   its App from its caller;
 * - src/stack never imports tasks/ (the stack's kinds are adapters over src/stack, not the reverse);
 * - no import cycle between folders. src/cli.ts, src/app.ts and src/commands/ count as one folder,
 *   the entry, as the layout draws them on one line.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, posix, relative, resolve, sep } from 'node:path';
import ts from 'typescript';
import { repoRoot } from './helpers.js';

interface Edge {
  /** repo-relative, with / */
  from: string;
  to: string;
}

function sourceFiles(root: string, dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string): void => {
    for (const name of readdirSync(d)) {
      const p = join(d, name);
      if (statSync(p).isDirectory()) walk(p);
      else if (name.endsWith('.ts') && !name.endsWith('.d.ts')) out.push(p);
    }
  };
  walk(join(root, dir));
  return out;
}

const rel = (root: string, p: string): string => relative(root, p).split(sep).join('/');

/** Every relative import of the .ts files under `dirs` of `root`. */
function importEdges(root: string, dirs: string[]): Edge[] {
  const edges: Edge[] = [];
  for (const file of dirs.flatMap((d) => sourceFiles(root, d))) {
    const { importedFiles } = ts.preProcessFile(readFileSync(file, 'utf8'), true, true);
    for (const { fileName } of importedFiles) {
      if (!fileName.startsWith('.')) continue;
      edges.push({ from: rel(root, file), to: rel(root, resolve(dirname(file), fileName.replace(/\.js$/, '.ts'))) });
    }
  }
  return edges;
}

const ENGINE_SIDE = ['src/model/', 'src/engine/', 'src/render/', 'src/process/', 'src/util/'];
const under = (file: string, prefixes: string[]): boolean => prefixes.some((p) => file.startsWith(p));
const isEntry = (file: string): boolean => file.startsWith('src/commands/') || posix.dirname(file) === 'src';

/** The folder an import cycle is counted between. */
function unitOf(file: string): string {
  return isEntry(file) ? 'src (entry: cli.ts, app.ts, commands/)' : posix.dirname(file);
}

/** Every broken rule, one line each, naming the import that breaks it. */
function layoutViolations(edges: Edge[]): string[] {
  const out: string[] = [];
  for (const e of edges) {
    if (under(e.from, ENGINE_SIDE) && (under(e.to, ['src/stack/', 'tasks/']) || isEntry(e.to))) out.push(`engine side imports the stack, a kind or the CLI: ${e.from} -> ${e.to}`);
    if (under(e.from, ['src/stack/']) && under(e.to, ['tasks/'])) out.push(`src/stack imports a task kind: ${e.from} -> ${e.to}`);
  }
  for (const cycle of folderCycles(edges)) out.push(`folder import cycle: ${cycle}`);
  return out;
}

/** Strongly connected sets of folders (Tarjan), each with one import per folder edge as evidence. */
function folderCycles(edges: Edge[]): string[] {
  const next = new Map<string, Map<string, Edge>>();
  for (const e of edges) {
    const a = unitOf(e.from);
    const b = unitOf(e.to);
    if (a === b) continue;
    if (!next.has(a)) next.set(a, new Map());
    if (!next.has(b)) next.set(b, new Map());
    if (!next.get(a)!.has(b)) next.get(a)!.set(b, e);
  }
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const out: string[] = [];
  const visit = (v: string): void => {
    index.set(v, index.size);
    low.set(v, index.get(v)!);
    stack.push(v);
    onStack.add(v);
    for (const w of next.get(v)!.keys()) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) !== index.get(v)) return;
    const scc: string[] = [];
    let w: string;
    do {
      w = stack.pop()!;
      onStack.delete(w);
      scc.push(w);
    } while (w !== v);
    if (scc.length < 2) return;
    const members = new Set(scc);
    const via = scc.flatMap((a) => [...next.get(a)!].filter(([b]) => members.has(b)).map(([, e]) => `${e.from} -> ${e.to}`));
    out.push(`${scc.sort().join(', ')} (via ${via.join('; ')})`);
  };
  for (const v of [...next.keys()].sort()) if (!index.has(v)) visit(v);
  return out;
}

test('the layout rules hold: engine side apart from the stack, src/stack apart from tasks/, no folder cycle', () => {
  const edges = importEdges(repoRoot, ['src', 'tasks']);
  assert.ok(edges.length > 100, `expected the scan to find the imports, got ${edges.length}`);
  assert.deepEqual(layoutViolations(edges), []);
});

test('the layout check catches each kind of violation, static and dynamic', (t) => {
  const root = mkdtempSync(join(tmpdir(), 'stigmer-test-layout-'));
  t.after(() => rmSync(root, { recursive: true, force: true }));
  const write = (path: string, text: string): void => {
    mkdirSync(dirname(join(root, path)), { recursive: true });
    writeFileSync(join(root, path), text);
  };
  write('src/engine/run.ts', "import type { X } from '../model/kind.js';\nexport async function f() { return import('../stack/config/index.js'); }\n");
  write('src/model/kind.ts', 'export type X = 1;\n');
  write('src/render/tty.ts', "export { y } from '../../tasks/exec.js';\n");
  write('src/util/paths.ts', "import '../app.js';\n");
  write('src/app.ts', "import { x } from './stack/server/a.js';\nimport './util/paths.js';\n");
  write('src/stack/config/index.ts', "const k = await import('../../../tasks/check-llm.js');\n");
  write('src/stack/server/a.ts', "import { b } from '../client/b.js';\nexport const a = 1;\n");
  write('src/stack/client/b.ts', "import { a } from '../server/a.js';\nexport const b = 2;\n");
  write('tasks/exec.ts', 'export const y = 1;\n');
  write('tasks/check-llm.ts', "import '../src/model/kind.js';\n");
  // comments and strings that merely mention an import are not imports
  write('src/process/proc.ts', "// import('../stack/local.js')\nconst s = \"from '../stack/x.js'\";\n");

  const found = layoutViolations(importEdges(root, ['src', 'tasks']));
  assert.deepEqual(found.filter((l) => !l.startsWith('folder import cycle')).sort(), [
    'engine side imports the stack, a kind or the CLI: src/engine/run.ts -> src/stack/config/index.ts',
    'engine side imports the stack, a kind or the CLI: src/render/tty.ts -> tasks/exec.ts',
    'engine side imports the stack, a kind or the CLI: src/util/paths.ts -> src/app.ts',
    'src/stack imports a task kind: src/stack/config/index.ts -> tasks/check-llm.ts',
  ]);
  const cycles = found.filter((l) => l.startsWith('folder import cycle'));
  assert.equal(cycles.length, 2, cycles.join('\n'));
  assert.ok(cycles.some((c) => c.startsWith('folder import cycle: src/stack/client, src/stack/server (via ')), cycles.join('\n'));
  assert.ok(cycles.some((c) => c.includes('src (entry: cli.ts, app.ts, commands/), src/util')), cycles.join('\n'));
});
