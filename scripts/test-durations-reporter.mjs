// A node:test reporter for scripts/test.mjs: writes one JSON object, each test
// file's duration in ms (the sum of its top-level tests, or the span from its
// first to its last event if longer), so the next run can start the longest
// files first.
export default async function* durations(source) {
  const files = new Map();
  for await (const event of source) {
    const file = event.data?.file;
    if (typeof file !== 'string') continue;
    const now = Date.now();
    let entry = files.get(file);
    if (entry === undefined) {
      entry = { first: now, last: now, sum: 0 };
      files.set(file, entry);
    }
    entry.last = now;
    if ((event.type === 'test:pass' || event.type === 'test:fail') && event.data.nesting === 0) {
      entry.sum += event.data.details?.duration_ms ?? 0;
    }
  }
  const result = {};
  for (const [file, { first, last, sum }] of files) result[file] = Math.round(Math.max(sum, last - first));
  yield `${JSON.stringify(result)}\n`;
}
