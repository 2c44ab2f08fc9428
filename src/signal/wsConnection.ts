import type uWS from 'uWebSockets.js';
import type { JoinGrant } from '../auth/token.js';
import type { Participant } from '../rooms/participant.js';
import type { Connection } from '../rooms/ports.js';
import type { Room } from '../rooms/room.js';
import type { ResumeRequest } from '../rooms/types.js';
import { codecs, type Codec, type Encoding } from './codec.js';
import { serverKind, type ServerMessage } from './messages.js';

/** What the upgrade learned and the join needs; let go once joined (the token with it). */
export interface PendingJoin {
  /** performance.now() at the start of the loop turn that read the upgrade (LoopTurn). */
  turnStart: number;
  /** performance.now() when the upgrade handler started. */
  t0: number;
  encoding: Encoding;
  grant: JoinGrant;
  resume: ResumeRequest | undefined;
  p2p: boolean;
  /** A drain's move token (cluster): the session keeps its sid here. */
  move: string | undefined;
}

/** uWS.js copies these properties onto its socket object (getUserData() is the socket). */
export interface UserData {
  /** From the upgrade to the join. */
  pending: PendingJoin | null;
  /** From open on. */
  conn: WsConnection | null;
}
export type WS = uWS.WebSocket<UserData>;

/** Counts what is sent and enforces the send-buffer limit after each direct send. */
export interface SendGuard {
  countOut(kind: string, encoding: Encoding): void;
  checkConnection(c: WsConnection): void;
}

/**
 * A signalling connection: the one object per socket (created at open, owned by the socket),
 * so 50k idle participants cost as few objects as possible. Sending after close is a no-op,
 * never a throw.
 */
export class WsConnection implements Connection {
  closed = false;
  room: Room | undefined;
  participant: Participant | undefined;
  /** Message rate limit state (RateLimit). */
  rate = 0;
  /** Consecutive rate-limit violations. */
  violations = 0;

  constructor(
    readonly ws: WS,
    readonly encoding: Encoding,
    private readonly guard: SendGuard,
  ) {}

  get codec(): Codec {
    return codecs[this.encoding];
  }

  send(msg: ServerMessage): void {
    if (this.closed) return;
    this.guard.countOut(serverKind(msg), this.encoding);
    const codec = this.codec;
    this.ws.send(codec.encodeServer(msg), codec.binary);
    this.guard.checkConnection(this);
  }

  close(code: number, reason: string): void {
    if (this.closed) return;
    this.closed = true;
    this.ws.end(code, reason);
  }
}
