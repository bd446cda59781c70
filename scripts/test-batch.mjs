// Runs several test files in this one process (scripts/test.mjs batches light
// unit and simulation files: a process's start with tsx costs about as much CPU
// as such a file's tests). Each file is imported in turn; its tests join this
// process's root test, which runs them in order and reports them together (a
// failure's location names its file). Run as
//   node --import tsx --test-reporter=tap scripts/test-batch.mjs FILE...
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

for (const file of process.argv.slice(2)) await import(pathToFileURL(resolve(file)).href);
