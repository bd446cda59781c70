// The import rules of src/ (docs/DESIGN.md "Map of the source"), checked on the TypeScript syntax
// tree of every file (type-only imports count: they are arrows of the design too):
//
// - src/protocol/ is free of I/O and clocks: nothing it imports, directly or through other files,
//   is a Node built-in or a package, and none of those files reads a clock or sets a timer
//   (Date, performance.now, process.hrtime, setTimeout, setInterval, setImmediate, Math.random);
// - src/runtime/ does not import src/threads/, and src/threads/ does not import src/runtime/,
//   directly or through other files;
// - no import cycle between files anywhere in src/, and none between folders.
//
// A failure prints the offending chain of imports.

import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { dirname, join, relative, resolve } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

// ---- Allow-list: violations that exist on main today ------------------------------------------
// Each entry names the item of issue 11 whose change removes it. Remove an entry when its
// violation is gone (the test says which entries no longer match anything). Do not add entries.

/** Direct imports the runtime/threads rules let pass, as 'importer -> imported'. */
const allowedImports: readonly string[] = [
  // issue 11 item 3 (one door: structured clone and worker plumbing move to channel/ or a shared module)
  'src/runtime/cluster-node.ts -> src/threads/clone.ts',
  'src/runtime/cluster-node.ts -> src/threads/worker.ts',
  // issue 11 item 3 (appEntryUrl, isTypeScript and the thread config move to channel/ or a shared module)
  'src/runtime/program.ts -> src/threads/module-kind.ts',
  'src/runtime/program.ts -> src/threads/worker.ts',
  // issue 11 item 3 (the heap service's app-side type moves to channel/ or a shared module)
  'src/threads/setup.ts -> src/runtime/heap-service.ts',
];

/** Import cycles between files that may stay, each as the set of its files. */
const allowedFileCycles: readonly (readonly string[])[] = [
  // issue 11 item 1 (the engine as parts: coherence implementations composed, not inherited)
  ['src/protocol/engine.ts', 'src/protocol/hlrc.ts', 'src/protocol/sc.ts'],
];

/** Import cycles between folders that may stay, each as the set of its folders. */
const allowedFolderCycles: readonly (readonly string[])[] = [
  // issue 11 item 3 (runtime never imports threads), the same imports as in allowedImports
  ['runtime', 'threads'],
];
// -----------------------------------------------------------------------------------------------

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const clockGlobals = new Set(['setTimeout', 'setInterval', 'setImmediate', 'clearTimeout', 'clearInterval', 'clearImmediate']);
const clockMembers = new Set(['Date.now', 'performance.now', 'performance.timeOrigin', 'process.hrtime', 'Math.random']);
const builtins = new Set(builtinModules);

interface Edge { from: string; to: string; line: number; typeOnly: boolean }
interface SourceInfo { imports: Edge[]; clocks: string[] }

function listSources(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir).sort()) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...listSources(path));
    else if (name.endsWith('.ts') && !name.endsWith('.d.ts')) out.push(relative(root, path));
  }
  return out;
}

/** 'src/a/b.ts' for a relative specifier, the specifier itself ('node:fs', 'msgpackr') otherwise. */
function target(from: string, specifier: string): string {
  if (!specifier.startsWith('.')) return specifier;
  return relative(root, resolve(root, dirname(from), specifier)).replace(/\.js$/, '.ts');
}

function scan(file: string): SourceInfo {
  const text = readFileSync(join(root, file), 'utf8');
  const source = ts.createSourceFile(file, text, ts.ScriptTarget.ES2022, true, ts.ScriptKind.TS);
  const imports: Edge[] = [];
  const clocks: string[] = [];
  const lineOf = (node: ts.Node) => source.getLineAndCharacterOfPosition(node.getStart(source)).line + 1;
  const add = (specifier: ts.Expression | undefined, node: ts.Node, typeOnly: boolean) => {
    if (specifier !== undefined && ts.isStringLiteralLike(specifier)) imports.push({ from: file, to: target(file, specifier.text), line: lineOf(node), typeOnly });
  };
  const visit = (node: ts.Node): void => {
    if (ts.isImportDeclaration(node)) add(node.moduleSpecifier, node, node.importClause?.isTypeOnly ?? false);
    else if (ts.isExportDeclaration(node)) add(node.moduleSpecifier, node, node.isTypeOnly);
    else if (ts.isImportEqualsDeclaration(node) && ts.isExternalModuleReference(node.moduleReference)) add(node.moduleReference.expression, node, node.isTypeOnly);
    else if (ts.isCallExpression(node) && (node.expression.kind === ts.SyntaxKind.ImportKeyword ||
      (ts.isIdentifier(node.expression) && node.expression.text === 'require'))) add(node.arguments[0], node, false);
    else if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument)) add(node.argument.literal as ts.Expression, node, true);
    if (ts.isPropertyAccessExpression(node) && clockMembers.has(node.getText(source).replace(/\s/g, ''))) clocks.push(`${node.getText(source)} (line ${lineOf(node)})`);
    if (ts.isNewExpression(node) && ts.isIdentifier(node.expression) && node.expression.text === 'Date') clocks.push(`new Date (line ${lineOf(node)})`);
    if (ts.isIdentifier(node) && clockGlobals.has(node.text) && !ts.isPropertyAccessExpression(node.parent)) clocks.push(`${node.text} (line ${lineOf(node)})`);
    ts.forEachChild(node, visit);
  };
  visit(source);
  return { imports, clocks };
}

const files = listSources(join(root, 'src'));
const info = new Map(files.map((file) => [file, scan(file)]));
const used = new Set<string>();

function isAllowed(edge: Edge): boolean {
  const key = `${edge.from} -> ${edge.to}`;
  if (!allowedImports.includes(key)) return false;
  used.add(key);
  return true;
}

const showEdge = (edge: Edge) => `${edge.from}:${edge.line} imports ${edge.typeOnly ? '(type) ' : ''}${edge.to}`;

/** The shortest chain of imports from `start` to a module `goal` accepts, skipping allowed edges. */
function chainTo(start: string, goal: (module: string) => boolean, skipAllowed: boolean): Edge[] | null {
  const previous = new Map<string, Edge | null>([[start, null]]);
  const queue = [start];
  while (queue.length > 0) {
    const at = queue.shift()!;
    for (const edge of info.get(at)?.imports ?? []) {
      if (previous.has(edge.to) || (skipAllowed && isAllowed(edge))) continue;
      previous.set(edge.to, edge);
      if (goal(edge.to)) {
        const chain: Edge[] = [];
        for (let step: Edge | null | undefined = edge; step; step = previous.get(step.from)) chain.unshift(step);
        return chain;
      }
      if (info.has(edge.to)) queue.push(edge.to);
    }
  }
  return null;
}

/** Strongly connected components of more than one member (Tarjan). */
function cycles(nodes: string[], next: (node: string) => string[]): string[][] {
  let counter = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const out: string[][] = [];
  const connect = (node: string): void => {
    index.set(node, counter);
    low.set(node, counter);
    counter += 1;
    stack.push(node);
    onStack.add(node);
    for (const other of next(node)) {
      if (!index.has(other)) {
        connect(other);
        low.set(node, Math.min(low.get(node)!, low.get(other)!));
      } else if (onStack.has(other)) {
        low.set(node, Math.min(low.get(node)!, index.get(other)!));
      }
    }
    if (low.get(node) === index.get(node)) {
      const component: string[] = [];
      let member: string;
      do {
        member = stack.pop()!;
        onStack.delete(member);
        component.push(member);
      } while (member !== node);
      if (component.length > 1) out.push(component.sort());
    }
  };
  for (const node of nodes) if (!index.has(node)) connect(node);
  return out;
}

/** One closed walk through a component, for the message: a -> b -> ... -> a. */
function walkOf(component: string[], next: (node: string) => string[]): string {
  const members = new Set(component);
  const start = component[0]!;
  const previous = new Map<string, string>();
  const queue = [start];
  while (queue.length > 0) {
    const at = queue.shift()!;
    for (const other of next(at)) {
      if (!members.has(other)) continue;
      if (other === start) {
        const path = [start];
        for (let step: string | undefined = at; step !== undefined && step !== start; step = previous.get(step)) path.splice(1, 0, step);
        return [...path, start].join(' -> ');
      }
      if (!previous.has(other)) {
        previous.set(other, at);
        queue.push(other);
      }
    }
  }
  return component.join(', ');
}

const sameSet = (a: readonly string[], b: readonly string[]) => a.length === b.length && [...a].sort().every((x, i) => x === [...b].sort()[i]);

test('src/protocol/ imports no I/O (no Node built-in, no package, directly or through other files)', () => {
  const problems: string[] = [];
  for (const file of files.filter((f) => f.startsWith('src/protocol/'))) {
    const chain = chainTo(file, (module) => !module.startsWith('src/'), false);
    if (chain !== null) problems.push(`${chain.map(showEdge).join('\n    -> ')}${builtins.has(chain.at(-1)!.to.replace(/^node:/, '')) ? ' (a Node built-in)' : ' (a package)'}`);
  }
  assert.deepEqual(problems, [], `the protocol engine must stay free of I/O:\n  ${problems.join('\n  ')}`);
});

test('src/protocol/ and the files it imports read no clock and set no timer', () => {
  const problems: string[] = [];
  const reached = new Set<string>();
  const queue = files.filter((f) => f.startsWith('src/protocol/'));
  for (const file of queue) reached.add(file);
  while (queue.length > 0) {
    const at = queue.shift()!;
    for (const edge of info.get(at)!.imports) if (info.has(edge.to) && !reached.has(edge.to)) { reached.add(edge.to); queue.push(edge.to); }
  }
  for (const file of [...reached].sort()) {
    for (const clock of info.get(file)!.clocks) {
      const via = file.startsWith('src/protocol/') ? '' : ` (imported by the protocol: ${chainTo(files.find((f) => f.startsWith('src/protocol/') && chainTo(f, (m) => m === file, false) !== null)!, (m) => m === file, false)!.map(showEdge).join(' -> ')})`;
      problems.push(`${file}: ${clock}${via}`);
    }
  }
  assert.deepEqual(problems, [], `the protocol engine takes time from its host (engine.now), never from a clock:\n  ${problems.join('\n  ')}`);
});

test('src/runtime/ does not import src/threads/, nor src/threads/ src/runtime/ (directly or through other files)', () => {
  const problems: string[] = [];
  for (const [from, to] of [['src/runtime/', 'src/threads/'], ['src/threads/', 'src/runtime/']] as const) {
    for (const file of files.filter((f) => f.startsWith(from))) {
      const chain = chainTo(file, (module) => module.startsWith(to), true);
      if (chain !== null) problems.push(chain.map(showEdge).join('\n    -> '));
    }
  }
  assert.deepEqual(problems, [], `forbidden imports between runtime/ and threads/:\n  ${problems.join('\n  ')}`);
});

test('no import cycle between files of src/', () => {
  const next = (file: string) => info.get(file)!.imports.map((edge) => edge.to).filter((to) => info.has(to));
  const problems = cycles(files, next)
    .filter((component) => !allowedFileCycles.some((allowed) => sameSet(allowed, component)))
    .map((component) => `${walkOf(component, next)}${component.length > 2 ? ` (the cycle's component: ${component.join(', ')})` : ''}`);
  assert.deepEqual(problems, [], `import cycles:\n  ${problems.join('\n  ')}`);
});

test('no import cycle between folders of src/ (a file directly in src/ is a folder of its own)', () => {
  const folderOf = (file: string) => { const parts = file.split('/'); return parts.length > 2 ? parts[1]! : parts[1]!.replace(/\.ts$/, ''); };
  const edges = new Map<string, Map<string, Edge>>();
  for (const [file, { imports }] of info) {
    for (const edge of imports) {
      if (!info.has(edge.to) || folderOf(file) === folderOf(edge.to)) continue;
      const out = edges.get(folderOf(file)) ?? new Map<string, Edge>();
      if (!out.has(folderOf(edge.to))) out.set(folderOf(edge.to), edge);
      edges.set(folderOf(file), out);
    }
  }
  const next = (folder: string) => [...(edges.get(folder)?.keys() ?? [])];
  const folders = [...new Set(files.map(folderOf))].sort();
  const problems = cycles(folders, next)
    .filter((component) => !allowedFolderCycles.some((allowed) => sameSet(allowed, component)))
    .map((component) => {
      const walk = walkOf(component, next).split(' -> ');
      return walk.slice(1).map((folder, i) => `${walk[i]} -> ${folder} (${showEdge(edges.get(walk[i]!)!.get(folder)!)})`).join('\n    ');
    });
  assert.deepEqual(problems, [], `import cycles between folders:\n  ${problems.join('\n  ')}`);
});

test('the allow-lists name only violations that still exist', (t) => {
  // Not a failure: when another change removes a violation, its entry is reported here for removal.
  const stale = allowedImports.filter((entry) => !used.has(entry));
  const edgeKeys = new Set([...info.values()].flatMap(({ imports }) => imports.map((edge) => `${edge.from} -> ${edge.to}`)));
  const missing = allowedImports.filter((entry) => !edgeKeys.has(entry));
  for (const entry of new Set([...stale, ...missing])) t.diagnostic(`allow-list entry no longer needed: ${entry}`);
  const next = (file: string) => info.get(file)!.imports.map((edge) => edge.to).filter((to) => info.has(to));
  const present = cycles(files, next);
  for (const allowed of allowedFileCycles) {
    if (!present.some((component) => sameSet(allowed, component))) t.diagnostic(`allowed file cycle no longer present: ${allowed.join(', ')}`);
  }
});
