import assert from 'node:assert/strict';
import { createHmac, createSecretKey, type KeyObject } from 'node:crypto';
import { test } from 'node:test';
import jwt from 'jsonwebtoken';
import { claimsSchema, quickClaims } from '../src/auth/claims.js';
import { TokenError, TokenVerifier, type Claims } from '../src/auth/token.js';

const KEY = 'fastkey';
const SECRET = 'fast-path-secret-that-is-at-least-32-chars';
// Wide enough that no crafted exp/nbf (now ± 5 or 100 s) crosses a boundary while the corpus is
// checked (a CI run took over 5 s: an exp of now-5 under a 10 s tolerance expired between the two verifiers).
const TOLERANCE = 60;

/**
 * The verifier as it was (jsonwebtoken's decode, then its verify, then zod): the reference
 * the one-decode verifier must agree with, refusal for refusal.
 */
function reference(token: string, keys: Map<string, KeyObject>): Claims {
  if (!token) throw new TokenError('TOKEN_MISSING', 'no access token given');
  let decoded: jwt.Jwt | null;
  try {
    decoded = jwt.decode(token, { complete: true });
  } catch {
    decoded = null;
  }
  if (!decoded || typeof decoded.payload !== 'object' || decoded.payload === null || Array.isArray(decoded.payload)) {
    throw new TokenError('TOKEN_MALFORMED', 'access token is not a JWT');
  }
  if (decoded.header.alg !== 'HS256') {
    throw new TokenError('TOKEN_ALG_NOT_ALLOWED', `token alg ${String(decoded.header.alg)} is not allowed (HS256 only)`);
  }
  const iss = decoded.payload.iss;
  const secret = iss ? keys.get(iss) : undefined;
  if (!secret) throw new TokenError('TOKEN_UNKNOWN_KEY', `unknown API key ${JSON.stringify(iss ?? '')}`);
  let payload: jwt.JwtPayload | string;
  try {
    payload = jwt.verify(token, secret, { algorithms: ['HS256'], clockTolerance: TOLERANCE });
  } catch (err) {
    if (err instanceof jwt.TokenExpiredError) throw new TokenError('TOKEN_EXPIRED', 'access token has expired');
    if (err instanceof jwt.NotBeforeError) throw new TokenError('TOKEN_NOT_YET_VALID', 'access token is not valid yet (nbf)');
    if (err instanceof jwt.JsonWebTokenError && /signature/.test(err.message)) {
      throw new TokenError('TOKEN_BAD_SIGNATURE', 'access token signature does not verify');
    }
    throw new TokenError('TOKEN_MALFORMED', `access token rejected: ${(err as Error).message}`);
  }
  const claims = claimsSchema.safeParse(payload);
  if (!claims.success) {
    const i = claims.error.issues[0]!;
    throw new TokenError('TOKEN_INVALID_CLAIMS', `claim ${i.path.join('.') || '(root)'}: ${i.message}`);
  }
  return claims.data;
}

/** Seeded, so a failure names a case that can be replayed. */
function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const b64 = (s: string | Buffer, enc: BufferEncoding = 'utf8'): string => (typeof s === 'string' ? Buffer.from(s, enc) : s).toString('base64url');
const sign = (input: string, secret = SECRET): string => createHmac('sha256', secret).update(input).digest('base64url');

function corpus(n: number, seed: number): string[] {
  const rnd = prng(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
  const now = Math.floor(Date.now() / 1000);
  // Values of every kind, text that cannot be stored, and nothing near a time boundary
  // (the two verifiers read the clock separately).
  const texts = ['alice', '', 'Ünïcode 🎉', 'nul\u0000inside', 'lone \ud800 surrogate', 'pair \ud83d\ude00', 'a"b\\c', 'x'.repeat(300)];
  const anyValue = (): unknown => pick<unknown>([...texts, 0, 1, -1.5, true, false, null, [], ['camera'], {}, { a: 1 }, 1e21]);
  const maybe = (f: () => unknown): unknown => (rnd() < 0.45 ? undefined : rnd() < 0.75 ? f() : anyValue());
  const grant = (): unknown => {
    if (rnd() < 0.1) return anyValue();
    const g: Record<string, unknown> = {};
    for (const f of ['roomJoin', 'roomCreate', 'roomList', 'roomAdmin', 'roomRecord', 'canPublish', 'canSubscribe', 'canPublishData', 'canUpdateOwnMetadata', 'hidden', 'recorder', 'agent']) {
      const v = maybe(() => rnd() < 0.5);
      if (v !== undefined) g[f] = v;
    }
    const room = maybe(() => pick(texts));
    if (room !== undefined) g.room = room;
    const sources = maybe(() => (rnd() < 0.8 ? ['camera', 'microphone'].slice(0, Math.floor(rnd() * 3)) : [pick(texts), pick<unknown>([1, null, 'screen_share'])]));
    if (sources !== undefined) g.canPublishSources = sources;
    if (rnd() < 0.2) g.unknownField = anyValue();
    return g;
  };
  const payload = (): Record<string, unknown> => {
    const p: Record<string, unknown> = {};
    const set = (k: string, v: unknown): void => {
      if (v !== undefined) p[k] = v;
    };
    set('iss', rnd() < 0.85 ? KEY : pick<unknown>(['otherkey', '', 5, null, { k: 1 }, undefined]));
    set('sub', maybe(() => pick(texts)));
    set('name', maybe(() => pick(texts)));
    set('metadata', maybe(() => pick(texts)));
    set('attributes', maybe(() => (rnd() < 0.7 ? { role: pick(texts), [pick(texts)]: 'v' } : { n: pick<unknown>([1, null, 'ok']) })));
    set('video', rnd() < 0.8 ? grant() : undefined);
    set('mesh', maybe(() => rnd() < 0.5));
    set('sha256', maybe(() => 'abc'));
    set('exp', maybe(() => now + pick([3600, -5, -100, 6 * 3600])));
    set('nbf', maybe(() => now + pick([-3600, 5, 100, 0])));
    if (rnd() < 0.1) set('extra', anyValue());
    return p;
  };
  const headers: string[] = [
    '{"alg":"HS256","typ":"JWT"}',
    '{"alg":"HS256"}',
    '{"typ":"JWT","alg":"HS256","kid":"x"}',
    '{"alg":"none","typ":"JWT"}',
    '{"alg":"HS512","typ":"JWT"}',
    '{"alg":"RS256"}',
    '{"alg":["HS256"]}',
    '{}',
    '1',
    '0',
    'null',
    '"HS256"',
    '[]',
    'not json',
    '{"alg":"HS256","typ":"JWT","x":"\u00e9"}',
  ];
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    const header = rnd() < 0.75 ? headers[0]! : pick(headers);
    let body: string;
    const r = rnd();
    if (r < 0.9) {
      body = JSON.stringify(payload());
      // JSON the stringify above cannot write: Infinity, a __proto__ key, duplicate keys.
      if (rnd() < 0.05) body = body.replace(/^\{/, pick(['{"exp":1e400,', '{"attributes":{"__proto__":"x\\u0000"},', '{"attributes":{"__proto__":{"a":1}},', '{"iss":"nope","iss":"fastkey",']));
    } else body = pick(['null', '5', '[1,2]', '"text"', '{', '', '{"iss":"fastkey"}', 'true']);
    const input = `${b64(header, 'latin1')}.${b64(body)}`;
    let token = `${input}.${sign(input)}`;
    const m = rnd();
    if (m < 0.04) token = `${input}.${sign(input, 'wrong-secret')}`;
    else if (m < 0.06) token = `${input}.`;
    else if (m < 0.07) token = `${token}=`;
    else if (m < 0.08) token = token.replace(/.$/, (c) => (c === 'A' ? 'B' : 'A')); // same bytes or not: jws compares text
    else if (m < 0.09) token = `${input}`;
    else if (m < 0.1) token = `${token}.x`;
    else if (m < 0.11) token = ` ${token}`;
    else if (m < 0.12) token = token.replace(/-/g, '+').replace(/_/g, '/');
    else if (m < 0.13) token = pick(['', 'a.b.c', '..', 'a..', '.b.', 'abc']);
    out.push(token);
  }
  return out;
}

type Outcome = { ok: Claims } | { code: string; message: string };
const outcome = (f: () => Claims): Outcome => {
  try {
    return { ok: f() };
  } catch (err) {
    if (!(err instanceof TokenError)) throw err;
    return { code: err.code, message: err.message };
  }
};

test('one-decode verifier: the same claims and the same refusals (code and message) as jsonwebtoken + zod, over 20,000 crafted tokens', () => {
  const keys = new Map([[KEY, createSecretKey(Buffer.from(SECRET, 'utf8'))]]);
  const verifier = new TokenVerifier({ [KEY]: SECRET }, TOLERANCE);
  const seen = new Map<string, number>();
  for (const [i, token] of corpus(20_000, 17).entries()) {
    const want = outcome(() => reference(token, keys));
    const got = outcome(() => verifier.verify(token));
    assert.deepStrictEqual(got, want, `token #${i}: ${token}`);
    const kind = 'ok' in want ? 'ok' : want.code;
    seen.set(kind, (seen.get(kind) ?? 0) + 1);
  }
  // The corpus reaches every outcome, so agreement is not agreement on one path.
  for (const kind of ['ok', 'TOKEN_MISSING', 'TOKEN_MALFORMED', 'TOKEN_ALG_NOT_ALLOWED', 'TOKEN_UNKNOWN_KEY', 'TOKEN_BAD_SIGNATURE', 'TOKEN_EXPIRED', 'TOKEN_NOT_YET_VALID', 'TOKEN_INVALID_CLAIMS']) {
    assert.ok((seen.get(kind) ?? 0) > 0, `${kind} reached (${JSON.stringify([...seen])})`);
  }
});

test('quickClaims never accepts what the claims schema refuses, and gives what it gives', () => {
  const rnd = prng(99);
  const values: unknown[] = ['a', '', 'nul\u0000', '\udc00', 1, 1.5, Infinity, NaN, true, null, [], ['a'], ['a', 2], {}, { a: 'b' }, { a: 1 }, { ['__proto__']: 'x' }];
  const keys = ['iss', 'sub', 'name', 'metadata', 'attributes', 'video', 'mesh', 'sha256', 'exp', 'nbf', 'other'];
  let fast = 0;
  for (let i = 0; i < 20_000; i++) {
    const p: Record<string, unknown> = { iss: 'k' };
    for (const k of keys) if (rnd() < 0.3) p[k] = values[Math.floor(rnd() * values.length)];
    if (rnd() < 0.3) p.video = Object.fromEntries(['room', 'roomJoin', 'canPublishSources', 'hidden', 'x'].filter(() => rnd() < 0.5).map((k) => [k, values[Math.floor(rnd() * values.length)]]));
    const q = quickClaims(p);
    const z = claimsSchema.safeParse(p);
    if (q === undefined) continue;
    fast++;
    assert.ok(z.success, `quick accepted what zod refuses: ${JSON.stringify(p)}`);
    assert.deepStrictEqual(q, z.data);
  }
  assert.ok(fast > 500, `the fast path was taken (${fast} times)`);
});
