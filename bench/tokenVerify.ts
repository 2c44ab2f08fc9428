// What token verification costs per join: the server's TokenVerifier (one decode, HS256 by
// hand, claims by plain checks) against the way it was (jsonwebtoken decode + verify, then
// zod) and its pieces, in this process, distinct tokens as in a storm.
// Usage: node dist/bench/tokenVerify.js [--tokens 20000] [--runs 3]
import { createHmac, createSecretKey, timingSafeEqual } from 'node:crypto';
import { parseArgs } from 'node:util';
import jwt from 'jsonwebtoken';
import { claimsSchema } from '../src/auth/claims.js';
import { createToken, TokenVerifier } from '../src/auth/token.js';
import { KEY, SECRET } from './common.js';

const { values: args } = parseArgs({ options: { tokens: { type: 'string', default: '20000' }, runs: { type: 'string', default: '3' } } });
const N = Number(args.tokens);
const tokens = Array.from({ length: N }, (_, i) => createToken(KEY, SECRET, { identity: `j${i}`, video: { roomJoin: true, room: `room${i % 100}` } }));
const verifier = new TokenVerifier({ [KEY]: SECRET });
const key = createSecretKey(Buffer.from(SECRET, 'utf8'));

/** HS256 by hand: one split, one HMAC over header.payload, one JSON.parse of each part. */
function verifyHs256(token: string): Record<string, unknown> {
  const a = token.indexOf('.');
  const b = token.indexOf('.', a + 1);
  const header = JSON.parse(Buffer.from(token.slice(0, a), 'base64url').toString()) as { alg?: string };
  if (header.alg !== 'HS256') throw new Error('alg');
  const mac = createHmac('sha256', key).update(token.slice(0, b)).digest();
  const sig = Buffer.from(token.slice(b + 1), 'base64url');
  if (sig.length !== mac.length || !timingSafeEqual(sig, mac)) throw new Error('signature');
  return JSON.parse(Buffer.from(token.slice(a + 1, b), 'base64url').toString()) as Record<string, unknown>;
}

/** The verifier before issue 17 item 2: decode, verify (which decodes again), zod. */
function asBefore(token: string): unknown {
  const d = jwt.decode(token, { complete: true });
  if (!d || typeof d.payload !== 'object' || d.header.alg !== 'HS256') throw new Error('malformed');
  const payload = jwt.verify(token, key, { algorithms: ['HS256'], clockTolerance: 10 });
  return claimsSchema.parse(payload);
}

const cases: [string, (t: string) => unknown][] = [
  ['TokenVerifier.verifyJoin', (t) => verifier.verifyJoin(t)],
  ['as before: jwt.decode + jwt.verify + zod', (t) => asBefore(t)],
  ['  jwt.decode + zod claims parse', (t) => claimsSchema.parse(jwt.decode(t))],
  ['  jwt.decode(complete) alone', (t) => jwt.decode(t, { complete: true })],
  ['  jwt.verify(KeyObject) alone', (t) => jwt.verify(t, key, { algorithms: ['HS256'] })],
  ['HS256 by hand (split, HMAC, JSON.parse)', (t) => verifyHs256(t)],
];
const res = new Map<string, number[]>();
for (let r = 0; r < Number(args.runs); r++) {
  for (const [name, f] of cases) {
    for (let i = 0; i < 2000; i++) f(tokens[i]!); // warm
    const u0 = process.cpuUsage();
    for (const t of tokens) f(t);
    const u = process.cpuUsage(u0);
    res.set(name, [...(res.get(name) ?? []), (u.user + u.system) / N]);
  }
}
console.log(`${N} distinct join tokens, ${args.runs} runs, CPU µs per token:`);
for (const [name, xs] of res) console.log(`  ${name.padEnd(42)} ${Math.min(...xs).toFixed(1)}–${Math.max(...xs).toFixed(1)}`);
