import { LRUCache } from 'lru-cache';
import type { Logger } from 'pino';
import uWS from 'uWebSockets.js';
import { TokenError, type JoinGrant, type TokenVerifier } from '../auth/token.js';
import type { Metrics } from '../obs/metrics.js';
import type { Participant } from '../rooms/participant.js';
import { CloseCode, type Connection, type Fanout } from '../rooms/ports.js';
import type { Room } from '../rooms/room.js';
import { JoinError, type ResumeRequest, type RoomManager } from '../rooms/roomManager.js';
import { TokenBucket } from '../util/tokenBucket.js';
import { codecs, DecodeError, ENCODINGS, encodingForSubprotocols, type Codec, type Encoding } from './codec.js';
import { SignalError } from './errors.js';
import { serverKind, type ErrorCode, type ServerMessage } from './messages.js';
import { peekId, validateRequest } from './schema.js';

export interface GatewayOptions {
  path: string;
  maxFrameBytes: number;
  idleTimeoutS: number;
  maxBackpressureBytes: number;
  rate: { messagesPerS: number; burst: number; violationsBeforeClose: number };
  ipConnect: { perS: number; burst: number };
}

/** Per-connection state, created at upgrade (after auth) and owned by the socket. */
interface Session {
  grant: JoinGrant;
  encoding: Encoding;
  ip: string;
  resume: ResumeRequest | undefined;
  bucket: TokenBucket;
  violations: number;
  conn?: WsConnection;
  room?: Room;
  participant?: Participant;
}
interface UserData {
  session: Session;
}
type WS = uWS.WebSocket<UserData>;

/** Connection over a uWS socket. Sending after close is a no-op, never a throw. */
export class WsConnection implements Connection {
  closed = false;
  readonly codec: Codec;

  constructor(readonly ws: WS, readonly encoding: Encoding, private readonly gw: SignalGateway) {
    this.codec = codecs[encoding];
  }

  send(msg: ServerMessage): void {
    if (this.closed) return;
    this.gw.countOut(msg, this.encoding);
    // 2 = dropped: over maxBackpressure. Never lose a message silently: drop the consumer.
    if (this.ws.send(this.codec.encodeServer(msg), this.codec.binary) === 2) this.gw.dropSlowConsumer(this);
  }

  close(code: number, reason: string): void {
    if (this.closed) return;
    this.closed = true;
    this.ws.end(code, reason);
  }
}

const topic = (room: Room, enc: Encoding): string => `${room.sid}/${enc}`;

/**
 * The WebSocket side of signalling: upgrade-time auth and limits, frame → codec → schema →
 * RoomManager, and room fan-out over uWS pub/sub (one topic per room and encoding, so each
 * message is encoded at most once per encoding in use).
 */
export class SignalGateway implements Fanout {
  readonly sessions = new Set<Session>();
  private readonly ipBuckets: LRUCache<string, TokenBucket>;
  private sweepTimer: NodeJS.Timeout | undefined;
  private manager!: RoomManager;

  constructor(
    private readonly app: uWS.TemplatedApp,
    private readonly opts: GatewayOptions,
    private readonly verifier: TokenVerifier,
    private readonly metrics: Metrics,
    private readonly log: Logger,
  ) {
    this.ipBuckets = new LRUCache({ max: 50_000 });
  }

  /** Registers the WebSocket route; the manager is given here because it needs us as Fanout. */
  attach(manager: RoomManager): void {
    this.manager = manager;
    this.app.ws<UserData>(this.opts.path, {
      maxPayloadLength: this.opts.maxFrameBytes,
      idleTimeout: this.opts.idleTimeoutS,
      sendPingsAutomatically: true,
      maxBackpressure: this.opts.maxBackpressureBytes,
      // A message uWS had to skip would be a silent gap; closing makes the client resume and
      // get it replayed instead. The sweep below normally drops slow consumers before this.
      closeOnBackpressureLimit: 1,
      upgrade: (res, req, ctx) => this.upgrade(res, req, ctx),
      open: (ws) => this.open(ws),
      message: (ws, data, isBinary) => this.message(ws, data, isBinary),
      close: (ws, code) => this.closed(ws, code),
    });
    // Slow consumers: anything holding more than half the backpressure limit is dropped
    // with a clear close code long before uWS would have to skip a message.
    this.sweepTimer = setInterval(() => this.sweep(), 250);
    this.sweepTimer.unref();
  }

  stop(): void {
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    this.sweepTimer = undefined;
  }

  // ---------- Fanout ----------

  subscribe(room: Room, p: Participant): void {
    const c = p.conn;
    if (c instanceof WsConnection && !c.closed) c.ws.subscribe(topic(room, c.encoding));
  }

  unsubscribe(room: Room, p: Participant): void {
    const c = p.conn;
    if (c instanceof WsConnection && !c.closed) c.ws.unsubscribe(topic(room, c.encoding));
  }

  publish(room: Room, msg: ServerMessage, except?: Participant): void {
    const ex = except?.conn;
    const exceptWs = ex instanceof WsConnection && !ex.closed ? ex.ws : undefined;
    for (const enc of ENCODINGS) {
      const t = topic(room, enc);
      if (this.app.numSubscribers(t) === 0) continue;
      const codec = codecs[enc];
      const data = codec.encodeServer(msg);
      this.countOut(msg, enc);
      // ws.publish skips the sender itself.
      if (exceptWs) exceptWs.publish(t, data, codec.binary);
      else this.app.publish(t, data, codec.binary);
    }
  }

  countOut(msg: ServerMessage, encoding: Encoding): void {
    this.metrics.messagesOut.inc({ type: serverKind(msg), encoding });
  }

  // ---------- limits ----------

  dropSlowConsumer(c: WsConnection): void {
    if (c.closed) return;
    this.metrics.slowConsumers.inc();
    this.log.info({ buffered: c.ws.getBufferedAmount() }, 'dropping slow consumer');
    c.close(CloseCode.SLOW_CONSUMER, 'slow consumer: send buffer over limit');
  }

  private sweep(): void {
    const limit = this.opts.maxBackpressureBytes / 2;
    for (const s of this.sessions) {
      const c = s.conn;
      if (c && !c.closed && c.ws.getBufferedAmount() > limit) this.dropSlowConsumer(c);
    }
  }

  private ipAllowed(ip: string): boolean {
    let b = this.ipBuckets.get(ip);
    if (!b) this.ipBuckets.set(ip, (b = new TokenBucket(this.opts.ipConnect.perS, this.opts.ipConnect.burst)));
    return b.take();
  }

  // ---------- uWS handlers ----------

  private upgrade(res: uWS.HttpResponse, req: uWS.HttpRequest, ctx: uWS.us_socket_context_t): void {
    // Everything from req must be read before the first await.
    const query = new URLSearchParams(req.getQuery() ?? '');
    const secKey = req.getHeader('sec-websocket-key');
    const secProtocol = req.getHeader('sec-websocket-protocol');
    const secExtensions = req.getHeader('sec-websocket-extensions');
    const authHeader = req.getHeader('authorization');
    const ip = Buffer.from(res.getRemoteAddressAsText()).toString();
    let aborted = false;
    res.onAborted(() => {
      aborted = true;
    });
    const refuse = (status: number, code: string, message: string): void => {
      if (aborted) return;
      this.metrics.errors.inc({ code });
      res.cork(() => {
        res
          .writeStatus(STATUS[status] ?? `${status} Error`)
          .writeHeader('content-type', 'application/json')
          .end(JSON.stringify({ code, message }));
      });
    };
    if (!this.ipAllowed(ip)) return refuse(429, 'IP_RATE_LIMITED', 'too many connections from this address');
    const negotiated = encodingForSubprotocols(secProtocol || undefined);
    if (!negotiated) return refuse(400, 'UNSUPPORTED_SUBPROTOCOL', `none of the offered subprotocols is supported: ${secProtocol}`);
    const bearer = authHeader.startsWith('Bearer ') ? authHeader.slice(7) : undefined;
    const token = query.get('access_token') ?? bearer;
    const room = query.get('room') ?? undefined;
    const resumeToken = query.get('resume');
    const lastSeq = Number(query.get('last_seq') ?? '0');
    if (resumeToken && (!Number.isSafeInteger(lastSeq) || lastSeq < 0)) {
      return refuse(400, 'INVALID_FIELD', 'last_seq must be a non-negative integer');
    }
    this.verifier.verifyJoin(token, room).then(
      (grant) => {
        if (aborted) return;
        try {
          this.manager.preflight(grant, !!resumeToken);
        } catch (err) {
          if (err instanceof JoinError) return refuse(err.status, err.code, err.message);
          throw err;
        }
        const session: Session = {
          grant,
          encoding: negotiated.encoding,
          ip,
          resume: resumeToken ? { token: resumeToken, lastSeq } : undefined,
          bucket: new TokenBucket(this.opts.rate.messagesPerS, this.opts.rate.burst),
          violations: 0,
        };
        res.cork(() => res.upgrade<UserData>({ session }, secKey, negotiated.subprotocol, secExtensions, ctx));
      },
      (err) => {
        if (err instanceof TokenError) return refuse(401, err.code, err.message);
        this.log.error({ err }, 'upgrade failed');
        refuse(500, 'INTERNAL', 'internal error');
      },
    );
  }

  private open(ws: WS): void {
    const s = ws.getUserData().session;
    const conn = new WsConnection(ws, s.encoding, this);
    s.conn = conn;
    this.sessions.add(s);
    this.metrics.connections.inc({ encoding: s.encoding });
    try {
      const { room, participant } = this.manager.join(s.grant, conn, s.resume);
      s.room = room;
      s.participant = participant;
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      if (!(err instanceof JoinError)) this.log.error({ err }, 'join failed');
      conn.send({ disconnect: { reason: 'UNKNOWN_REASON', message, reconnect: false } });
      conn.close(CloseCode.JOIN_FAILED, err instanceof JoinError ? err.code : 'INTERNAL');
    }
  }

  private message(ws: WS, data: ArrayBuffer, _isBinary: boolean): void {
    const s = ws.getUserData().session;
    const conn = s.conn!;
    const { room, participant } = s;
    if (!room || !participant || conn.closed) return;
    if (!s.bucket.take()) {
      s.violations++;
      this.metrics.errors.inc({ code: 'RATE_LIMITED' });
      if (s.violations >= this.opts.rate.violationsBeforeClose) {
        conn.send({ disconnect: { reason: 'RATE_LIMITED', message: 'message rate limit exceeded', reconnect: false } });
        conn.close(CloseCode.POLICY, 'rate limit exceeded');
      } else {
        this.sendError(conn, 0, 'RATE_LIMITED', 'too many messages; slow down');
      }
      return;
    }
    s.violations = 0;
    // uWS neuters `data` when this handler returns; decoded bytes fields may be views into
    // it and can outlive the call (replay log), so decode from a copy.
    const frame = new Uint8Array(data.slice(0));
    let raw: unknown;
    try {
      raw = conn.codec.decodeRequest(frame);
    } catch (err) {
      if (err instanceof DecodeError) return this.sendError(conn, 0, 'MALFORMED', err.message);
      throw err;
    }
    let id = peekId(raw);
    try {
      const req = validateRequest(raw);
      id = req.id;
      this.metrics.messagesIn.inc({ type: req.kind, encoding: conn.encoding });
      const result = this.manager.handle(room, participant, req);
      if (id !== 0 || !result.ok) conn.send({ response: { requestId: id, ...result } });
      if (req.kind === 'leave') this.manager.leave(room, participant);
    } catch (err) {
      if (err instanceof SignalError) return this.sendError(conn, id, err.code, err.message, err.field);
      this.log.error({ err }, 'request handler failed');
      this.sendError(conn, id, 'INTERNAL', 'internal error');
    }
  }

  private sendError(conn: WsConnection, requestId: number, code: ErrorCode, message: string, field?: string): void {
    this.metrics.errors.inc({ code });
    conn.send({ response: { requestId, error: { code, message, ...(field ? { field } : {}) } } });
  }

  private closed(ws: WS, _code: number): void {
    const s = ws.getUserData().session;
    const conn = s.conn!;
    conn.closed = true;
    this.sessions.delete(s);
    this.metrics.connections.dec({ encoding: s.encoding });
    if (s.room && s.participant) this.manager.connectionClosed(s.room, s.participant, conn);
  }
}

const STATUS: Record<number, string> = {
  400: '400 Bad Request',
  401: '401 Unauthorized',
  403: '403 Forbidden',
  404: '404 Not Found',
  429: '429 Too Many Requests',
  500: '500 Internal Server Error',
  503: '503 Service Unavailable',
};
