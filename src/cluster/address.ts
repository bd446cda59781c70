// HOST:PORT as the command line gives it. Apart from src/cluster/common.ts so that what reads an
// address (launcher detection, which every `dsm run` loads) does not load the transport with it.

import { DsmError } from '../errors.js';

/** Parses HOST:PORT (an IPv6 host in brackets); a mistake names the option. */
export function parseAddress(text: string, optionName: string): { host: string; port: number } {
  const match = /^(.*):(\d{1,5})$/.exec(text);
  const host = match?.[1]?.replace(/^\[(.*)\]$/, '$1') ?? '';
  const port = Number(match?.[2] ?? NaN);
  if (match === null || host === '' || !(port >= 0 && port <= 65535)) {
    throw new DsmError('DSM_ERR_INVALID_OPTION', `${optionName} '${text}': expected HOST:PORT, e.g. 10.0.0.1:7400`);
  }
  return { host, port };
}

