import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import type { JoinGrant } from '../auth/token.js';
import { SignalError } from '../signal/errors.js';
import type { DisconnectReason, IceServer, ParticipantInfo, Response, RouteReport, ServerMessage } from '../signal/messages.js';
import { PROTOCOL_VERSION } from '../signal/messages.js';
import type { ValidRequest } from '../signal/schema.js';
import type { RoomStore } from '../store/types.js';
import { newId } from '../util/ids.js';
import { Participant, permissionFromGrant } from './participant.js';
import { CloseCode, type Connection, type Fanout } from './ports.js';
import { ResumeTokens } from './resumeTokens.js';
import { Room } from './room.js';

export interface RoomManagerOptions {
  nodeId: string;
  version: string;
  autoCreate: boolean;
  emptyTimeoutS: number;
  maxParticipants: number;
  maxMetadataBytes: number;
  maxDataBytes: number;
  resumeWindowMs: number;
  replayCapacity: number;
  pingIntervalMs: number;
  /** A relay node hosts no rooms. */
  relayOnly?: boolean;
}

/** A join refused before the participant exists; the signal layer maps it to HTTP/close. */
export class JoinError extends Error {
  constructor(readonly status: number, readonly code: string, message: string) {
    super(message);
    this.name = 'JoinError';
  }
}

export interface ResumeRequest {
  token: string;
  lastSeq: number;
}

export interface RoomManagerEvents {
  roomStarted: [Room];
  roomFinished: [Room];
  participantJoined: [Room, Participant];
  participantLeft: [Room, Participant, DisconnectReason];
  resumed: [Room, Participant, 'ok' | 'gap' | 'unknown'];
  routeReport: [Room, Participant, RouteReport];
  linkReport: [Room, Participant, { nodeId: string; rttMs: number; lossPct?: number }[]];
}

const utf8Len = (s: string): number => Buffer.byteLength(s, 'utf8');

/**
 * The signalling domain: rooms, participants, presence, metadata, data and P2P relay. Knows
 * nothing of sockets: it talks to clients through Connection and Fanout, and to shared state
 * through RoomStore. Every reliable room message gets a room seq and goes into the room's
 * replay log, so a resumed participant can be brought up to date.
 */
export class RoomManager extends EventEmitter<RoomManagerEvents> {
  readonly rooms = new Map<string, Room>();
  /** STUN/TURN servers with fresh credentials for one identity (set at start when TURN is on). */
  iceServers: (identity: string) => IceServer[] = () => [];
  /** Mesh nodes clients should measure RTT to (set at start by the mesh). */
  probeTargets: () => { nodeId: string; url: string }[] = () => [];
  private draining = false;
  private readonly pruneTimer: NodeJS.Timeout;
  private readonly resumeTokens = new ResumeTokens();

  constructor(
    private readonly opts: RoomManagerOptions,
    private readonly fanout: Fanout,
    /** A shared directory to mirror rooms into (multi-node); none on a single node, where the live maps here are the state. */
    private readonly store: RoomStore | undefined,
    private readonly log: Logger,
  ) {
    super();
    // Replay entries older than the resume window can never be asked for: drop them (every
    // quarter window, so none outlives it by more than a quarter), so idle rooms hold no history.
    const window = Math.max(opts.resumeWindowMs, 1000);
    this.pruneTimer = setInterval(() => {
      for (const room of this.rooms.values()) if (room.log.size > 0) room.log.prune(window);
    }, window / 4);
    this.pruneTimer.unref();
  }

  get isDraining(): boolean {
    return this.draining;
  }

  participantCount(): number {
    let n = 0;
    for (const r of this.rooms.values()) n += r.participants.size;
    return n;
  }

  /** Checks done at upgrade time so a refused join is an HTTP error, not a dead socket. */
  preflight(grant: JoinGrant, resuming: boolean): void {
    if (this.opts.relayOnly) throw new JoinError(421, 'RELAY_NODE', 'this is a relay node (TURN and mesh only): join rooms on an edge node');
    if (this.draining) throw new JoinError(503, 'DRAINING', 'server is draining; connect to another node');
    const room = this.rooms.get(grant.room);
    if (!room) {
      if (!this.opts.autoCreate && !grant.video.roomCreate) {
        throw new JoinError(404, 'ROOM_NOT_FOUND', `room ${JSON.stringify(grant.room)} does not exist`);
      }
      return;
    }
    const existing = room.participants.get(grant.identity);
    if (room.maxParticipants > 0 && !existing && !resuming && room.participants.size >= room.maxParticipants) {
      throw new JoinError(403, 'ROOM_FULL', `room ${JSON.stringify(grant.room)} is full (${room.maxParticipants})`);
    }
  }

  /** Joins (or resumes) and sends the JoinResponse; throws JoinError when refused. */
  join(grant: JoinGrant, conn: Connection, resume?: ResumeRequest, caps: { p2p?: boolean } = {}): { room: Room; participant: Participant } {
    this.preflight(grant, !!resume);
    let room = this.rooms.get(grant.room);
    if (room && resume) {
      const p = room.participants.get(grant.identity);
      if (p && this.resumeTokens.verify(p.sid, resume.token)) {
        const replay = room.log.since(resume.lastSeq, room.seq, p.sid);
        if (replay) {
          this.resumeParticipant(room, p, conn, replay);
          this.emit('resumed', room, p, 'ok');
          return { room, participant: p };
        }
        this.emit('resumed', room, p, 'gap');
      } else if (p) {
        this.emit('resumed', room, p, 'unknown');
      }
    }
    if (!room) room = this.createRoom(grant.room, {});
    const old = room.participants.get(grant.identity);
    if (old) {
      this.removeParticipant(room, old, 'DUPLICATE_IDENTITY', {
        closeCode: CloseCode.REPLACED,
        message: 'another connection joined with the same identity',
      });
    }
    const c = grant.claims;
    const p = new Participant(
      newId('PA_'),
      grant.identity,
      c.name ?? '',
      c.metadata ?? '',
      permissionFromGrant(grant.video),
      !!grant.video.roomAdmin,
      conn,
    );
    if (caps.p2p) p.p2p = true;
    room.clearEmptyTimer();
    // Announce before subscribing the newcomer, so it does not receive its own join.
    if (!p.hidden) this.fanout.publish(room, room.record({ participantJoined: p.info() }));
    room.participants.set(p.identity, p);
    room.peakParticipants = Math.max(room.peakParticipants, room.participants.size);
    conn.send(this.joinResponse(room, p, false));
    this.fanout.subscribe(room, p);
    void this.persist((store) => store.putParticipant(room.name, p.info()));
    this.emit('participantJoined', room, p);
    return { room, participant: p };
  }

  private resumeParticipant(room: Room, p: Participant, conn: Connection, replay: ServerMessage[]): void {
    p.clearResumeTimer();
    const old = p.conn;
    p.conn = conn;
    // A half-open old socket is closed quietly: its close handler sees p.conn !== it.
    old?.close(CloseCode.RESUMED_ELSEWHERE, 'session resumed on another connection');
    conn.send(this.joinResponse(room, p, true));
    for (const m of replay) conn.send(m);
    this.fanout.subscribe(room, p);
  }

  private joinResponse(room: Room, p: Participant, resumed: boolean): ServerMessage {
    const others: ParticipantInfo[] = [];
    for (const o of room.participants.values()) if (o !== p && !o.hidden) others.push(o.info());
    return {
      join: {
        room: room.info(),
        participant: p.info(),
        otherParticipants: others,
        resumeToken: this.resumeTokens.issue(p.sid),
        resumeWindowMs: this.opts.resumeWindowMs,
        roomSeq: room.seq,
        resumed,
        server: { version: this.opts.version, nodeId: this.opts.nodeId, protocol: PROTOCOL_VERSION },
        pingIntervalMs: this.opts.pingIntervalMs,
        iceServers: this.iceServers(p.identity),
        probeTargets: this.probeTargets(),
      },
    };
  }

  createRoom(name: string, o: { metadata?: string; maxParticipants?: number; emptyTimeoutS?: number }): Room {
    const existing = this.rooms.get(name);
    if (existing) return existing;
    const room = new Room(
      newId('RM_'),
      name,
      o.metadata ?? '',
      o.maxParticipants ?? this.opts.maxParticipants,
      o.emptyTimeoutS ?? this.opts.emptyTimeoutS,
      this.opts.replayCapacity,
    );
    this.rooms.set(name, room);
    this.scheduleEmptyClose(room);
    void this.persist((store) => store.putRoom(room.info(), this.opts.nodeId));
    this.emit('roomStarted', room);
    return room;
  }

  /** The participant's socket closed without Leave: keep its place for the resume window. */
  connectionClosed(room: Room, p: Participant, conn: Connection): void {
    if (p.conn !== conn) return; // replaced, resumed elsewhere, or removed already
    p.conn = null;
    if (room.participants.get(p.identity) !== p) return;
    if (this.opts.resumeWindowMs <= 0 || this.draining) {
      this.removeParticipant(room, p, this.draining ? 'SERVER_SHUTDOWN' : 'CLIENT_INITIATED');
      return;
    }
    p.resumeTimer = setTimeout(() => this.removeParticipant(room, p, 'RESUME_EXPIRED'), this.opts.resumeWindowMs);
    p.resumeTimer.unref();
  }

  /**
   * Removes a participant, tells the others, and (with closeCode) tells the participant why
   * and closes its connection. Returns false when it was not (or no longer) in the room.
   */
  removeParticipant(
    room: Room,
    p: Participant,
    reason: DisconnectReason,
    close?: { closeCode: number; message: string; reconnect?: boolean },
  ): boolean {
    if (room.participants.get(p.identity) !== p) return false;
    room.participants.delete(p.identity);
    p.clearResumeTimer();
    const conn = p.conn;
    p.conn = null;
    if (conn) {
      this.fanout.unsubscribe(room, p);
      if (close) {
        conn.send({ disconnect: { reason, message: close.message, reconnect: !!close.reconnect } });
        conn.close(close.closeCode, close.message);
      }
    }
    if (!p.hidden) {
      this.fanout.publish(room, room.record({ participantLeft: { sid: p.sid, identity: p.identity, reason } }));
    }
    void this.persist((store) => store.deleteParticipant(room.name, p.identity));
    this.emit('participantLeft', room, p, reason);
    if (room.participants.size === 0) this.scheduleEmptyClose(room);
    return true;
  }

  private scheduleEmptyClose(room: Room): void {
    room.clearEmptyTimer();
    room.emptyTimer = setTimeout(() => {
      if (room.participants.size === 0) this.closeRoom(room, 'ROOM_DELETED');
    }, room.emptyTimeoutS * 1000);
    room.emptyTimer.unref();
  }

  /** Closes a room, disconnecting everyone in it. */
  closeRoom(room: Room, reason: DisconnectReason, closeCode: number = CloseCode.ROOM_DELETED): void {
    if (room.closed) return;
    for (const p of [...room.participants.values()]) {
      // Shutting down: the client should reconnect (to another node); otherwise it is final.
      this.removeParticipant(room, p, reason, {
        closeCode,
        message: `room closed (${reason})`,
        reconnect: reason === 'SERVER_SHUTDOWN',
      });
    }
    room.closed = true;
    room.clearEmptyTimer();
    this.rooms.delete(room.name);
    void this.persist((store) => store.deleteRoom(room.name));
    this.emit('roomFinished', room);
  }

  /** Dispatches a validated request; returns the Response body, or throws SignalError. */
  handle(room: Room, p: Participant, req: ValidRequest): Omit<Response, 'requestId'> {
    switch (req.kind) {
      case 'ping':
        if (req.body.rtt !== undefined) p.rttMs = req.body.rtt;
        return { pong: { timestamp: req.body.timestamp ?? 0, serverTime: Date.now() } };
      case 'sendData':
        this.sendData(room, p, req.body);
        return { ok: {} };
      case 'updateParticipant':
        if (!p.permission.canUpdateMetadata) {
          throw new SignalError('PERMISSION_DENIED', 'token lacks canUpdateOwnMetadata', 'updateParticipant');
        }
        this.updateParticipant(room, p, req.body);
        return { ok: {} };
      case 'updateRoomMetadata':
        if (!p.roomAdmin) throw new SignalError('PERMISSION_DENIED', 'token lacks roomAdmin', 'updateRoomMetadata');
        this.updateRoomMetadata(room, req.body.metadata);
        return { ok: {} };
      case 'relay':
        this.relay(room, p, req.body);
        return { ok: {} };
      case 'linkReport':
        for (const r of req.body.rtts) p.setNodeRtt(r.nodeId, r.rttMs);
        this.emit('linkReport', room, p, req.body.rtts);
        return { ok: {} };
      case 'routeReport':
        // The mesh's call router owns routes (mesh/callRouter.ts).
        this.emit('routeReport', room, p, req.body);
        return { ok: {} };
      case 'leave':
        // The Response is sent by the caller before the connection closes.
        return { ok: {} };
      case 'listParticipants': {
        const list: ParticipantInfo[] = [];
        for (const o of room.participants.values()) if (!o.hidden || o === p) list.push(o.info());
        return { participants: { participants: list } };
      }
      default:
        // Media requests are the SFU's (signal/gateway.ts routes them there).
        throw new SignalError('UNKNOWN_MESSAGE', `${req.kind} is not a room request`, req.kind);
    }
  }

  private sendData(
    room: Room,
    p: Participant,
    body: { payload: Uint8Array; topic?: string | undefined; destinationIdentities?: string[] | undefined },
  ): void {
    if (!p.permission.canPublishData) throw new SignalError('PERMISSION_DENIED', 'token lacks canPublishData', 'sendData');
    if (body.payload.byteLength > this.opts.maxDataBytes) {
      throw new SignalError('TOO_LARGE', `payload is over ${this.opts.maxDataBytes} bytes`, 'sendData.payload');
    }
    const dests = body.destinationIdentities ?? [];
    const targets: Participant[] = [];
    for (const id of dests) {
      const t = room.participants.get(id);
      if (!t) throw new SignalError('NOT_FOUND', `no participant ${JSON.stringify(id)} in the room`, 'sendData.destinationIdentities');
      targets.push(t);
    }
    const data = {
      participantSid: p.sid,
      participantIdentity: p.identity,
      payload: body.payload,
      timestamp: Date.now(),
      ...(body.topic ? { topic: body.topic } : {}),
      ...(dests.length ? { destinationIdentities: dests } : {}),
    };
    if (targets.length === 0) {
      this.fanout.publish(room, room.record({ data }, { except: p.sid }), p);
      return;
    }
    const msg = room.record({ data }, { only: targets.map((t) => t.sid) });
    for (const t of targets) t.conn?.send(msg);
  }

  updateParticipant(room: Room, p: Participant, body: { name?: string | undefined; metadata?: string | undefined }): void {
    if (body.metadata !== undefined && utf8Len(body.metadata) > this.opts.maxMetadataBytes) {
      throw new SignalError('TOO_LARGE', `metadata is over ${this.opts.maxMetadataBytes} bytes`, 'updateParticipant.metadata');
    }
    if (body.name !== undefined) p.name = body.name;
    if (body.metadata !== undefined) p.metadata = body.metadata;
    this.announceParticipant(room, p);
  }

  /** Tells the room (or, for a hidden participant, only itself) about a participant change. */
  announceParticipant(room: Room, p: Participant): void {
    if (p.hidden) p.conn?.send(room.record({ participantUpdated: p.info() }, { only: [p.sid] }));
    else this.fanout.publish(room, room.record({ participantUpdated: p.info() }));
    void this.persist((store) => store.putParticipant(room.name, p.info()));
  }

  updateRoomMetadata(room: Room, metadata: string): void {
    if (utf8Len(metadata) > this.opts.maxMetadataBytes) {
      throw new SignalError('TOO_LARGE', `metadata is over ${this.opts.maxMetadataBytes} bytes`, 'updateRoomMetadata.metadata');
    }
    room.metadata = metadata;
    this.fanout.publish(room, room.record({ roomUpdated: room.info() }));
    void this.persist((store) => store.putRoom(room.info(), this.opts.nodeId));
  }

  private relay(room: Room, p: Participant, body: Extract<ValidRequest, { kind: 'relay' }>['body']): void {
    const target = room.participants.get(body.identity);
    if (!target) throw new SignalError('NOT_FOUND', `no participant ${JSON.stringify(body.identity)} in the room`, 'relay.identity');
    if (target === p) throw new SignalError('INVALID_FIELD', 'cannot relay to yourself', 'relay.identity');
    const msg = room.record({ relay: { ...body, identity: p.identity } }, { only: [target.sid] });
    target.conn?.send(msg);
  }

  /** A reliable message for some participants only (kept for their replay on resume). */
  sendTo(room: Room, msg: ServerMessage, targets: readonly Participant[]): void {
    if (targets.length === 0) return;
    room.record(msg, { only: targets.map((t) => t.sid) });
    for (const t of targets) t.conn?.send(msg);
  }

  /** Data from the server (server API SendData): no sender; to the room or named identities. */
  sendServerData(room: Room, payload: Uint8Array, topic: string | undefined, identities: string[]): void {
    const data = {
      participantSid: '',
      participantIdentity: '',
      payload,
      timestamp: Date.now(),
      ...(topic ? { topic } : {}),
      ...(identities.length ? { destinationIdentities: identities } : {}),
    };
    if (identities.length === 0) {
      this.fanout.publish(room, room.record({ data }));
      return;
    }
    const targets = identities.map((id) => room.participants.get(id)).filter((p): p is Participant => !!p);
    this.sendTo(room, { data }, targets);
  }

  /** Explicit Leave from the client. */
  leave(room: Room, p: Participant): void {
    this.removeParticipant(room, p, 'CLIENT_INITIATED', { closeCode: CloseCode.NORMAL, message: 'left' });
  }

  /** Starts draining: no new joins; every connected participant is told to reconnect elsewhere. */
  beginDrain(deadlineMs: number): void {
    this.draining = true;
    for (const room of this.rooms.values()) {
      for (const p of room.participants.values()) {
        if (p.conn) p.conn.send({ drain: { deadlineMs } });
        else this.removeParticipant(room, p, 'SERVER_SHUTDOWN'); // nobody to resume here any more
      }
    }
  }

  /** Ends every session (drain deadline or shutdown). */
  closeAll(reason: DisconnectReason, closeCode: number): void {
    for (const room of [...this.rooms.values()]) this.closeRoom(room, reason, closeCode);
  }

  /** Clears every timer this manager owns (after closeAll, nothing is left). */
  dispose(): void {
    clearInterval(this.pruneTimer);
    for (const room of this.rooms.values()) {
      room.clearEmptyTimer();
      for (const p of room.participants.values()) p.clearResumeTimer();
    }
    this.removeAllListeners();
  }

  private async persist(op: (store: RoomStore) => Promise<void>): Promise<void> {
    if (!this.store) return;
    try {
      await op(this.store);
    } catch (err) {
      this.log.warn({ err }, 'room store write failed');
    }
  }
}
