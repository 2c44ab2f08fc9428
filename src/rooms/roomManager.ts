import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import type { JoinGrant } from '../auth/token.js';
import { SignalError } from '../signal/errors.js';
import type { DisconnectReason, ParticipantInfo, ParticipantPermission, ServerMessage } from '../signal/messages.js';
import { PROTOCOL_VERSION } from '../signal/messages.js';
import { newId } from '../util/ids.js';
import { Participant, permissionFromGrant } from './participant.js';
import type { Delivery } from './delivery.js';
import type { RoomMirror } from './mirror.js';
import { CloseCode, type Connection } from './ports.js';
import { ResumeTokens } from './resumeTokens.js';
import { Room } from './room.js';
import type { Track } from './track.js';
import { JoinError, type JoinExtras, type LinkRtt, type ResumeRequest, type RoomManagerEvents } from './types.js';

export interface RoomManagerOptions {
  nodeId: string;
  version: string;
  autoCreate: boolean;
  emptyTimeoutS: number;
  maxParticipants: number;
  maxMetadataBytes: number;
  resumeWindowMs: number;
  replayCapacity: number;
  pingIntervalMs: number;
  /** A relay node hosts no rooms. */
  relayOnly?: boolean;
}

const utf8Len = (s: string): number => Buffer.byteLength(s, 'utf8');

/**
 * The signalling domain: rooms, participants, presence, metadata, tracks and permissions.
 * Knows nothing of sockets: it talks to clients through Delivery (reliable messages are
 * numbered and kept for replay, so a resumed participant is brought up to date) and, for the
 * join response and disconnects, the participant's Connection.
 */
export class RoomManager extends EventEmitter<RoomManagerEvents> {
  readonly rooms = new Map<string, Room>();
  private draining = false;
  private readonly pruneTimer: NodeJS.Timeout;
  private readonly resumeTokens = new ResumeTokens();

  constructor(
    private readonly opts: RoomManagerOptions,
    private readonly delivery: Delivery,
    /** What every join response hands the client besides the room. */
    private readonly extras: JoinExtras,
    /** A copy for an outside observer; none by default (the live maps here are the state). */
    private readonly mirror: RoomMirror | undefined,
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
    const existing = room.participants.get(grant.identity) ?? room.remote.get(grant.identity);
    if (room.maxParticipants > 0 && !existing && !resuming && room.size >= room.maxParticipants) {
      throw new JoinError(403, 'ROOM_FULL', `room ${JSON.stringify(grant.room)} is full (${room.maxParticipants})`);
    }
  }

  /** Whether join() with this resume would resume a live session here (not start a new one). */
  resumable(grant: JoinGrant, resume: ResumeRequest): boolean {
    const room = this.rooms.get(grant.room);
    const p = room?.participants.get(grant.identity);
    return !!room && !!p && this.resumeTokens.verify(p.sid, resume.token) && room.log.since(resume.lastSeq, room.seq, p.sid) !== null;
  }

  /**
   * Whether `resumeToken` belongs to the grant's identity's session in its room here: its
   * reconnect takes that session's place (resumed, or rejoined when the replay has a gap).
   */
  holdsSession(grant: JoinGrant, resumeToken: string): boolean {
    const p = this.rooms.get(grant.room)?.participants.get(grant.identity);
    return !!p && this.resumeTokens.verify(p.sid, resumeToken);
  }

  /** Joins (or resumes) and sends the JoinResponse; throws JoinError when refused. */
  /** `caps.sid`: the participant's sid when the cluster chose it (admitted it) first. */
  /** `caps.moved`: the session `caps.sid` moves here from another node (the others already know it). */
  join(grant: JoinGrant, conn: Connection, resume?: ResumeRequest, caps: { p2p?: boolean; sid?: string; moved?: boolean } = {}): { room: Room; participant: Participant } {
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
      caps.sid ?? newId('PA_'),
      grant.identity,
      c.name ?? '',
      c.metadata ?? '',
      permissionFromGrant(grant.video),
      !!grant.video.roomAdmin,
      conn,
    );
    if (caps.p2p) p.p2p = true;
    p.movedIn = !!caps.moved;
    room.clearEmptyTimer();
    // Announce before subscribing the newcomer, so it does not receive its own join. A session
    // moving in is one the room knows: it goes on (participantUpdated), it did not join.
    if (!p.hidden) this.delivery.toRoom(room, p.movedIn ? { participantUpdated: p.info() } : { participantJoined: p.info() });
    room.add(p);
    conn.send(this.joinResponse(room, p, false));
    this.delivery.subscribe(room, p);
    void this.mirrorWrite((m) => m.putParticipant(room.name, p.info()));
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
    this.delivery.subscribe(room, p);
  }

  private joinResponse(room: Room, p: Participant, resumed: boolean): ServerMessage {
    const others: ParticipantInfo[] = [];
    for (const o of room.participants.values()) if (o !== p && !o.hidden) others.push(o.info());
    for (const r of room.remote.values()) if (!r.info.permission.hidden) others.push(r.info);
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
        iceServers: this.extras.iceServers(p.identity),
        probeTargets: this.extras.probeTargets(),
        reconnectTargets: this.extras.reconnectTargets(),
      },
    };
  }

  /** `o.sid`: the room session's sid when the cluster directory gave it. */
  createRoom(name: string, o: { sid?: string; metadata?: string; maxParticipants?: number; emptyTimeoutS?: number }): Room {
    const existing = this.rooms.get(name);
    if (existing) return existing;
    const room = new Room(
      o.sid ?? newId('RM_'),
      name,
      o.metadata ?? '',
      o.maxParticipants ?? this.opts.maxParticipants,
      o.emptyTimeoutS ?? this.opts.emptyTimeoutS,
      this.opts.replayCapacity,
    );
    this.rooms.set(name, room);
    this.scheduleEmptyClose(room);
    void this.mirrorWrite((m) => m.putRoom(room.info(), this.opts.nodeId));
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
    if (!room.remove(p)) return false;
    // Its session is held by another node now (a drain's move): it did not leave the room.
    if (room.remote.get(p.identity)?.info.sid === p.sid) reason = 'MIGRATION';
    p.clearResumeTimer();
    const conn = p.conn;
    p.conn = null;
    if (conn) {
      this.delivery.unsubscribe(room, p);
      if (close) {
        conn.send({ disconnect: { reason, message: close.message, reconnect: !!close.reconnect } });
        conn.close(close.closeCode, close.message);
      }
    }
    if (!p.hidden && reason !== 'MIGRATION') {
      this.delivery.toRoom(room, { participantLeft: { sid: p.sid, identity: p.identity, reason } });
    }
    void this.mirrorWrite((m) => m.deleteParticipant(room.name, p.identity));
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
    void this.mirrorWrite((m) => m.deleteRoom(room.name));
    this.emit('roomFinished', room);
  }

  /** A participant's own list: the visible participants, and itself even when hidden. */
  listParticipants(room: Room, p: Participant): ParticipantInfo[] {
    const list: ParticipantInfo[] = [];
    for (const o of room.participants.values()) if (!o.hidden || o === p) list.push(o.info());
    for (const r of room.remote.values()) if (!r.info.permission.hidden) list.push(r.info);
    return list;
  }

  ping(p: Participant, body: { timestamp?: number | undefined; rtt?: number | undefined }): { timestamp: number; serverTime: number } {
    if (body.rtt !== undefined) p.rttMs = body.rtt;
    return { timestamp: body.timestamp ?? 0, serverTime: Date.now() };
  }

  /** The client's RTTs to mesh nodes (the mesh stores them for the route planner). */
  linkReport(room: Room, p: Participant, rtts: LinkRtt[]): void {
    for (const r of rtts) p.setNodeRtt(r.nodeId, r.rttMs);
    this.emit('linkReport', room, p, rtts);
  }

  updateParticipant(room: Room, p: Participant, body: { name?: string | undefined; metadata?: string | undefined }): void {
    if (body.metadata !== undefined && utf8Len(body.metadata) > this.opts.maxMetadataBytes) {
      throw new SignalError('TOO_LARGE', `metadata is over ${this.opts.maxMetadataBytes} bytes`, 'updateParticipant.metadata');
    }
    if (body.name !== undefined) p.name = body.name;
    if (body.metadata !== undefined) p.metadata = body.metadata;
    this.announceParticipant(room, p);
  }

  /** The participant's own request: needs canUpdateOwnMetadata. */
  updateOwnParticipant(room: Room, p: Participant, body: { name?: string | undefined; metadata?: string | undefined }): void {
    if (!p.permission.canUpdateMetadata) {
      throw new SignalError('PERMISSION_DENIED', 'token lacks canUpdateOwnMetadata', 'updateParticipant');
    }
    this.updateParticipant(room, p, body);
  }

  /** Tells the room (or, for a hidden participant, only itself) about a participant change. */
  announceParticipant(room: Room, p: Participant): void {
    if (p.hidden) this.delivery.toParticipants(room, [p.sid], { participantUpdated: p.info() });
    else this.delivery.toRoom(room, { participantUpdated: p.info() });
    void this.mirrorWrite((m) => m.putParticipant(room.name, p.info()));
  }

  /** New permissions (server API); what they no longer allow is undone by their enforcers. */
  setPermission(room: Room, p: Participant, permission: ParticipantPermission): void {
    p.permission = permission;
    this.emit('permissionChanged', room, p);
  }

  updateRoomMetadata(room: Room, metadata: string): void {
    if (utf8Len(metadata) > this.opts.maxMetadataBytes) {
      throw new SignalError('TOO_LARGE', `metadata is over ${this.opts.maxMetadataBytes} bytes`, 'updateRoomMetadata.metadata');
    }
    room.metadata = metadata;
    this.delivery.toRoom(room, { roomUpdated: room.info() });
    void this.mirrorWrite((m) => m.putRoom(room.info(), this.opts.nodeId));
  }

  /** A participant's own request: needs roomAdmin. */
  updateRoomMetadataAsAdmin(room: Room, p: Participant, metadata: string): void {
    if (!p.roomAdmin) throw new SignalError('PERMISSION_DENIED', 'token lacks roomAdmin', 'updateRoomMetadata');
    this.updateRoomMetadata(room, metadata);
  }

  // ---------- tracks (the SFU publishes them here) ----------

  trackPublished(room: Room, p: Participant, track: Track): void {
    p.addTrack(track);
    this.emit('trackPublished', room, p, track);
  }

  trackUnpublished(room: Room, p: Participant, producerId: string): void {
    const t = p.removeTrack(producerId);
    if (t) this.emit('trackUnpublished', room, p, t);
  }

  trackPaused(room: Room, p: Participant, producerId: string, paused: boolean): void {
    const t = p.tracks.get(producerId);
    if (!t || t.paused === paused) return;
    t.paused = paused;
    this.emit('trackMuted', room, p, t);
  }

  /** Explicit Leave from the client. */
  leave(room: Room, p: Participant): void {
    this.removeParticipant(room, p, 'CLIENT_INITIATED', { closeCode: CloseCode.NORMAL, message: 'left' });
  }

  /** Starts draining: no new joins; every connected participant is told to reconnect elsewhere. */
  /** `moveToken`: in a cluster, what lets a session keep its sid on the node it moves to. */
  beginDrain(deadlineMs: number, moveToken?: (room: Room, p: Participant) => string): void {
    this.draining = true;
    const reconnectTargets = this.extras.reconnectTargets();
    for (const room of this.rooms.values()) {
      for (const p of room.participants.values()) {
        if (p.conn) p.conn.send({ drain: { deadlineMs, reconnectTargets, ...(moveToken ? { moveToken: moveToken(room, p) } : {}) } });
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

  private async mirrorWrite(op: (mirror: RoomMirror) => Promise<void>): Promise<void> {
    if (!this.mirror) return;
    try {
      await op(this.mirror);
    } catch (err) {
      this.log.warn({ err }, 'room mirror write failed');
    }
  }
}
