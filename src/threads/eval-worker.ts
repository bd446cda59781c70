// Runs an eval worker's code (new Worker(code, { eval: true })) as Node does: as a CommonJS script, or, when it has
// module syntax (import/export statements, import.meta, top-level await) and no CommonJS reading, as an ES module.

import { createRequire, register } from 'node:module';
import { pathToFileURL } from 'node:url';

/** The messages of V8's SyntaxErrors that only ES module syntax causes in a script (Node's list). */
const moduleSyntaxErrors = new Set([
  'Cannot use import statement outside a module',
  "Unexpected token 'export'",
  "Cannot use 'import.meta' outside a module",
]);

/** The messages of SyntaxErrors that CommonJS's wrapper alone causes: the code may be a module (Node's list). */
const commonJsOnlyErrors = new Set([
  "Identifier 'module' has already been declared",
  "Identifier 'exports' has already been declared",
  "Identifier 'require' has already been declared",
  "Identifier '__filename' has already been declared",
  "Identifier '__dirname' has already been declared",
  'await is only valid in async functions and the top level bodies of modules',
]);

const AsyncFunction = Object.getPrototypeOf(async () => {}).constructor as FunctionConstructor;

type CommonJsBody = (...args: unknown[]) => void;

/**
 * The code compiled as a CommonJS script's body, or 'module' when it is an ES module by Node's detection (Node ≥
 * 20.19 and 22.7 run such eval code as a module rather than fail). A SyntaxError of neither kind is thrown.
 */
function compileEval(code: string): CommonJsBody | 'module' {
  try {
    return new Function('require', 'module', 'exports', '__filename', '__dirname', code) as CommonJsBody;
  } catch (error) {
    if (!(error instanceof SyntaxError)) throw error;
    if (moduleSyntaxErrors.has(error.message)) return 'module';
    if (commonJsOnlyErrors.has(error.message)) {
      // Compiled with no CommonJS variables, in an async function (top-level await): a module if it compiles,
      // or fails only on module syntax.
      try {
        new AsyncFunction(code);
        return 'module';
      } catch (again) {
        if (again instanceof SyntaxError && moduleSyntaxErrors.has(again.message)) return 'module';
        throw error;
      }
    }
    throw error;
  }
}

/**
 * The hooks serving an eval module's text at its URL, file://<cwd>/[eval1] as under Node, so that its relative
 * and bare imports resolve from the cwd. Hooks are per thread: each eval thread registers its own.
 */
const evalHooks = `let url, source;
export function initialize(data) { url = data.url; source = data.source; }
export async function resolve(specifier, context, next) { return specifier === url ? { url, shortCircuit: true } : next(specifier, context); }
export async function load(target, context, next) { return target === url ? { format: 'module', source, shortCircuit: true } : next(target, context); }
`;

export async function runEvalWorker(code: string, argv: readonly string[]): Promise<void> {
  // Node gives eval workers '[worker eval]' as their argv[1], CommonJS or module.
  process.argv = [process.execPath, '[worker eval]', ...argv];
  const body = compileEval(code);
  if (body === 'module') {
    const url = `${pathToFileURL(process.cwd()).href}/[eval1]`;
    register(`data:text/javascript,${encodeURIComponent(evalHooks)}`, { data: { url, source: code } });
    await import(url);
    return;
  }
  // Node runs eval workers as CommonJS scripts with require bound to the cwd.
  const require = createRequire(`${process.cwd()}/[worker eval]`);
  const module = { exports: {} };
  body(require, module, module.exports, '[worker eval]', '.');
}
