// Range tokens: the weight a dsm buffer's descriptor carries when it crosses
// nodes (weighted reference counting, src/runtime/heap-service.ts). Shared by
// the manager, which gives and takes weights, and an app thread, which gives
// the owner's weight itself for a buffer it made (ChannelRequest 'escape'
// with `given`).

import { assert } from '../errors.js';

/** A range token is weight * rangeTokenOwners + owner; a token of weight 0 holds nothing to return. */
export const rangeTokenOwners = 256;
/** The weight an owner gives each message that carries its buffer away (at most 2^44: the token stays a safe integer). */
export const rangeEscapeWeight = 2 ** 40;
/** The owner of a token that names none (weight 0: nothing to return). */
export const rangeOwnerUnknown = rangeTokenOwners - 1;

/**
 * A weight and its owner in one number (a channel reply, a descriptor field):
 * weight * rangeTokenOwners + owner. Weight 0: the range is kept for good.
 */
export function rangeToken(weight: number, owner: number): number {
  assert(Number.isSafeInteger(weight) && weight >= 0 && weight <= 2 ** 44 && owner >= 0 && owner < rangeTokenOwners, 'a range token holds its weight and owner');
  return weight * rangeTokenOwners + owner;
}

export function parseRangeToken(token: number): { weight: number; owner: number } | null {
  if (!Number.isSafeInteger(token) || token < 0) return null;
  return { weight: Math.floor(token / rangeTokenOwners), owner: token % rangeTokenOwners };
}
