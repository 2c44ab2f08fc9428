import * as jose from 'jose';
import { z } from 'zod';

/** LiveKit's VideoGrant claim, as livekit-server-sdk's AccessToken writes it. */
const videoGrantSchema = z.object({
  room: z.string().optional(),
  roomJoin: z.boolean().optional(),
  roomCreate: z.boolean().optional(),
  roomList: z.boolean().optional(),
  roomAdmin: z.boolean().optional(),
  roomRecord: z.boolean().optional(),
  canPublish: z.boolean().optional(),
  canPublishSources: z.array(z.string()).optional(),
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
  sub: z.string().optional(),
  name: z.string().optional(),
  metadata: z.string().optional(),
  attributes: z.record(z.string(), z.string()).optional(),
  video: videoGrantSchema.optional(),
  sha256: z.string().optional(),
  exp: z.number().optional(),
  nbf: z.number().optional(),
});
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

const encoder = new TextEncoder();

/**
 * Verifies a LiveKit-format access token: HS256 only (alg "none" and every other alg are
 * refused before any key lookup), `iss` names an API key we hold, exp/nbf checked with a
 * small leeway for clock skew.
 */
export class TokenVerifier {
  private readonly keys = new Map<string, Uint8Array>();

  constructor(keys: Record<string, string>, private readonly clockToleranceS = 10) {
    for (const [k, secret] of Object.entries(keys)) this.keys.set(k, encoder.encode(secret));
  }

  async verify(token: string | undefined | null): Promise<Claims> {
    if (!token) throw new TokenError('TOKEN_MISSING', 'no access token given');
    let header: jose.ProtectedHeaderParameters;
    let unverified: jose.JWTPayload;
    try {
      header = jose.decodeProtectedHeader(token);
      unverified = jose.decodeJwt(token);
    } catch {
      throw new TokenError('TOKEN_MALFORMED', 'access token is not a JWT');
    }
    if (header.alg !== 'HS256') {
      throw new TokenError('TOKEN_ALG_NOT_ALLOWED', `token alg ${String(header.alg)} is not allowed (HS256 only)`);
    }
    const iss = unverified.iss;
    const secret = iss ? this.keys.get(iss) : undefined;
    if (!secret) throw new TokenError('TOKEN_UNKNOWN_KEY', `unknown API key ${JSON.stringify(iss ?? '')}`);
    let payload: jose.JWTPayload;
    try {
      ({ payload } = await jose.jwtVerify(token, secret, {
        algorithms: ['HS256'],
        clockTolerance: this.clockToleranceS,
      }));
    } catch (err) {
      if (err instanceof jose.errors.JWTExpired) throw new TokenError('TOKEN_EXPIRED', 'access token has expired');
      if (err instanceof jose.errors.JWTClaimValidationFailed && err.claim === 'nbf') {
        throw new TokenError('TOKEN_NOT_YET_VALID', 'access token is not valid yet (nbf)');
      }
      if (err instanceof jose.errors.JWSSignatureVerificationFailed) {
        throw new TokenError('TOKEN_BAD_SIGNATURE', 'access token signature does not verify');
      }
      throw new TokenError('TOKEN_MALFORMED', `access token rejected: ${(err as Error).message}`);
    }
    const claims = claimsSchema.safeParse(payload);
    if (!claims.success) {
      const i = claims.error.issues[0]!;
      throw new TokenError('TOKEN_INVALID_CLAIMS', `claim ${i.path.join('.')}: ${i.message}`);
    }
    return claims.data;
  }

  /** Verify and check the grant allows joining `room` (when the caller names one). */
  async verifyJoin(token: string | undefined | null, room?: string): Promise<JoinGrant> {
    const claims = await this.verify(token);
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
}

/** Mints a LiveKit-format token (what livekit-server-sdk's AccessToken.toJwt produces). */
export async function createToken(apiKey: string, secret: string, opts: TokenOptions): Promise<string> {
  const body: jose.JWTPayload = { video: opts.video };
  if (opts.name !== undefined) body.name = opts.name;
  if (opts.metadata !== undefined) body.metadata = opts.metadata;
  const jwt = new jose.SignJWT(body)
    .setProtectedHeader({ alg: 'HS256' })
    .setIssuer(apiKey)
    .setNotBefore(Math.floor(Date.now() / 1000))
    .setExpirationTime(Math.floor(Date.now() / 1000) + (opts.ttlSeconds ?? 6 * 3600));
  if (opts.identity) jwt.setSubject(opts.identity);
  return jwt.sign(encoder.encode(secret));
}
