// The program's main thread runs in a worker thread of dsm's, and its uncaught
// exception reaches src/runtime/program.ts through Node's worker error
// serialization (lib/internal/error_serdes.js), which keeps errors tagged
// Error and clones anything else. A DOMException (an AbortSignal's reason, a
// DataCloneError, a TimeoutError) is not tagged Error, and its name, message
// and stack are getters on its prototype: it arrived as `{}`, and dsm printed
// `{}` where node prints the exception. Session 20: such an object gets, just
// before it leaves, the text node prints for it (the source line it points at,
// then util.inspect's view) as its own util.inspect.custom, which Node's
// serialization sends as that text; program.ts prints it as it prints any
// uncaught value (util.inspect).

import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { inspect } from 'node:util';
import { framesFromArrow } from '../util/stack-frames.js';

const nodeMajor = Number(process.versions.node.split('.')[0]);

/** Exceptions a CommonJS main module threw as it loaded: node's uncaught exceptions there, not rejections. */
const thrownByCommonJsMain = new WeakSet<object>();

/** A CommonJS main module threw `error` as it loaded (src/threads/entry.ts loads it inside an ES module). */
export function thrownByMainModule(error: unknown): void {
  if (typeof error === 'object' && error !== null) thrownByCommonJsMain.add(error);
}

/**
 * In the program's main thread: an uncaught exception that Node's worker error
 * serialization would flatten (an object not tagged Error that has a stack)
 * goes as the text node prints. `ownFrame` says which stack lines are dsm's own
 * (they are left out, as program.ts leaves them out of an error's stack).
 */
export function keepUncaughtText(ownFrame: (line: string) => boolean): void {
  process.on('uncaughtExceptionMonitor', (error, origin) => {
    if (typeof error !== 'object' || error === null) return;
    if (typeof (error as { stack?: unknown }).stack !== 'string') return;
    // The program handles it: the thread goes on, nothing leaves.
    if (origin === 'uncaughtException' && process.listenerCount('uncaughtException') > 0) return;
    if (Object.prototype.toString.call(error) === '[object Error]') {
      withNodesArrow(error as Error);
      return;
    }
    if (Object.hasOwn(error, inspect.custom)) return;
    let text: string;
    try {
      const shown = inspect(error).split('\n').filter((line) => !(line.trimStart().startsWith('at ') && ownFrame(line))).join('\n');
      const arrow = arrowOf(shown, origin === 'unhandledRejection' && !thrownByCommonJsMain.has(error));
      // Node 22 and later print a DOMException as they print an Error (the arrow, a blank line, the stack); Node 20 as
      // any other value (a blank line, the arrow, the value).
      text = nodeMajor >= 22 ? `${arrow}${arrow === '' ? '' : '\n'}${shown}` : `\n${arrow}${shown}`;
      Object.defineProperty(error, inspect.custom, { value: () => text, configurable: true, enumerable: false, writable: true });
    } catch {
      // A frozen object, an inspect that throws: it goes as before.
    }
  });
}

/**
 * An Error leaves with its stack, and src/runtime/program.ts prints an arrow over the stack's top frame when that
 * frame is in a file of the program. Two arrows node prints are known only here, so they go on the stack's front
 * (program.ts prints a stack that starts with an arrow as it is). An unhandled 'error' event (an EventEmitter's
 * emit with no 'error' listener): node points at the `throw er` in node:events and appends where the event was
 * emitted (the stack events.js keeps on the error for node's printing; users7/emitter-errors.mjs). An error made
 * and thrown in Node's own code (readFileSync's ENOENT): node points at that frame, in node:fs.
 */
function withNodesArrow(error: Error): void {
  try {
    const stack = error.stack!;
    const enhance = Object.getOwnPropertySymbols(error).find((symbol) => symbol.description === 'kEnhanceStackBeforeInspector');
    const enhancer = enhance === undefined ? undefined : (error as unknown as Record<symbol, unknown>)[enhance];
    if (typeof enhancer === 'function') {
      const enhanced = (enhancer as () => unknown).call(error);
      if (typeof enhanced !== 'string') return;
      const arrow = emitThrowArrow();
      error.stack = arrow === '' ? enhanced : `${arrow}\n${enhanced}`;
      return;
    }
    const top = framesFromArrow(stack)[0];
    if (top === undefined || !/^\s*at (?:.*?\()?node:/.test(top)) return;
    const arrow = arrowOf(stack, true);
    if (arrow !== '') error.stack = `${arrow}\n${stack}`;
  } catch {
    // A frozen error, a stack that cannot be set: it goes as before.
  }
}

/** Node's arrow over the `throw er; // Unhandled 'error' event` of node:events ('' if not found). */
function emitThrowArrow(): string {
  const natives = (process as unknown as { binding(name: string): Record<string, string> }).binding('natives');
  const lines = natives.events?.split(/\r?\n/) ?? [];
  const index = lines.findIndex((line) => line.includes("throw er; // Unhandled 'error' event"));
  if (index < 0) return '';
  const source = lines[index]!;
  return `node:events:${index + 1}\n${source}\n${' '.repeat(source.indexOf('throw'))}^\n`;
}

/**
 * Node's "arrow" over such an exception: the location, source line and a caret
 * (no blank line after it). For a rejection (which an ES module's top-level
 * throw is, too) it points at the top frame, where the exception was made,
 * often in Node's own code; for an exception thrown in a callback, at the top
 * frame in the program ('' when there is none or its source is not readable).
 */
function arrowOf(stack: string, rejection: boolean): string {
  const frames = framesFromArrow(stack);
  const located = frames.map((line) => /^\s*at (?:.*?\()?((?:file:\/\/|\/|node:)[^()]*?):(\d+):(\d+)\)?$/.exec(line)).filter((match) => match !== null);
  const match = rejection ? located[0] : located.find((found) => !found[1]!.startsWith('node:'));
  if (match === undefined) return '';
  const [, location, lineText, columnText] = match;
  const source = sourceLine(location!, Number(lineText));
  if (source === undefined) return '';
  const indent = source.slice(0, Number(columnText) - 1).replace(/[^\t]/g, ' ');
  return `${location}:${lineText}\n${source}\n${indent}^\n`;
}

/** Line `line` (from 1) of a program's file or of Node's own module `node:…`, or undefined. */
function sourceLine(location: string, line: number): string | undefined {
  try {
    let text: string | undefined;
    if (location.startsWith('node:')) {
      // Node's own modules' sources (process.binding's 'natives', allowed and silent in Node 20 to 24).
      const natives = (process as unknown as { binding(name: string): Record<string, string> }).binding('natives');
      text = natives[location.slice('node:'.length)];
    } else {
      text = readFileSync(location.startsWith('file:') ? fileURLToPath(location) : location, 'utf8');
    }
    return text?.split(/\r?\n/)[line - 1];
  } catch {
    return undefined;
  }
}
