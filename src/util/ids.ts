import { randomBytes } from 'node:crypto';

const ALPHABET = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

/** LiveKit-style ids: RM_xxxx for rooms, PA_xxxx for participants (12 base62 chars). */
export function newId(prefix: string): string {
  const bytes = randomBytes(12);
  let out = prefix;
  for (const b of bytes) out += ALPHABET[b % 62];
  return out;
}

export function newSecret(): string {
  return randomBytes(24).toString('base64url');
}
