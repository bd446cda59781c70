// Addresses and dialing, for the mesh and the cluster layer alike: one way to
// print an address, one list of errors worth retrying (a peer still starting,
// a name not yet in DNS, a route not yet up), one retry loop bounded by a
// count or a deadline.

import type net from 'node:net';
import { DsmError, assert } from '../errors.js';
import { type TlsConfig, dialStream } from './tls.js';

export interface PeerAddress {
  host: string;
  port: number;
}

/** host:port, with brackets around an IPv6 host. */
export function formatAddress(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

/** Connection errors a peer that is still starting (or a network still settling) causes: worth another attempt. */
export const retriedDialCodes: ReadonlySet<string> = new Set(['ECONNREFUSED', 'ECONNRESET', 'EHOSTUNREACH', 'ENETUNREACH', 'ETIMEDOUT', 'ENOTFOUND', 'EAI_AGAIN']);

export interface DialPolicy {
  /** Pause between attempts. */
  intervalMs: number;
  /** Give up after this many retries (attempts = retryCountMax + 1)… */
  retryCountMax?: number;
  /** …or once another attempt would start after this time (Date.now()). One of the two is required. */
  deadlineMs?: number;
  tls?: TlsConfig;
  /** Who is dialed, for the error ("node 0", "node 3"). */
  label: string;
  /** What to check, for the error ("is the node running and the port open?"). */
  hint: string;
  /** Called after each failed attempt that will be retried (progress lines). */
  onRetry?: (attempt: number, code: string) => void;
  /** Called once when giving up after more than one attempt. */
  onGiveUp?: (attemptCount: number) => void;
}

/**
 * Dials host:port (TCP, or TLS with policy.tls), retrying the errors in
 * retriedDialCodes; anything else, or the end of the policy, is
 * DSM_ERR_UNREACHABLE: "cannot reach <label> at <address> (<code>) after N attempts: <hint>".
 */
export async function dialWithRetry(address: PeerAddress, policy: DialPolicy): Promise<net.Socket> {
  assert(policy.retryCountMax !== undefined || policy.deadlineMs !== undefined, 'a dial policy is bounded');
  assert(policy.retryCountMax === undefined || policy.retryCountMax >= 0, 'a retry count is not negative');
  let attemptCount = 0;
  for (;;) {
    attemptCount += 1;
    try {
      return await dialStream(address.host, address.port, policy.tls);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code ?? '';
      const retriesLeft = policy.retryCountMax === undefined || attemptCount <= policy.retryCountMax;
      const timeLeft = policy.deadlineMs === undefined || Date.now() + policy.intervalMs <= policy.deadlineMs;
      if (!retriedDialCodes.has(code) || !retriesLeft || !timeLeft) {
        if (attemptCount > 1) policy.onGiveUp?.(attemptCount);
        const where = formatAddress(address.host, address.port);
        throw new DsmError('DSM_ERR_UNREACHABLE', `cannot reach ${policy.label} at ${where} (${code || (error as Error).message}) after ${attemptCount} attempt${attemptCount === 1 ? '' : 's'}: ${policy.hint}`);
      }
      policy.onRetry?.(attemptCount, code);
      await new Promise((resolve) => setTimeout(resolve, policy.intervalMs));
    }
  }
}
