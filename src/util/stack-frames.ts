// Which stack frames node's report of an uncaught error points its arrow at (src/runtime/program.ts for the
// program's main thread, src/threads/uncaught-text.ts for the arrows only an app thread can make).

/**
 * The stack frames ('at …' lines) from the one node's arrow points at: a builtin's frames on top (`at
 * decodeURIComponent (<anonymous>)`) are passed over, as V8's message location is its caller's; none when the top
 * frame is JSON.parse, whose message location is the parsed text ("<anonymous_script>:1"), which the stack does not
 * hold.
 */
export function framesFromArrow(stack: string): string[] {
  const frames = stack.split('\n').filter((line) => line.trimStart().startsWith('at '));
  let first = 0;
  while (first < frames.length && frames[first]!.endsWith('(<anonymous>)')) {
    if (/^\s*at JSON\.parse /.test(frames[first]!)) return [];
    first += 1;
  }
  return frames.slice(first);
}
