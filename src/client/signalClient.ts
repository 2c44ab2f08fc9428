import { codecs, SUBPROTOCOL, type Codec, type Encoding } from '../signal/codec.js';
import type { ErrorCode, JoinResponse, ParticipantInfo, RelaySignal, Response, ServerMessage } from '../signal/messages.js';
import { answers, RESPONSE_FIELD, type RequestBody, type RequestKind, type ResponseFor } from '../signal/rpc.js';
import { Emitter } from './emitter.js';
import { measureMesh, type MeshRtt } from './meshProbe.js';
import { SFU_EVENTS, TERMINAL_CLOSE, type SignalClientEvents } from './signalEvents.js';

export type { SignalClientEvents };

/** The subset of the standard WebSocket API the client uses (browsers, `ws` in Node). */
export interface WebSocketLike {
  binaryType: string;
  readonly readyState: number;
  onopen: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onclose: ((ev: { code: number; reason: string }) => void) | null;
  onerror: ((ev: unknown) => void) | null;
  send(data: string | ArrayBufferLike | Uint8Array): void;
  close(code?: number, reason?: string): void;
}
export type WebSocketCtor = new (url: string, protocols?: string | string[]) => WebSocketLike;

export interface SignalClientOptions {
  encoding?: Encoding;
  /** Defaults to globalThis.WebSocket (browsers); pass `ws`'s WebSocket in Node 20. */
  WebSocket?: WebSocketCtor;
  /** Reconnect and resume after an unexpected close (default true). */
  autoResume?: boolean;
  /** Send Ping at the interval the server asks for (default true). */
  autoPing?: boolean;
  requestTimeoutMs?: number;
  /** Tell the server this client can take direct (P2P) routes (the Room SDK handles them). */
  p2p?: boolean;
  /** A connection attempt not joined within this is given up (default 3000 ms). */
  connectTimeoutMs?: number;
  /**
   * In a cluster: when the node is lost, rejoin the room on another node it named
   * (`reconnectTargets`), and move there by itself when it drains (default true).
   */
  failover?: boolean;
}

/** A request the server refused, with its typed code and the field it named. */
export class SignalRequestError extends Error {
  constructor(readonly code: ErrorCode, message: string, readonly field?: string) {
    super(message);
    this.name = 'SignalRequestError';
  }
}

/**
 * Signalling client: connects with an access token, keeps the participant list, tracks the
 * room seq, and on an unexpected drop reconnects with its resume token so missed messages
 * are replayed.
 */
export class SignalClient extends Emitter<SignalClientEvents> {
  join!: JoinResponse;
  /** The last relay signals received (newest last, at most 256). */
  readonly recentRelays: RelaySignal[] = [];
  /** The last route decision the server sent (P2P-capable clients only). */
  route: NonNullable<ServerMessage['route']> | undefined;
  readonly participants = new Map<string, ParticipantInfo>(); // by identity, excluding self
  /** Producers in the room you may consume (kept from producerAdded/Removed), by producer id. */
  readonly producers = new Map<string, NonNullable<ServerMessage['producerAdded']>>();
  lastSeq = 0;
  private ws: WebSocketLike | null = null;
  private readonly codec: Codec;
  private readonly WS: WebSocketCtor;
  private nextId = 1;
  private capsRequest: Promise<string> | undefined;
  private readonly pending = new Map<number, { resolve: (r: Response) => void; reject: (e: Error) => void; timer: ReturnType<typeof setTimeout> }>();
  private pingTimer: ReturnType<typeof setInterval> | undefined;
  private closedByUs = false;
  private rtt = 0;
  /** A connection being opened (not joined yet): closed with the client. */
  private connecting: WebSocketLike | null = null;
  private moving = false;
  private closedWhileMoving: { code: number; reason: string } | undefined;
  /** The last RTTs measured to mesh nodes (measureMesh), by node id: failover prefers the nearest. */
  private readonly nodeRtts = new Map<string, number>();
  /** Other edge nodes where the room can be rejoined (from join, refreshed by drain). */
  reconnectTargets: { nodeId: string; url: string }[] = [];

  /** `url`: the node connected to now (it changes when the client fails over or moves). */
  private constructor(public url: string, private token: string, private readonly opts: SignalClientOptions) {
    super();
    this.codec = codecs[opts.encoding ?? 'proto'];
    const WS = opts.WebSocket ?? (globalThis as { WebSocket?: WebSocketCtor }).WebSocket;
    if (!WS) throw new Error('no WebSocket implementation: pass options.WebSocket');
    this.WS = WS;
  }

  /** Connects and resolves once joined; rejects if the connection closes first. */
  static async connect(url: string, token: string, opts: SignalClientOptions = {}): Promise<SignalClient> {
    const c = new SignalClient(url, token, opts);
    await c.open(undefined);
    return c;
  }

  /** The socket is open (requests can be sent). */
  get connected(): boolean {
    return this.ws?.readyState === 1;
  }

  get me(): ParticipantInfo {
    return this.join.participant;
  }

  get roundTripMs(): number {
    return this.rtt;
  }

  private buildUrl(base: string, resume?: { token: string; lastSeq: number }, move?: string): string {
    const u = new URL(base);
    if (u.pathname === '' || u.pathname === '/') u.pathname = '/rtc';
    u.searchParams.set('access_token', this.token);
    if (this.opts.p2p) u.searchParams.set('p2p', '1');
    if (move) u.searchParams.set('move', move);
    if (resume) {
      u.searchParams.set('resume', resume.token);
      u.searchParams.set('last_seq', String(resume.lastSeq));
    }
    return u.toString();
  }

  /**
   * Opens a connection to `url` and resolves once joined; only then does it become the
   * client's connection (so a move to another node keeps the old one until the new one is in).
   */
  private open(resume: { token: string; lastSeq: number } | undefined, url = this.url, move?: string): Promise<void> {
    return new Promise((resolve, reject) => {
      const ws = new this.WS(this.buildUrl(url, resume, move), SUBPROTOCOL[this.codec.encoding]);
      ws.binaryType = 'arraybuffer';
      this.connecting = ws;
      let joined = false;
      let lastError = '';
      // A host that is gone never answers: give up on it in time to try another node.
      const timer = setTimeout(() => {
        lastError = 'connect timeout';
        ws.close();
      }, this.opts.connectTimeoutMs ?? 3000);
      ws.onmessage = (ev) => {
        if (joined && this.ws !== ws) return; // a connection this client has left
        const msg = this.decode(ev.data);
        if (!msg) return;
        if (!joined && msg.join) {
          joined = true;
          clearTimeout(timer);
          if (this.connecting === ws) this.connecting = null;
          const old = this.ws;
          this.ws = ws;
          this.url = url;
          // A moved session: the old node closes its side when it hears of the move (closing
          // it here first would look like a leave there).
          if (old) this.leaveConnection(old, !move);
          this.onJoin(msg.join);
          resolve();
          return;
        }
        this.dispatch(msg);
      };
      ws.onerror = (ev) => {
        // Browsers say nothing more; Node's ws names the HTTP status of a refused upgrade.
        lastError = (ev as { message?: string }).message ?? '';
      };
      ws.onclose = (ev) => {
        clearTimeout(timer);
        if (this.connecting === ws) this.connecting = null;
        if (!joined) {
          const why = ev.reason || lastError;
          reject(new Error(`connection closed before join (${ev.code}${why ? ': ' + why : ''})`));
          return;
        }
        if (this.ws !== ws) return; // superseded by a move: nothing to resume
        this.ws = null;
        // Moving: the old node may close this one (the move reached it) before the new node's
        // join arrives on the other connection; the move decides what comes next.
        if (this.moving) {
          this.closedWhileMoving = { code: ev.code, reason: ev.reason };
          return;
        }
        this.onClose(ev.code, ev.reason);
      };
    });
  }

  /** Leaves a connection this client moved away from; its requests cannot be answered now. */
  private leaveConnection(old: WebSocketLike, close: boolean): void {
    for (const [, p] of this.pending) {
      clearTimeout(p.timer);
      p.reject(new Error('connection moved to another node'));
    }
    this.pending.clear();
    if (!close) return;
    try {
      old.close(1000, 'moved');
    } catch {
      /* already closed */
    }
  }

  private decode(data: unknown): ServerMessage | null {
    try {
      return this.codec.decodeServer(data as ArrayBuffer | string);
    } catch {
      return null;
    }
  }

  private onJoin(join: JoinResponse): void {
    const seqBefore = this.lastSeq;
    this.join = join;
    this.reconnectTargets = join.reconnectTargets ?? [];
    if (!join.resumed) {
      // A fresh join may be on another node, with its own router codecs.
      this.capsRequest = undefined;
      this.participants.clear();
      this.producers.clear();
      for (const p of join.otherParticipants ?? []) this.participants.set(p.identity, p);
      this.lastSeq = join.roomSeq ?? 0;
    } else {
      this.lastSeq = seqBefore; // the replay that follows moves it on
    }
    if (this.opts.autoPing !== false && join.pingIntervalMs) {
      clearInterval(this.pingTimer);
      this.pingTimer = setInterval(() => void this.ping().catch(() => undefined), join.pingIntervalMs);
      (this.pingTimer as { unref?: () => void }).unref?.();
    }
  }

  private dispatch(msg: ServerMessage): void {
    const seq = msg.seq ?? 0;
    if (seq > 0) {
      if (seq <= this.lastSeq) return; // already seen (replay overlap)
      this.lastSeq = seq;
    }
    this.emit('message', msg);
    if (msg.response) return this.onResponse(msg.response);
    if (msg.participantJoined) {
      this.participants.set(msg.participantJoined.identity, msg.participantJoined);
      return this.emit('participantJoined', msg.participantJoined);
    }
    if (msg.participantLeft) {
      const { identity } = msg.participantLeft;
      const info = this.participants.get(identity) ?? msg.participantLeft;
      if (this.participants.get(identity)?.sid === msg.participantLeft.sid) this.participants.delete(identity);
      return this.emit('participantLeft', info, msg.participantLeft.reason ?? 'UNKNOWN_REASON');
    }
    if (msg.participantUpdated) {
      const p = msg.participantUpdated;
      if (p.sid === this.join.participant.sid) this.join.participant = p;
      else this.participants.set(p.identity, p);
      return this.emit('participantUpdated', p);
    }
    if (msg.roomUpdated) {
      this.join.room = msg.roomUpdated;
      return this.emit('roomUpdated', msg.roomUpdated);
    }
    if (msg.data) return this.emit('data', msg.data);
    if (msg.relay) {
      // Kept briefly: a peer's offer can arrive before the app (or the Room SDK, still loading
      // its media device) listens for it.
      this.recentRelays.push(msg.relay);
      if (this.recentRelays.length > 256) this.recentRelays.shift();
      return this.emit('relay', msg.relay);
    }
    if (msg.route) {
      this.route = msg.route;
      return this.emit('route', msg.route);
    }
    if (msg.disconnect) {
      this.closedByUs = !msg.disconnect.reconnect;
      return this.emit('disconnect', {
        reason: msg.disconnect.reason ?? 'UNKNOWN_REASON',
        message: msg.disconnect.message ?? '',
        reconnect: !!msg.disconnect.reconnect,
      });
    }
    if (msg.drain) {
      if (msg.drain.reconnectTargets?.length) this.reconnectTargets = msg.drain.reconnectTargets;
      this.emit('drain', { deadlineMs: msg.drain.deadlineMs ?? 0 });
      if (this.opts.failover !== false && this.reconnectTargets.length > 0) void this.move(msg.drain.moveToken || undefined);
      return;
    }
    if (msg.producerAdded) this.producers.set(msg.producerAdded.producerId, msg.producerAdded);
    if (msg.producerRemoved) this.producers.delete(msg.producerRemoved.producerId);
    if (msg.mediaReset) this.producers.clear();
    for (const k of SFU_EVENTS) {
      const body = msg[k];
      if (body !== undefined) return (this.emit as (e: string, b: unknown) => void)(k, body);
    }
  }

  private onResponse(r: Response): void {
    const id = r.requestId ?? 0;
    const p = this.pending.get(id);
    if (!p) {
      if (r.error) this.emit('error', new SignalRequestError(r.error.code, r.error.message ?? '', r.error.field || undefined));
      return;
    }
    this.pending.delete(id);
    clearTimeout(p.timer);
    if (r.error) p.reject(new SignalRequestError(r.error.code, r.error.message ?? '', r.error.field || undefined));
    else p.resolve(r);
  }

  private onClose(code: number, reason: string): void {
    clearInterval(this.pingTimer);
    for (const [, p] of this.pending) {
      clearTimeout(p.timer);
      p.reject(new Error(`connection closed (${code})`));
    }
    this.pending.clear();
    const canResume = this.opts.autoResume !== false && !this.closedByUs && !TERMINAL_CLOSE.has(code);
    if (!canResume) {
      this.emit('closed', { code, reason });
      return;
    }
    this.emit('reconnecting');
    void this.reconnect(code, reason);
  }

  /**
   * Each round: resume on this node; if it does not answer and the cluster named other nodes,
   * rejoin the room on one of them (a fresh join: the token is only good here), nearest first.
   */
  private async reconnect(code: number, reason: string): Promise<void> {
    const deadline = Date.now() + (this.join.resumeWindowMs || 10_000);
    let delay = 100;
    while (!this.closedByUs && Date.now() < deadline) {
      try {
        await this.open({ token: this.join.resumeToken, lastSeq: this.lastSeq });
        this.emit('reconnected', { resumed: !!this.join.resumed });
        return;
      } catch {
        if (this.opts.failover !== false && (await this.rejoinElsewhere())) {
          this.emit('reconnected', { resumed: false });
          return;
        }
        await new Promise((r) => setTimeout(r, delay));
        delay = Math.min(delay * 2, 2000);
      }
    }
    this.emit('closed', { code, reason });
  }

  /** Other nodes, nearest first when measured (measureMesh), else in the server's order. */
  private targets(): { nodeId: string; url: string }[] {
    const here = this.join.server.nodeId;
    const rtt = (id: string): number => this.nodeRtts.get(id) ?? Number.POSITIVE_INFINITY;
    return this.reconnectTargets.filter((t) => t.nodeId !== here).sort((a, b) => rtt(a.nodeId) - rtt(b.nodeId));
  }

  /** A join of the room on the first other node that takes it (`move`: keeping this session). */
  private async rejoinElsewhere(move?: string): Promise<boolean> {
    for (const t of this.targets()) {
      if (this.closedByUs) return false;
      try {
        await this.open(undefined, t.url, move);
        return true;
      } catch {
        /* the next one */
      }
    }
    return false;
  }

  /**
   * The node drains: join the room on another node now, while this connection still works.
   * With the drain's move token the session keeps its sid there (the others see it go on);
   * the old node then closes this connection.
   */
  private async move(token: string | undefined): Promise<void> {
    if (this.moving || this.closedByUs) return;
    this.moving = true;
    this.closedWhileMoving = undefined;
    let moved = false;
    try {
      moved = await this.rejoinElsewhere(token);
      if (moved) this.emit('reconnected', { resumed: false });
    } finally {
      this.moving = false;
      // Nowhere to move, and the old connection is gone meanwhile: the usual close path.
      const closed = this.closedWhileMoving as { code: number; reason: string } | undefined; // set by onclose meanwhile
      this.closedWhileMoving = undefined;
      if (!moved && closed && !this.ws) this.onClose(closed.code, closed.reason);
    }
  }

  /**
   * Sends a request of `kind` and resolves with its answer, typed by the request→response map
   * the server's handlers share (signal/rpc.ts); rejects with SignalRequestError when refused.
   */
  request<K extends RequestKind>(kind: K, body: RequestBody<K>): Promise<ResponseFor<K>> {
    const ws = this.ws;
    if (!ws || ws.readyState !== 1) return Promise.reject(new Error('not connected'));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error('request timed out'));
      }, this.opts.requestTimeoutMs ?? 10_000);
      const settle = (r: Response): void => {
        if (answers(kind, r)) resolve(r);
        else reject(new Error(`the server answered ${kind} without ${RESPONSE_FIELD[kind]}`));
      };
      this.pending.set(id, { resolve: settle, reject, timer });
      ws.send(this.codec.encodeRequest({ id, [kind]: body }));
    });
  }

  /**
   * The SFU routers' RTP capabilities (JSON, for mediasoup-client's Device.load), asked once
   * per client. Rejects with UNKNOWN_MESSAGE when the server has no SFU.
   */
  routerCapabilities(): Promise<string> {
    if (!this.capsRequest) {
      const ask = this.request('getRouterCapabilities', {}).then((r) => r.json);
      // A failed ask (e.g. not connected) may be retried.
      ask.catch(() => {
        if (this.capsRequest === ask) this.capsRequest = undefined;
      });
      this.capsRequest = ask;
    }
    return this.capsRequest;
  }

  async ping(): Promise<number> {
    const t0 = Date.now();
    await this.request('ping', { timestamp: t0, rtt: this.rtt });
    this.rtt = Date.now() - t0;
    return this.rtt;
  }

  /**
   * Measures RTT to the mesh nodes the server named at join (`samples` HTTP probes each, the
   * lowest kept; failures count as loss) and reports them: the route planner uses them.
   */
  async measureMesh(samples = 3, timeoutMs = 2000): Promise<MeshRtt[]> {
    const out = await measureMesh(this.join.probeTargets ?? [], samples, timeoutMs);
    for (const r of out) this.nodeRtts.set(r.nodeId, r.rttMs);
    if (out.length > 0) await this.request('linkReport', { rtts: out });
    return out;
  }

  async sendData(payload: Uint8Array, o: { topic?: string; destinationIdentities?: string[] } = {}): Promise<void> {
    await this.request('sendData', { payload, ...o });
  }

  /** Data without waiting for an acknowledgement (errors arrive as 'error' events). */
  publishData(payload: Uint8Array, o: { topic?: string; destinationIdentities?: string[] } = {}): void {
    this.ws?.send(this.codec.encodeRequest({ sendData: { payload, ...o } }));
  }

  async updateParticipant(u: { name?: string; metadata?: string }): Promise<void> {
    await this.request('updateParticipant', u);
  }

  async updateRoomMetadata(metadata: string): Promise<void> {
    await this.request('updateRoomMetadata', { metadata });
  }

  async relay(signal: RelaySignal): Promise<void> {
    await this.request('relay', signal);
  }

  async listParticipants(): Promise<ParticipantInfo[]> {
    const r = await this.request('listParticipants', {});
    // proto3 leaves an empty list off the wire.
    return r.participants.participants ?? [];
  }

  /** Leaves the room and closes. */
  async leave(): Promise<void> {
    this.closedByUs = true;
    const closed = this.next('closed', 5000).catch(() => undefined);
    await this.request('leave', {}).catch(() => undefined);
    await closed;
  }

  /** Closes without leaving: the server keeps the session for its resume window. */
  close(code = 4999, reason = 'client closed'): void {
    this.closedByUs = true;
    clearInterval(this.pingTimer);
    this.connecting?.close();
    this.ws?.close(code, reason);
  }

  /** Drops the connection as a network failure would (for tests): the client will resume. */
  simulateDrop(): void {
    this.ws?.close(4998, 'simulated drop');
  }
}
