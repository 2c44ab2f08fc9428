import { EventEmitter } from 'node:events';
import type { JoinGrant } from '../auth/token.js';
import type { Logger } from '../obs/logger.js';
import type { Delivery } from '../rooms/delivery.js';
import { permissionFromGrant, type Participant } from '../rooms/participant.js';
import { CloseCode, type Connection } from '../rooms/ports.js';
import { Room } from '../rooms/room.js';
import type { RoomManager } from '../rooms/roomManager.js';
import { JoinError, type ResumeRequest, type RoomManagerEvents } from '../rooms/types.js';
import type { ParticipantInfo } from '../signal/messages.js';
import { newId } from '../util/ids.js';
import { issueMoveToken, verifyMoveToken } from './moveToken.js';
import { isFrame, type ClusterDelivery } from './bridge.js';
import type { DirEntry, FinishedRoom, RoomDirectory } from './directory.js';
import type { ClusterOptions, DirEvent, JoinResult, RosterEvents } from './clusterTypes.js';
import { HeldRooms } from './heldRooms.js';
import { RosterSync } from './rosterSync.js';

/**
 * One room across nodes: admission through the Redis directory (after the socket opened:
 * the upgrade stays synchronous and pre-checks only the in-process roster), the roster of
 * other nodes' participants (`Room.remote`) kept from the directory's events, leases
 * (heartbeat + reaper), re-synchronisation after a Redis outage, and the room-level
 * lifecycle (room_started / room_finished once per session cluster-wide: emitted by the
 * node whose script started or finished it). Its events replace the manager's for webhooks
 * and call rows.
 */
export class ClusterRooms extends EventEmitter<RoomManagerEvents> {
  /** `Room.remote` changes (a direct call is node-local: the call policy listens). */
  readonly roster = new EventEmitter<RosterEvents>();
  private readonly held: HeldRooms;
  private readonly sync: RosterSync;
  private timer: NodeJS.Timeout | undefined;
  /**
   * No reaping until then: after an outage every lease in a Redis that kept its data has
   * lapsed, live nodes included; they renew within a lease of its return.
   */
  private reapAfter = 0;
  private down = false;
  private closed = false;
  private readonly chPrefix: string;

  constructor(
    private readonly manager: RoomManager,
    private readonly dir: RoomDirectory,
    private readonly bridge: ClusterDelivery,
    /** The node-local delivery: what this node tells its own participants about others. */
    private readonly local: Delivery,
    private readonly opts: ClusterOptions,
    private readonly log: Logger,
  ) {
    super();
    this.chPrefix = dir.roomChannel('');
    this.held = new HeldRooms(dir, (err) => this.markDown(err));
    this.sync = new RosterSync(this.held, manager, dir, local, this.roster, opts, () => !this.down && !this.closed, log);
    for (const ev of ['trackPublished', 'trackUnpublished'] as const) {
      manager.on(ev, (...args: unknown[]) => (this.emit as (e: string, ...a: unknown[]) => boolean)(ev, ...args));
    }
    // A session that moved between nodes (drain) is one participant session cluster-wide:
    // neither its leaving the old node nor its arrival on the new one is a join or a leave.
    manager.on('participantJoined', (room, p) => {
      if (!p.movedIn) this.emit('participantJoined', room, p);
    });
    manager.on('participantLeft', (room, p, reason) => {
      if (reason === 'MIGRATION') return; // its entry is the new node's now
      this.emit('participantLeft', room, p, reason);
      this.held.track(this.dir.leave(room.name, p.identity, p.sid, this.opts.nodeId));
    });
    // Tracks in the directory: lists from other nodes show them.
    for (const ev of ['trackPublished', 'trackUnpublished', 'trackMuted'] as const) {
      manager.on(ev, (room, p) => {
        if (!this.down && !this.closed) this.held.track(this.dir.updateTracks(room.name, p.identity, p.sid, [...p.tracks.values()], this.opts.nodeId));
      });
    }
    manager.on('roomFinished', (room) => this.localRoomClosed(room));
    dir.sub.on('messageBuffer', (ch: Buffer, buf: Buffer) => {
      try {
        this.onMessage(ch.toString(), buf);
      } catch (err) {
        this.log.error({ err }, 'cluster message failed');
      }
    });
    // A reconnect may be to an empty Redis (restarted) before any command failed: treat
    // every lost connection as an outage, so the next 'ready' resyncs.
    dir.client.on('close', () => {
      if (!this.closed) this.markDown(new Error('Redis connection closed'));
    });
    dir.client.on('ready', () => {
      if (this.down && !this.closed) void this.resyncAll();
    });
    // The subscriber came back (ioredis re-subscribes): events published while it was away
    // were not heard; a read of each held room finds them.
    let subOnce = false;
    dir.sub.on('ready', () => {
      if (subOnce && !this.closed) for (const name of this.held.names()) this.sync.later(name, opts.heartbeatMs);
      subOnce = true;
    });
  }

  /** Connects and starts the lease; forgets whatever an earlier process with this id held. */
  async start(): Promise<void> {
    try {
      await this.dir.connect();
      this.finished(await this.dir.forget(this.opts.nodeId));
      await this.dir.heartbeat(this.opts.nodeId, this.opts.now() + this.opts.leaseMs);
    } catch (err) {
      this.down = true;
      this.log.warn({ err: (err as Error).message }, 'cluster: Redis unavailable; serving this node only until it returns');
    }
    this.timer = setInterval(() => void this.tick(), this.opts.heartbeatMs);
    this.timer.unref();
  }

  private async tick(): Promise<void> {
    if (this.down || this.closed) return;
    try {
      await this.dir.heartbeat(this.opts.nodeId, this.opts.now() + this.opts.leaseMs);
      if (Date.now() >= this.reapAfter) this.finished(await this.dir.reap(this.opts.now()));
    } catch (err) {
      this.markDown(err);
    }
  }

  private markDown(err: unknown): void {
    if (this.down) return;
    this.down = true;
    this.log.warn({ err: (err as Error).message }, 'cluster: Redis lost; this node serves its own participants, resyncing when it returns');
  }

  // ---------- JoinService (the gateway's) ----------

  preflight(grant: JoinGrant, resuming: boolean): void {
    this.manager.preflight(grant, resuming);
  }

  connectionClosed(room: Room, p: Participant, conn: Connection): void {
    this.manager.connectionClosed(room, p, conn);
  }

  join(grant: JoinGrant, conn: Connection, resume: ResumeRequest | undefined, caps: { p2p?: boolean; move?: string }): JoinResult | Promise<JoinResult> {
    const { move, ...rest } = caps;
    // A resume on the node that holds the session is local; anything else is a (re)join.
    if (resume && this.manager.resumable(grant, resume)) return this.manager.join(grant, conn, resume, rest);
    if (this.down || this.closed) return this.localJoin(grant, conn, rest); // resynced when Redis returns
    // A session a draining node hands over keeps its sid (a bad or stale token: a plain join).
    const m = move && this.opts.moveSecret ? verifyMoveToken(this.opts.moveSecret, move, this.opts.now()) : undefined;
    const moved = m && m.room === grant.room && m.identity === grant.identity ? m.sid : undefined;
    return this.admit(grant, conn, rest, moved);
  }

  /** A drain's move token for one of this node's sessions, good until `deadline`. */
  moveToken(room: Room, p: Participant, deadline: number): string | undefined {
    const secret = this.opts.moveSecret;
    return secret ? issueMoveToken(secret, { room: room.name, identity: p.identity, sid: p.sid, exp: deadline }) : undefined;
  }

  /**
   * Admission by this node alone (Redis away). A room it starts meanwhile is its own to
   * report (room_started here), so participant rows have their call.
   */
  private localJoin(grant: JoinGrant, conn: Connection, caps: { p2p?: boolean; sid?: string }): JoinResult {
    const had = this.manager.rooms.has(grant.room);
    const r = this.manager.join(grant, conn, undefined, caps);
    if (!had) this.emit('roomStarted', r.room);
    return r;
  }

  /** `movedSid`: the session moves here from another node (a drain) and keeps its sid. */
  private async admit(grant: JoinGrant, conn: Connection, caps: { p2p?: boolean }, movedSid?: string): Promise<JoinResult> {
    const name = grant.room;
    const h = this.held.hold(name);
    h.joining++;
    const sid = movedSid ?? newId('PA_');
    h.admitting.set(sid, []);
    try {
      await h.subscribed;
      const c = grant.claims;
      const info: ParticipantInfo = {
        sid,
        identity: grant.identity,
        name: c.name ?? '',
        metadata: c.metadata ?? '',
        joinedAt: Date.now(),
        permission: permissionFromGrant(grant.video),
      };
      // A node holding the room is subscribed and hears every change: no snapshot needed.
      let wantParts = false;
      const a = await this.held.serial(h, () =>
        this.dir.admit({
          room: name,
          node: this.opts.nodeId,
          identity: grant.identity,
          sid,
          info,
          defaultMax: this.manager.rooms.get(name)?.maxParticipants ?? this.opts.defaultMaxParticipants,
          newRoomSid: newId('RM_'),
          leaseExpiry: this.opts.now() + this.opts.leaseMs,
          now: this.opts.now(),
          emptyTimeoutS: this.opts.emptyTimeoutS,
          wantParts: (wantParts = !h.synced || !this.manager.rooms.has(name)),
        }),
      ).catch((err: Error) => {
        this.markDown(err);
        return undefined;
      });
      if (!a) return this.localJoin(grant, conn, { ...caps, sid });
      if (!a.ok) throw new JoinError(403, 'ROOM_FULL', `room ${JSON.stringify(name)} is full (${a.max})`);
      let room = this.manager.rooms.get(name);
      if (!room) {
        room = this.manager.createRoom(name, { sid: a.meta.sid, metadata: a.meta.metadata, maxParticipants: a.meta.maxParticipants, emptyTimeoutS: a.meta.emptyTimeoutS });
      }
      room.metadata = a.meta.metadata;
      room.maxParticipants = a.meta.maxParticipants;
      const early = h.admitting.get(sid) ?? [];
      h.admitting.delete(sid);
      if (wantParts) {
        this.applySnapshot(room, a.parts);
        h.synced = true;
      }
      // The identity is this node's now (a replacement of a session elsewhere): the old one
      // leaves the roster quietly (its node removes it; the newcomer's join is announced).
      if (room.remote.delete(grant.identity)) this.roster.emit('remoteChanged', room);
      if (a.started) this.emit('roomStarted', room);
      // Moved only if the directory had it as that session (else the old node let it go: a join).
      const moved = !!movedSid && a.replaced?.sid === movedSid;
      try {
        const joined = this.manager.join(grant, conn, undefined, { ...caps, sid, moved });
        const only = new Set([sid]);
        for (const f of early) this.bridge.receive(joined.room, f, only);
        return joined;
      } catch (err) {
        this.held.track(this.dir.leave(name, grant.identity, sid, this.opts.nodeId));
        throw err;
      }
    } finally {
      h.admitting.delete(sid);
      h.joining--;
      if (h.joining === 0) {
        const room = this.manager.rooms.get(name);
        const buffered = h.buffer.splice(0);
        if (room) for (const e of buffered) this.apply(room, e);
        else this.maybeRelease(name, undefined);
      }
    }
  }

  private applySnapshot(room: Room, parts: Map<string, DirEntry>): void {
    room.remote.clear();
    for (const [identity, e] of parts) if (e.node !== this.opts.nodeId) room.remote.set(identity, { node: e.node, info: e.info });
    this.roster.emit('remoteChanged', room);
  }

  // ---------- events from Redis ----------

  private onMessage(channel: string, buf: Buffer): void {
    if (!channel.startsWith(this.chPrefix)) return;
    const name = channel.slice(this.chPrefix.length);
    const h = this.held.get(name);
    if (!h) return;
    const room = this.manager.rooms.get(name);
    if (isFrame(buf)) {
      // Before the room exists here (its first joiners), a frame can only be for them.
      const missing = room ? this.bridge.receive(room, buf) : [...h.admitting.keys()];
      for (const sid of missing) h.admitting.get(sid)?.push(buf);
      return;
    }
    const e = JSON.parse(buf.toString()) as DirEvent;
    if (h.joining > 0) h.buffer.push(e);
    else if (room) this.apply(room, e);
  }

  private apply(room: Room, e: DirEvent): void {
    const me = this.opts.nodeId;
    switch (e.t) {
      case 'join': {
        if (e.n === me) return;
        const info = JSON.parse(e.i!) as ParticipantInfo;
        const known = room.remote.get(e.id)?.info.sid === e.s;
        room.remote.set(e.id, { node: e.n, info });
        if (!known) {
          this.roster.emit('remoteChanged', room);
          this.roster.emit('remoteJoined', room, info);
        }
        const mine = room.participants.get(e.id);
        if (mine && mine.sid === e.oldSid) {
          this.manager.removeParticipant(room, mine, 'DUPLICATE_IDENTITY', {
            closeCode: CloseCode.REPLACED,
            message: 'another connection joined with the same identity (on another node)',
          });
        }
        // Re-announced after an outage: this node's participants were told it left.
        if (e.re && !known && !info.permission.hidden) this.local.toRoom(room, { participantJoined: info });
        return;
      }
      case 'leave': {
        if (e.n === me) {
          // Reaped while alive (a lease lapse): put this node's live state back.
          if (e.reaped && room.participants.get(e.id)?.sid === e.s) this.sync.resync(room.name);
          return;
        }
        const h = this.held.get(room.name);
        if (h && h.reads > 0) h.gone.add(e.s);
        const r = room.remote.get(e.id);
        if (!r || r.info.sid !== e.s) return;
        room.remote.delete(e.id);
        this.roster.emit('remoteChanged', room);
        // Its node is gone: nobody else will tell this node's participants.
        if (e.reaped && !r.info.permission.hidden) {
          this.local.toRoom(room, { participantLeft: { sid: e.s, identity: e.id, reason: 'UNKNOWN_REASON' } });
        }
        return;
      }
      case 'finished':
        if (room.participants.size > 0) this.sync.resync(room.name);
        return;
      case 'delete':
        this.manager.closeRoom(room, 'ROOM_DELETED');
        return;
    }
  }

  // ---------- releases, leases, resync ----------

  private localRoomClosed(room: Room): void {
    this.maybeRelease(room.name, room);
  }

  /** This node no longer holds the room (no local Room, no admission in flight): release it. */
  private maybeRelease(name: string, closed: Room | undefined): void {
    const h = this.held.get(name);
    if (!h || h.joining > 0 || this.manager.rooms.has(name)) return;
    const epoch = closed?.sid;
    this.held.track(
      this.held.serial(h, async () => {
        let f;
        try {
          f = await this.dir.release(name, this.opts.nodeId, epoch ?? '');
        } catch (err) {
          // Redis away: the room ended here as far as this node can tell (its row, its webhook).
          if (closed) this.emit('roomFinished', closed);
          throw err;
        }
        if (f && closed) this.emit('roomFinished', closed);
        else if (f) this.finished([f]);
        if (h.joining === 0 && !this.manager.rooms.has(name)) await this.held.drop(name, h);
      }),
    );
  }

  /** Room sessions this node ended in Redis (reaped, forgotten): their room_finished. */
  private finished(list: FinishedRoom[]): void {
    for (const f of list) {
      const r = this.manager.rooms.get(f.name);
      this.emit('roomFinished', r && r.sid === f.sid ? r : detachedRoom(f));
    }
  }

  /** Redis is back: heartbeat, then put every held room's live state back. */
  private async resyncAll(): Promise<void> {
    try {
      await this.dir.heartbeat(this.opts.nodeId, this.opts.now() + this.opts.leaseMs);
    } catch {
      return; // still away: the next 'ready' tries again
    }
    this.down = false;
    this.reapAfter = Date.now() + this.opts.leaseMs;
    this.log.info('cluster: Redis is back; resyncing rooms');
    for (const name of this.manager.rooms.keys()) {
      this.held.hold(name);
      this.sync.resync(name);
    }
    for (const name of this.held.names()) this.maybeRelease(name, undefined);
  }

  // ---------- server API helpers ----------

  /** Publishes a directory event on the room's channel (DeleteRoom from any node). */
  async publishEvent(room: string, e: Partial<DirEvent>): Promise<void> {
    await this.dir.client.publish(this.dir.roomChannel(room), JSON.stringify(e));
  }

  get isDown(): boolean {
    return this.down;
  }

  stats(): { held: number; remote: number; timers: number } {
    let remote = 0;
    for (const name of this.held.names()) remote += this.manager.rooms.get(name)?.remote.size ?? 0;
    return { held: this.held.size, remote, timers: this.sync.pending };
  }

  /** Waits for directory work, drops what this node holds, closes Redis. After manager.closeAll(). */
  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.timer);
    this.sync.close();
    await this.held.drain();
    if (!this.down) {
      try {
        this.finished(await this.dir.forget(this.opts.nodeId));
      } catch (err) {
        this.log.warn({ err: (err as Error).message }, 'cluster: could not drop this node from Redis');
      }
    }
    this.held.clear();
    await this.dir.close();
    this.removeAllListeners();
    this.roster.removeAllListeners();
  }
}

function detachedRoom(f: FinishedRoom): Room {
  const r = new Room(f.sid, f.name, '', 0, 0, 0);
  r.closed = true;
  return r;
}
