// Mutual TLS under the handshake, for clusters across networks you do not
// trust: every connection is encrypted, and both ends present a certificate
// signed by the cluster's CA (--tls-ca), naming the address the others reach
// that node at. The shared-secret handshake still runs inside it.

import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import net from 'node:net';
import type * as tlsModule from 'node:tls';
import { handshakeTimeoutMs } from '../constants.js';
import { DsmError } from '../errors.js';
import { refusals } from './refusals.js';

export interface TlsConfig {
  cert: Buffer;
  key: Buffer;
  ca: Buffer;
}

/** Reads --tls-cert, --tls-key and --tls-ca (all three or none). */
export function loadTls(paths: { cert?: string | undefined; key?: string | undefined; ca?: string | undefined }): TlsConfig | undefined {
  const given = [paths.cert, paths.key, paths.ca].filter((path) => path !== undefined).length;
  if (given === 0) return undefined;
  if (given !== 3) throw new DsmError('DSM_ERR_INVALID_OPTION', 'mutual TLS needs all three of --tls-cert, --tls-key and --tls-ca (the same CA on every node)');
  const read = (option: string, path: string): Buffer => {
    try {
      return readFileSync(path);
    } catch (error) {
      throw new DsmError('DSM_ERR_INVALID_OPTION', `${option} ${path}: ${(error as Error).message}`);
    }
  };
  return { cert: read('--tls-cert', paths.cert!), key: read('--tls-key', paths.key!), ca: read('--tls-ca', paths.ca!) };
}

/** A server for plain TCP, or TLS that requires a client certificate from the CA. */
// node:tls (and the dozen internal modules it loads) only when TLS is configured: every node of a run
// without TLS, the common case, starts without it.
let tlsLoaded: typeof tlsModule | null = null;
function nodeTls(): typeof tlsModule {
  tlsLoaded ??= createRequire(import.meta.url)('node:tls') as typeof tlsModule;
  return tlsLoaded;
}

export function createStreamServer(config: TlsConfig | undefined): net.Server {
  if (config === undefined) return net.createServer();
  const server = nodeTls().createServer({ ...config, requestCert: true, rejectUnauthorized: true, handshakeTimeout: handshakeTimeoutMs });
  // A stranger without a certificate is turned away by TLS itself; nothing to crash on.
  server.on('tlsClientError', (error: Error, socket: tlsModule.TLSSocket) => {
    refusals.report(`dsm: DSM_ERR_HANDSHAKE: peer at ${(socket.remoteAddress ?? 'unknown').replace(/^::ffff:/, '')}:${socket.remotePort}: TLS refused (${error.message}); the node keeps serving`);
  });
  return server;
}

/** The event a server emits for a connection ready for dsm's handshake. */
export function connectionEventOf(config: TlsConfig | undefined): 'connection' | 'secureConnection' {
  return config === undefined ? 'connection' : 'secureConnection';
}

/** Dials host:port; resolves once the socket (and TLS, with the peer's certificate checked) is up. */
export function dialStream(host: string, port: number, config: TlsConfig | undefined): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = config === undefined ? net.connect(port, host) : nodeTls().connect({ host, port, ...config, ...(net.isIP(host) === 0 ? { servername: host } : {}) });
    const ready = config === undefined ? 'connect' : 'secureConnect';
    socket.once(ready, () => {
      socket.off('error', reject);
      resolve(socket);
    });
    socket.once('error', reject);
  });
}
