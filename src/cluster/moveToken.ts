import { createHmac, timingSafeEqual } from 'node:crypto';

/** Which session a draining node hands over to another node (docs/PROTOCOL.md "Node loss and drain"). */
export interface MoveClaims {
  room: string;
  identity: string;
  sid: string;
  /** Expiry, ms since the epoch (the drain deadline). */
  exp: number;
}

const mac = (secret: string, body: string): Buffer => createHmac('sha256', secret).update(`auralink-move\n${body}`).digest();

/** `<base64url JSON>.<base64url HMAC-SHA256>`, signed with a cluster API secret (every node holds it). */
export function issueMoveToken(secret: string, c: MoveClaims): string {
  const body = Buffer.from(JSON.stringify([c.room, c.identity, c.sid, c.exp])).toString('base64url');
  return `${body}.${mac(secret, body).toString('base64url')}`;
}

/** The claims of a valid, unexpired token; undefined for anything else (it then counts as absent). */
export function verifyMoveToken(secret: string, token: string, now = Date.now()): MoveClaims | undefined {
  if (token.length > 2048) return undefined;
  const dot = token.indexOf('.');
  if (dot <= 0) return undefined;
  const body = token.slice(0, dot);
  const sig = Buffer.from(token.slice(dot + 1), 'base64url');
  const want = mac(secret, body);
  if (sig.length !== want.length || !timingSafeEqual(sig, want)) return undefined;
  try {
    const v: unknown = JSON.parse(Buffer.from(body, 'base64url').toString());
    if (!Array.isArray(v) || v.length !== 4) return undefined;
    const [room, identity, sid, exp] = v as unknown[];
    if (typeof room !== 'string' || typeof identity !== 'string' || typeof sid !== 'string' || typeof exp !== 'number') return undefined;
    if (exp < now) return undefined;
    return { room, identity, sid, exp };
  } catch {
    return undefined;
  }
}
