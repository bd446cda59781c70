// Code in node:vm contexts behaves as code outside them (session 46): a context's Atomics are dsm's (users19: two
// workers' adds through a context's Atomics were lost on 2 nodes), a SharedArrayBuffer made in a context is dsm
// memory (posting one to a worker threw DSM_ERR_NOT_DSM_MEMORY), and test/fixtures/vm/vm-realms.mjs checks what a
// program sees of a sandbox and a context's globals and errors, every way into a context, a context's own typed
// arrays (another realm's: no `instanceof` holds) posted across nodes, and Atomics.wait, notify and waitAsync
// from contexts across nodes. Each on 2 and 3 nodes and under sc, against plain node.
import { test } from 'node:test';
import { checkUserProgram, type UserProgram } from './users-runs.js';

interface Run extends UserProgram {
  directory: string;
}

const programs: readonly Run[] = [
  { directory: 'test/fixtures/users19/min', file: 'vm-context-atomics.mjs', status: 0, what: 'two workers add through a context\'s Atomics' },
  { directory: 'test/fixtures/users19/min', file: 'vm-realm-sab-post.mjs', status: 0, what: 'a buffer made in a context posted to a worker' },
  { directory: 'test/fixtures/users19', file: 'vm-atomics.mjs', args: ['4', '1000'], status: 0, what: 'plugins in contexts count and take a spin lock' },
  { directory: 'test/fixtures/users19', file: 'vm-realm-buffers.mjs', args: ['data'], status: 0, what: 'a context\'s buffer in workerData' },
  { directory: 'test/fixtures/users19', file: 'vm-realm-buffers.mjs', args: ['post'], status: 0, what: 'a context\'s buffer posted' },
  { directory: 'test/fixtures/vm', file: 'vm-realms.mjs', args: ['20'], status: 0, what: 'sandboxes, errors, every way into a context, waits across nodes' },
];

for (const dsm of [['--nodes', '2'], ['--nodes', '3'], ['--nodes', '2', '--protocol', 'sc']] as const) {
  for (const program of programs) {
    test(`${dsm.join(' ')}: ${program.file} ${program.args?.join(' ') ?? ''}, ${program.what}, prints and exits as under node`, () => {
      checkUserProgram(dsm, program, program.directory);
    });
  }
}
