// Start-up progress for a person at a terminal: "waiting for 3 nodes at
// HOST:PORT", "joined as node 2", "node 0 not reachable yet, retrying". Shown
// on stderr only when stderr is a terminal (DSM_PROGRESS=1 shows it anyway,
// DSM_PROGRESS=0 never), so pipes, files and tests see the program's output only.

import { progressSetting } from '../env.js';

export function progressShown(): boolean {
  const setting = progressSetting();
  return setting === 'always' || (setting === 'terminal' && process.stderr.isTTY === true);
}

/** One line of progress: `dsm: <text>`. */
export function progress(text: string): void {
  if (progressShown()) process.stderr.write(`dsm: ${text}\n`);
}
