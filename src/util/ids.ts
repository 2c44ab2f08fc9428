import { randomBytes } from 'node:crypto';

const ALPHABET = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

/** LiveKit-style ids: RM_xxxx for rooms, PA_xxxx for participants (12 base62 chars). */
export function newId(prefix: string): string {
  const bytes = randomBytes(12);
  const codes = new Array<number>(12);
  for (let i = 0; i < 12; i++) codes[i] = ALPHABET.charCodeAt(bytes[i]! % 62);
  // One flat string: += in a loop leaves a tree of cons-strings (~300 B per id) alive.
  return prefix + String.fromCharCode(...codes);
}
