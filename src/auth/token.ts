import { createHmac, createSecretKey, timingSafeEqual, type KeyObject } from 'node:crypto';
import jwt from 'jsonwebtoken';
import { claimsSchema, quickClaims, type Claims, type VideoGrant } from './claims.js';

export type { Claims, VideoGrant } from './claims.js';

// jws's own test of a compact JWS (jws/lib/verify-stream.js): base64url parts, the signature may be empty.
const COMPACT_JWS = /^[a-zA-Z0-9\-_]+?\.[a-zA-Z0-9\-_]+?\.([a-zA-Z0-9\-_]+)?$/;

export type TokenErrorCode =
  | 'TOKEN_MISSING'
  | 'TOKEN_MALFORMED'
  | 'TOKEN_ALG_NOT_ALLOWED'
  | 'TOKEN_UNKNOWN_KEY'
  | 'TOKEN_BAD_SIGNATURE'
  | 'TOKEN_EXPIRED'
  | 'TOKEN_NOT_YET_VALID'
  | 'TOKEN_INVALID_CLAIMS'
  | 'TOKEN_NO_JOIN_GRANT'
  | 'TOKEN_WRONG_ROOM';

export class TokenError extends Error {
  constructor(readonly code: TokenErrorCode, message: string) {
    super(message);
    this.name = 'TokenError';
  }
}

/**
 * Verifies a LiveKit-format access token: HS256 only (alg "none" and every other alg are
 * refused before any key lookup), `iss` names an API key we hold, exp/nbf checked with a
 * small leeway for clock skew.
 *
 * The token is decoded once and checked here, as jsonwebtoken 9 checked it (same order,
 * same refusals; test/tokenFastPath.test.ts compares the two over a corpus): jsonwebtoken's
 * verify decoded it a second time after our decode, and the claims are checked by plain type
 * checks, zod deciding only when those find something off (claims.ts). Together ~40% of each
 * join's main-thread CPU in the profile of a join storm (bench/PROFILE-join.md).
 *
 * Synchronous on purpose: the WebSocket upgrade must complete inside uWS's upgrade handler.
 * An upgrade finished later (after an await) intermittently had its new socket shut down
 * by uWS.js 20.30 right after open (measured: 6 of 240 connections; 0 of 240 when sync).
 */
export class TokenVerifier {
  // KeyObjects made once: given a string, jsonwebtoken first tried createPublicKey on it and
  // fell back to a secret key when that threw, every call (0.42 ms of each join, profiled).
  private readonly keys = new Map<string, KeyObject>();

  constructor(
    keys: Record<string, string>,
    private readonly clockToleranceS = 10,
    /** Wall-clock ms (util/clusterClock.ts in a cluster: a host clock that is off does not refuse good tokens). */
    private readonly nowMs: () => number = Date.now,
  ) {
    for (const [k, secret] of Object.entries(keys)) this.keys.set(k, createSecretKey(Buffer.from(secret, 'utf8')));
  }

  verify(token: string | undefined | null): Claims {
    if (!token) throw new TokenError('TOKEN_MISSING', 'no access token given');
    const { header, payload } = decode(token);
    if ((header as { alg?: unknown }).alg !== 'HS256') {
      throw new TokenError('TOKEN_ALG_NOT_ALLOWED', `token alg ${String((header as { alg?: unknown }).alg)} is not allowed (HS256 only)`);
    }
    const iss = payload.iss;
    const secret = iss ? this.keys.get(iss as string) : undefined;
    if (!secret) throw new TokenError('TOKEN_UNKNOWN_KEY', `unknown API key ${JSON.stringify(iss ?? '')}`);
    const sig = token.slice(token.lastIndexOf('.') + 1);
    // As jws compares: the base64url text of the MAC, so a signature that decodes to the same
    // bytes but is written differently (its unused trailing bits) does not verify.
    const mac = createHmac('sha256', secret).update(token.slice(0, token.length - sig.length - 1)).digest('base64url');
    if (sig.length !== mac.length || !timingSafeEqual(Buffer.from(sig), Buffer.from(mac))) {
      throw new TokenError('TOKEN_BAD_SIGNATURE', 'access token signature does not verify');
    }
    const now = Math.floor(this.nowMs() / 1000);
    if (payload.nbf !== undefined) {
      if (typeof payload.nbf !== 'number') throw new TokenError('TOKEN_MALFORMED', 'access token rejected: invalid nbf value');
      if (payload.nbf > now + this.clockToleranceS) throw new TokenError('TOKEN_NOT_YET_VALID', 'access token is not valid yet (nbf)');
    }
    if (payload.exp !== undefined) {
      if (typeof payload.exp !== 'number') throw new TokenError('TOKEN_MALFORMED', 'access token rejected: invalid exp value');
      if (now >= payload.exp + this.clockToleranceS) throw new TokenError('TOKEN_EXPIRED', 'access token has expired');
    }
    const quick = quickClaims(payload);
    if (quick) return quick;
    const claims = claimsSchema.safeParse(payload);
    if (!claims.success) {
      const i = claims.error.issues[0]!;
      throw new TokenError('TOKEN_INVALID_CLAIMS', `claim ${i.path.join('.') || '(root)'}: ${i.message}`);
    }
    return claims.data;
  }

  /** Verify and check the grant allows joining `room` (when the caller names one). */
  verifyJoin(token: string | undefined | null, room?: string): JoinGrant {
    const claims = this.verify(token);
    const v = claims.video;
    if (!v?.roomJoin || !v.room) throw new TokenError('TOKEN_NO_JOIN_GRANT', 'token has no roomJoin grant for a room');
    if (!claims.sub) throw new TokenError('TOKEN_INVALID_CLAIMS', 'token has no identity (sub)');
    if (room !== undefined && room !== v.room) {
      throw new TokenError('TOKEN_WRONG_ROOM', `token is for room ${JSON.stringify(v.room)}, not ${JSON.stringify(room)}`);
    }
    return { claims, identity: claims.sub, room: v.room, video: v };
  }
}

/**
 * A compact JWS split and parsed once, as jws 4 / jsonwebtoken 9 decode it: the header is
 * JSON in latin1 and must be truthy, the payload JSON in UTF-8 and must be an object (not
 * null, not an array). Anything else is TOKEN_MALFORMED.
 */
function decode(token: string): { header: unknown; payload: Record<string, unknown> } {
  if (!COMPACT_JWS.test(token)) throw malformed();
  const a = token.indexOf('.');
  const b = token.indexOf('.', a + 1);
  let header: unknown;
  let payload: unknown;
  try {
    header = JSON.parse(Buffer.from(token.slice(0, a), 'base64').toString('latin1'));
  } catch {
    throw malformed();
  }
  if (!header) throw malformed();
  try {
    payload = JSON.parse(Buffer.from(token.slice(a + 1, b), 'base64').toString('utf8'));
  } catch {
    throw malformed();
  }
  if (typeof payload !== 'object' || payload === null || Array.isArray(payload)) throw malformed();
  return { header, payload: payload as Record<string, unknown> };
}

const malformed = (): TokenError => new TokenError('TOKEN_MALFORMED', 'access token is not a JWT');

export interface JoinGrant {
  claims: Claims;
  identity: string;
  room: string;
  video: VideoGrant;
}

export interface TokenOptions {
  identity?: string;
  name?: string;
  metadata?: string;
  ttlSeconds?: number;
  video: VideoGrant;
  mesh?: boolean;
  /** Wall-clock ms for nbf/exp (default Date.now; a node mints with its cluster clock). */
  nowMs?: number;
}

/** Mints a LiveKit-format token (what livekit-server-sdk's AccessToken.toJwt produces). */
export function createToken(apiKey: string, secret: string, opts: TokenOptions): string {
  const now = Math.floor((opts.nowMs ?? Date.now()) / 1000);
  const body: Record<string, unknown> = { video: opts.video, iss: apiKey, nbf: now, exp: now + (opts.ttlSeconds ?? 6 * 3600) };
  if (opts.name !== undefined) body.name = opts.name;
  if (opts.metadata !== undefined) body.metadata = opts.metadata;
  if (opts.identity) body.sub = opts.identity;
  if (opts.mesh) body.mesh = true;
  return jwt.sign(body, secret, { algorithm: 'HS256', noTimestamp: true });
}
