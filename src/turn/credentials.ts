import { createHmac, timingSafeEqual } from 'node:crypto';

/** One entry of RTCConfiguration.iceServers, as the client passes it to its transports. */
export interface IceServer {
  urls: string[];
  username?: string;
  credential?: string;
}

/**
 * TURN REST API credentials (draft-uberti-behave-turn-rest, as coturn's use-auth-secret):
 * username `expiry:identity` (expiry in unix seconds), password base64(HMAC-SHA1(secret,
 * username)). Any server holding the secret can check them without shared state.
 */
export class TurnCredentials {
  constructor(
    private readonly secret: string,
    private readonly ttlS: number,
    private readonly now: () => number = Date.now,
  ) {}

  issue(identity: string): { username: string; credential: string; expiresAt: number } {
    const expiresAt = Math.floor(this.now() / 1000) + this.ttlS;
    // ':' separates expiry from identity; identities may contain it, the expiry never does.
    const username = `${expiresAt}:${identity}`;
    return { username, credential: this.password(username), expiresAt };
  }

  password(username: string): string {
    return createHmac('sha1', this.secret).update(username).digest('base64');
  }

  /** The password for `username` if it is well-formed and not expired; otherwise undefined. */
  passwordFor(username: string): string | undefined {
    const colon = username.indexOf(':');
    if (colon <= 0) return undefined;
    const expiry = username.slice(0, colon);
    if (!/^\d{1,12}$/.test(expiry)) return undefined;
    if (Number(expiry) * 1000 <= this.now()) return undefined;
    return this.password(username);
  }

  /** Milliseconds until `username` expires (0 if malformed or expired). */
  msUntilExpiry(username: string): number {
    const expiry = Number(username.slice(0, username.indexOf(':')));
    return Number.isFinite(expiry) ? Math.max(0, expiry * 1000 - this.now()) : 0;
  }

  /** True when `credential` is the right password for an unexpired `username`. */
  verify(username: string, credential: string): boolean {
    const expected = this.passwordFor(username);
    if (!expected) return false;
    const a = Buffer.from(expected);
    const b = Buffer.from(credential);
    return a.length === b.length && timingSafeEqual(a, b);
  }
}
