import { randomFillSync } from 'node:crypto';

const ALPHABET = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
// Random bytes drawn 4 KB at a time: randomBytes(12) per id was ~30 µs of a join (profile,
// bench/PROFILE-join.md item 4).
const pool = Buffer.alloc(4092);
let used = pool.length;

/** LiveKit-style ids: RM_xxxx for rooms, PA_xxxx for participants (12 base62 chars). */
export function newId(prefix: string): string {
  if (used + 12 > pool.length) {
    randomFillSync(pool);
    used = 0;
  }
  const codes = new Array<number>(12);
  for (let i = 0; i < 12; i++) codes[i] = ALPHABET.charCodeAt(pool[used + i]! % 62);
  used += 12;
  // One flat string: += in a loop leaves a tree of cons-strings (~300 B per id) alive.
  return prefix + String.fromCharCode(...codes);
}
