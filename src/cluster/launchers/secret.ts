// The cluster's secret under a launcher comes from what the engine provides,
// never from the command line (srun, mpirun and a pod spec show their command
// lines to everyone on the machine): DSM_SECRET_FILE (a file only the user can
// read), DSM_SECRET (e.g. a Kubernetes Secret as an environment variable), or
// ~/.dsm/secret. The handshake code receives the string as it does from --secret.

import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { join } from 'node:path';
import { secretFileBytesMax } from '../../constants.js';
import { DsmError } from '../../errors.js';
import { secretSettings } from '../../env.js';

/** Reads a secret file: a regular file, private to its owner, one non-empty line. */
export function readSecretFile(path: string, origin: string): string {
  let descriptor: number;
  try {
    descriptor = openSync(path, 'r');
  } catch (error) {
    throw new DsmError('DSM_ERR_INVALID_OPTION', `${origin}: cannot read the secret file ${path} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
  }
  try {
    const stat = fstatSync(descriptor);
    if (!stat.isFile()) throw new DsmError('DSM_ERR_INVALID_OPTION', `${origin}: ${path} is not a regular file`);
    // Like ssh with a private key: a secret others can read is not a secret.
    if ((stat.mode & 0o077) !== 0) {
      throw new DsmError('DSM_ERR_INVALID_OPTION', `${origin}: ${path} can be read by others (mode ${(stat.mode & 0o777).toString(8)}); run chmod 600 ${path}`);
    }
    if (stat.size > secretFileBytesMax) throw new DsmError('DSM_ERR_INVALID_OPTION', `${origin}: ${path} has ${stat.size} bytes; a secret file holds one line (at most ${secretFileBytesMax} bytes)`);
    const buffer = Buffer.alloc(secretFileBytesMax + 1);
    const length = readSync(descriptor, buffer, 0, buffer.length, 0);
    const secret = buffer.subarray(0, length).toString('utf8').trim();
    if (secret === '' || secret.includes('\n')) {
      throw new DsmError('DSM_ERR_INVALID_OPTION', `${origin}: ${path} must hold the secret on one non-empty line`);
    }
    return secret;
  } finally {
    closeSync(descriptor);
  }
}

/**
 * The secret for a launched cluster and where it came from. `fileExists` is
 * asked about ~/.dsm/secret only when neither variable is set.
 */
export function launcherSecret(env: Record<string, string | undefined>, homeDirectory: string, fileExists: (path: string) => boolean): { secret: string; from: string } {
  const { file, value } = secretSettings(env);
  if (file !== undefined && file !== '') return { secret: readSecretFile(file, 'DSM_SECRET_FILE'), from: `DSM_SECRET_FILE=${file}` };
  if (value !== undefined && value !== '') return { secret: value, from: 'DSM_SECRET' };
  const home = join(homeDirectory, '.dsm', 'secret');
  if (fileExists(home)) return { secret: readSecretFile(home, '~/.dsm/secret'), from: home };
  throw new DsmError('DSM_ERR_INVALID_OPTION',
    `a launched cluster needs a shared secret and none was found: create ${home} (one line, chmod 600) on a path every node reads, `
    + 'or set DSM_SECRET_FILE to such a file, or DSM_SECRET (a Kubernetes Secret as an environment variable); never --secret, which every process listing shows');
}
