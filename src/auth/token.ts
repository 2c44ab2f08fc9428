import { createSecretKey, type KeyObject } from 'node:crypto';
import jwt from 'jsonwebtoken';
import { z } from 'zod';
import { unstorableText } from '../util/text.js';

/** Text that ends up in rooms, the database and webhooks: refused here if it cannot be stored. */
const text = z.string().superRefine((s, ctx) => {
  const why = unstorableText(s);
  if (why) ctx.addIssue({ code: 'custom', message: why });
});

/** LiveKit's VideoGrant claim, as livekit-server-sdk's AccessToken writes it. */
const videoGrantSchema = z.object({
  room: text.optional(),
  roomJoin: z.boolean().optional(),
  roomCreate: z.boolean().optional(),
  roomList: z.boolean().optional(),
  roomAdmin: z.boolean().optional(),
  roomRecord: z.boolean().optional(),
  canPublish: z.boolean().optional(),
  canPublishSources: z.array(text).optional(),
  canSubscribe: z.boolean().optional(),
  canPublishData: z.boolean().optional(),
  canUpdateOwnMetadata: z.boolean().optional(),
  hidden: z.boolean().optional(),
  recorder: z.boolean().optional(),
  agent: z.boolean().optional(),
});
export type VideoGrant = z.infer<typeof videoGrantSchema>;

const claimsSchema = z.object({
  iss: z.string(),
  sub: text.optional(),
  name: text.optional(),
  metadata: text.optional(),
  attributes: z.record(text, text).optional(),
  video: videoGrantSchema.optional(),
  /** AuraLink extension: a mesh node token (internal mesh endpoints). */
  mesh: z.boolean().optional(),
  sha256: z.string().optional(),
  exp: z.number().optional(),
  nbf: z.number().optional(),
});
// Compiled on the first parse (zod's fast path): at load, not inside the first join.
claimsSchema.safeParse({});
export type Claims = z.infer<typeof claimsSchema>;

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
 * Synchronous on purpose: the WebSocket upgrade must complete inside uWS's upgrade handler.
 * An upgrade finished later (after an await) intermittently had its new socket shut down
 * by uWS.js 20.30 right after open (measured: 6 of 240 connections; 0 of 240 when sync).
 */
export class TokenVerifier {
  // KeyObjects made once: given a string, jsonwebtoken first tries createPublicKey on it and
  // falls back to a secret key when that throws, every call (0.42 ms of each join, profiled).
  private readonly keys = new Map<string, KeyObject>();

  constructor(keys: Record<string, string>, private readonly clockToleranceS = 10) {
    for (const [k, secret] of Object.entries(keys)) this.keys.set(k, createSecretKey(Buffer.from(secret, 'utf8')));
  }

  verify(token: string | undefined | null): Claims {
    if (!token) throw new TokenError('TOKEN_MISSING', 'no access token given');
    let decoded: jwt.Jwt | null;
    try {
      // jws.decode JSON-parses a `typ: JWT` token's payload unguarded: garbage there throws.
      decoded = jwt.decode(token, { complete: true });
    } catch {
      decoded = null;
    }
    // The payload may also parse to null, a number or an array.
    if (!decoded || typeof decoded.payload !== 'object' || decoded.payload === null || Array.isArray(decoded.payload)) {
      throw new TokenError('TOKEN_MALFORMED', 'access token is not a JWT');
    }
    if (decoded.header.alg !== 'HS256') {
      throw new TokenError('TOKEN_ALG_NOT_ALLOWED', `token alg ${String(decoded.header.alg)} is not allowed (HS256 only)`);
    }
    const iss = decoded.payload.iss;
    const secret = iss ? this.keys.get(iss) : undefined;
    if (!secret) throw new TokenError('TOKEN_UNKNOWN_KEY', `unknown API key ${JSON.stringify(iss ?? '')}`);
    let payload: jwt.JwtPayload | string;
    try {
      payload = jwt.verify(token, secret, { algorithms: ['HS256'], clockTolerance: this.clockToleranceS });
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
}

/** Mints a LiveKit-format token (what livekit-server-sdk's AccessToken.toJwt produces). */
export function createToken(apiKey: string, secret: string, opts: TokenOptions): string {
  const now = Math.floor(Date.now() / 1000);
  const body: Record<string, unknown> = { video: opts.video, iss: apiKey, nbf: now, exp: now + (opts.ttlSeconds ?? 6 * 3600) };
  if (opts.name !== undefined) body.name = opts.name;
  if (opts.metadata !== undefined) body.metadata = opts.metadata;
  if (opts.identity) body.sub = opts.identity;
  if (opts.mesh) body.mesh = true;
  return jwt.sign(body, secret, { algorithm: 'HS256', noTimestamp: true });
}
