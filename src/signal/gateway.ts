import { LRUCache } from 'lru-cache';
import type { Logger } from 'pino';
import uWS from 'uWebSockets.js';
import { TokenError, type JoinGrant, type TokenVerifier } from '../auth/token.js';
import type { Metrics } from '../obs/metrics.js';
import type { Participant } from '../rooms/participant.js';
import { CloseCode, type Connection } from '../rooms/ports.js';
import type { Room } from '../rooms/room.js';
import { JoinError, type ResumeRequest } from '../rooms/types.js';
import { RateLimit } from '../util/rateLimit.js';
import { STATUS_TEXT } from '../api/http.js';
import { DecodeError, encodingForSubprotocols } from './codec.js';
import { SignalError } from './errors.js';
import { dispatch, type HandlerTable, type RequestContext } from './handlers.js';
import { LoopTurn } from './loopTurn.js';
import type { ErrorCode, Response } from './messages.js';
import { peekId, validateRequest } from './schema.js';
import type { UwsFanout } from './uwsFanout.js';
import { WsConnection, type PendingJoin, type UserData, type WS } from './wsConnection.js';

export interface GatewayOptions {
  path: string;
  maxFrameBytes: number;
  idleTimeoutS: number;
  maxBackpressureBytes: number;
  rate: { messagesPerS: number; burst: number; violationsBeforeClose: number };
  ipConnect: { perS: number; burst: number };
}

/** The room domain as the gateway needs it: admission at upgrade, join at open, close. */
type JoinResult = { room: Room; participant: Participant };

export interface JoinService {
  preflight(grant: JoinGrant, resuming: boolean): void;
  /** A Promise when admission waits on the cluster directory (after open: see docs/ARCHITECTURE.md). */
  join(grant: JoinGrant, conn: Connection, resume: ResumeRequest | undefined, caps: { p2p?: boolean; move?: string }): JoinResult | Promise<JoinResult>;
  connectionClosed(room: Room, p: Participant, conn: Connection): void;
}

/** A join refused because the node is at capacity: HTTP 503 with Retry-After. */
export interface Refusal {
  code: 'OVERLOADED';
  message: string;
  retryAfterS: number;
}

/** Overload admission as the gateway needs it (node/admissionControl.ts). */
export interface AdmissionPort {
  /** Null when admitted; a resume of a session this node holds is not a new join. */
  refuse(grant: JoinGrant, resume: ResumeRequest | undefined): Refusal | null;
}

/**
 * The WebSocket side of signalling: upgrade-time auth and limits, then frame → codec → schema
 * → the handler table (it knows no service: the table says who serves each kind). Fan-out
 * and the send-buffer limit are UwsFanout's.
 */
export class SignalGateway {
  /** Open signalling connections. */
  connectionCount = 0;
  /** RateLimit state by remote address. */
  private readonly ipRates: LRUCache<string, number>;
  private readonly ipLimit: RateLimit;
  private readonly msgLimit: RateLimit;
  private readonly turn = new LoopTurn();

  /** Registers the WebSocket route on `app`. */
  constructor(
    app: uWS.TemplatedApp,
    private readonly opts: GatewayOptions,
    private readonly verifier: TokenVerifier,
    private readonly joins: JoinService,
    private readonly admission: AdmissionPort,
    private readonly handlers: HandlerTable,
    private readonly fanout: UwsFanout,
    private readonly metrics: Metrics,
    private readonly log: Logger,
  ) {
    this.ipRates = new LRUCache({ max: 50_000 });
    this.ipLimit = new RateLimit(opts.ipConnect.perS, opts.ipConnect.burst);
    this.msgLimit = new RateLimit(opts.rate.messagesPerS, opts.rate.burst);
    app.ws<UserData>(this.opts.path, {
      // uWS answers frames over its limit by closing the TCP socket with the rest of the frame
      // unread, which the client sees as a reset (1006). So uWS gets a hard cap above ours and
      // frames between the two are read whole and closed cleanly with 1009 in message().
      maxPayloadLength: this.hardFrameCap(),
      idleTimeout: this.opts.idleTimeoutS,
      sendPingsAutomatically: true,
      // Our limit is max_backpressure_bytes (close 4005, see checkBackpressure). uWS flushes
      // pub/sub at the end of a loop iteration, so one iteration's burst is invisible to that
      // check; uWS's own limit sits 4x higher as the last resort. A message uWS had to skip
      // would be a silent gap, so it closes the socket instead and the client resumes.
      maxBackpressure: this.opts.maxBackpressureBytes * 4,
      closeOnBackpressureLimit: 1,
      // An exception escaping into uWS ends the process: every handler is guarded.
      upgrade: (res, req, ctx) =>
        this.guard('upgrade', () => this.upgrade(res, req, ctx), () => {
          // uWS ends the process when an upgrade handler returns without answering: answer.
          res.writeStatus(STATUS_TEXT[500]!).writeHeader('content-type', 'application/json').end(JSON.stringify({ code: 'INTERNAL', message: 'internal error' }));
        }),
      open: (ws) => this.guard('open', () => this.open(ws)),
      message: (ws, data) => this.guard('message', () => this.message(ws, data)),
      close: (ws, code) => this.guard('close', () => this.closed(ws, code)),
    });
  }

  private guard(where: string, fn: () => void, answer?: () => void): void {
    this.turn.mark();
    try {
      fn();
    } catch (err) {
      this.metrics.errors.inc({ code: 'INTERNAL' });
      this.log.error({ err, where }, 'signalling handler failed');
      try {
        answer?.();
      } catch {
        /* it had answered (upgraded or refused) before it threw */
      }
    }
  }

  private hardFrameCap(): number {
    return Math.max(this.opts.maxFrameBytes * 2, this.opts.maxFrameBytes + 64 * 1024);
  }

  private ipAllowed(ip: string): boolean {
    const next = this.ipLimit.take(this.ipRates.get(ip) ?? 0);
    if (next < 0) return false;
    this.ipRates.set(ip, next);
    return true;
  }

  // ---------- uWS handlers ----------

  private upgrade(res: uWS.HttpResponse, req: uWS.HttpRequest, ctx: uWS.us_socket_context_t): void {
    const turnStart = this.turn.mark();
    const t0 = performance.now();
    const query = new URLSearchParams(req.getQuery() ?? '');
    const secKey = req.getHeader('sec-websocket-key');
    const secProtocol = req.getHeader('sec-websocket-protocol');
    const secExtensions = req.getHeader('sec-websocket-extensions');
    const authHeader = req.getHeader('authorization');
    const ip = Buffer.from(res.getRemoteAddressAsText()).toString();
    const refuse = (status: number, code: string, message: string, retryAfterS?: number): void => {
      this.metrics.errors.inc({ code });
      res.writeStatus(STATUS_TEXT[status] ?? `${status} Error`).writeHeader('content-type', 'application/json');
      if (retryAfterS !== undefined) res.writeHeader('retry-after', String(retryAfterS));
      res.end(JSON.stringify({ code, message }));
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
    // Everything here is synchronous: uWS.js 20.30 intermittently shut down sockets whose
    // upgrade completed asynchronously (see TokenVerifier).
    let grant: JoinGrant;
    try {
      grant = this.verifier.verifyJoin(token, room);
      this.joins.preflight(grant, !!resumeToken);
    } catch (err) {
      if (err instanceof TokenError) return refuse(401, err.code, err.message);
      if (err instanceof JoinError) return refuse(err.status, err.code, err.message);
      throw err;
    }
    const resume = resumeToken ? { token: resumeToken, lastSeq } : undefined;
    // After the token and room checks: a refused token is 401 whatever the load.
    const overloaded = this.admission.refuse(grant, resume);
    if (overloaded) return refuse(503, overloaded.code, overloaded.message, overloaded.retryAfterS);
    const pending: PendingJoin = {
      turnStart,
      t0,
      encoding: negotiated.encoding,
      grant,
      resume,
      p2p: query.get('p2p') === '1',
      move: query.get('move') || undefined,
    };
    res.upgrade<UserData>({ pending, conn: null }, secKey, negotiated.subprotocol, secExtensions, ctx);
  }

  private open(ws: WS): void {
    const data = ws.getUserData();
    const pending = data.pending!;
    data.pending = null;
    const conn = (data.conn = new WsConnection(ws, pending.encoding, this.fanout));
    this.connectionCount++;
    this.metrics.connections.inc({ encoding: conn.encoding });
    const joined = ({ room, participant }: JoinResult): void => {
      conn.room = room;
      conn.participant = participant;
      const now = performance.now();
      this.metrics.joinSeconds.observe((now - pending.turnStart) / 1000);
      this.metrics.joinHandlerSeconds.observe((now - pending.t0) / 1000);
      // The socket closed while the cluster admitted it: the usual close path, now.
      if (conn.closed) this.joins.connectionClosed(room, participant, conn);
    };
    const failed = (err: unknown): void => {
      const message = err instanceof Error ? err.message : String(err);
      if (!(err instanceof JoinError)) this.log.error({ err }, 'join failed');
      if (conn.closed) return;
      conn.send({ disconnect: { reason: 'UNKNOWN_REASON', message, reconnect: false } });
      conn.close(CloseCode.JOIN_FAILED, err instanceof JoinError ? err.code : 'INTERNAL');
    };
    try {
      const r = this.joins.join(pending.grant, conn, pending.resume, { p2p: pending.p2p, ...(pending.move ? { move: pending.move } : {}) });
      if (r instanceof Promise) r.then((x) => this.guard('join', () => joined(x)), (err: unknown) => this.guard('join', () => failed(err)));
      else joined(r);
    } catch (err) {
      failed(err);
    }
  }

  private message(ws: WS, data: ArrayBuffer): void {
    const conn = ws.getUserData().conn;
    const room = conn?.room;
    const participant = conn?.participant;
    if (!conn || !room || !participant || conn.closed) return;
    if (data.byteLength > this.opts.maxFrameBytes) {
      this.metrics.errors.inc({ code: 'TOO_LARGE' });
      conn.close(CloseCode.TOO_BIG, `frame over ${this.opts.maxFrameBytes} bytes`);
      return;
    }
    const rate = this.msgLimit.take(conn.rate);
    if (rate < 0) {
      conn.violations++;
      this.metrics.errors.inc({ code: 'RATE_LIMITED' });
      if (conn.violations >= this.opts.rate.violationsBeforeClose) {
        conn.send({ disconnect: { reason: 'RATE_LIMITED', message: 'message rate limit exceeded', reconnect: false } });
        conn.close(CloseCode.POLICY, 'rate limit exceeded');
      } else {
        this.sendError(conn, 0, 'RATE_LIMITED', 'too many messages; slow down');
      }
      return;
    }
    conn.rate = rate;
    conn.violations = 0;
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
    const fail = (err: unknown): void => {
      if (err instanceof SignalError) return this.sendError(conn, id, err.code, err.message, err.field);
      this.log.error({ err }, 'request handler failed');
      this.sendError(conn, id, 'INTERNAL', 'internal error');
    };
    try {
      const req = validateRequest(raw);
      id = req.id;
      this.metrics.in(req.kind, conn.encoding).inc();
      if (req.kind === 'ping' && req.body.rtt) this.metrics.clientRtt.observe(req.body.rtt / 1000);
      let after: (() => void) | undefined;
      const ctx: RequestContext = { room, participant, afterResponse: (fn) => void (after = fn) };
      const answer = (result: Omit<Response, 'requestId'>): void => {
        // With id 0 a success is not answered (fire-and-forget); errors always are.
        if (id !== 0 || !('ok' in result)) conn.send({ response: { requestId: id, ...result } });
        after?.();
      };
      const result = dispatch(this.handlers, req.kind, ctx, req.body);
      // Media requests wait on mediasoup workers: answered when done (responses carry ids).
      if (result instanceof Promise) result.then(answer, fail);
      else answer(result);
    } catch (err) {
      fail(err);
    }
  }

  private sendError(conn: WsConnection, requestId: number, code: ErrorCode, message: string, field?: string): void {
    this.metrics.errors.inc({ code });
    conn.send({ response: { requestId, error: { code, message, ...(field ? { field } : {}) } } });
  }

  private closed(ws: WS, _code: number): void {
    // uWS forbids touching the socket here (it unsubscribes it from its topics itself).
    const conn = ws.getUserData().conn;
    if (!conn) return; // closed before open
    conn.closed = true;
    this.connectionCount--;
    this.metrics.connections.dec({ encoding: conn.encoding });
    if (conn.room && conn.participant) this.joins.connectionClosed(conn.room, conn.participant, conn);
  }
}
