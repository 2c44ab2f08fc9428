/**
 * Trust 0-100 in six levels. Relays below 20 (suspended) are never used; above that, relay
 * choice is trust-weighted (a less trusted node must be clearly better to be picked).
 */
export const TRUST_LEVELS = [
  { name: 'suspended', min: 0 },
  { name: 'untrusted', min: 20 },
  { name: 'provisional', min: 40 },
  { name: 'trusted', min: 60 },
  { name: 'established', min: 80 },
  { name: 'verified', min: 95 },
] as const;
export type TrustLevel = (typeof TRUST_LEVELS)[number]['name'];

export const MIN_ROUTABLE_TRUST = 20;
/** Where a newly registered node starts: usable, but below nodes with a track record. */
export const INITIAL_TRUST = 50;

export const clampTrust = (t: number): number => Math.max(0, Math.min(100, Math.round(t * 100) / 100));

export function trustLevel(trust: number): TrustLevel {
  let level: TrustLevel = 'suspended';
  for (const l of TRUST_LEVELS) if (trust >= l.min) level = l.name;
  return level;
}

/** Multiplier on a relay's cost: 1 at trust 100, 2 at trust 20. */
export const trustWeight = (trust: number): number => 1 + (100 - Math.max(MIN_ROUTABLE_TRUST, trust)) / 80;

/**
 * How a call's outcome moves the trust of the nodes it went through: good calls earn slowly,
 * bad ones cost more, failures (no media at all) most. Abuse reports are separate and larger.
 */
export function trustDeltaFromFeedback(observedQuality: number, connected: boolean): number {
  if (!connected) return -5;
  if (observedQuality >= 70) return 0.5;
  if (observedQuality >= 40) return 0;
  return -2;
}

export const ABUSE_REPORT_DELTA = -15;
