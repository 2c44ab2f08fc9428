import { Packr } from 'msgpackr';
import type { Logger } from '../obs/logger.js';
import type { Delivery } from '../rooms/delivery.js';
import type { Participant } from '../rooms/participant.js';
import type { Room } from '../rooms/room.js';
import type { ServerMessage } from '../signal/messages.js';
import type { RoomDirectory } from './directory.js';

// Plain msgpack (no record extension): frames are read by other nodes, maybe other versions.
const packr = new Packr({ useRecords: false });

/** One message crossing nodes on the room's channel. */
interface Frame {
  /** Origin node (a node ignores its own frames: it delivered them locally already). */
  o: string;
  k: 'room' | 'to' | 'lossy' | 'lossyTo';
  m: ServerMessage;
  /** toRoom: the sender's sid (not delivered back to it). */
  x?: string;
  /** to / lossyTo: target sids. */
  s?: string[];
}

/** Frames are msgpack maps; directory events (Lua cjson) start with '{'. */
export const isFrame = (buf: Buffer): boolean => buf.length > 0 && buf[0] !== 0x7b;

/**
 * The Delivery port across nodes: every message is delivered to this node's participants
 * first (the local path never waits on Redis), then published once on the room's channel
 * for the other nodes holding the room, which deliver it to theirs through their own local
 * Delivery (so each node numbers what its participants get: per-node room seq and replay).
 * Order per sender holds: one node publishes on one connection, Redis keeps channel order.
 */
export class ClusterDelivery implements Delivery {
  constructor(
    private readonly local: Delivery,
    private readonly dir: RoomDirectory,
    private readonly nodeId: string,
    private readonly log: Logger,
  ) {}

  private publish(room: Room, f: Omit<Frame, 'o'>): void {
    // Nobody elsewhere: no Redis command at all (a room on one node costs what it did).
    if (room.remote.size === 0) return;
    // Stamped with this node's seq by the local delivery: the receiver stamps its own.
    const m = f.m.seq === undefined ? f.m : { ...f.m, seq: undefined };
    let buf: Buffer;
    try {
      buf = packr.pack({ ...f, m, o: this.nodeId });
    } catch (err) {
      this.log.error({ err }, 'cluster frame not encodable');
      return;
    }
    this.dir.client.publish(this.dir.roomChannel(room.name), buf).catch((err: Error) => this.log.debug({ err: err.message }, 'cluster publish failed'));
  }

  toParticipants(room: Room, sids: readonly string[], msg: ServerMessage): void {
    const here: string[] = [];
    const there: string[] = [];
    for (const sid of sids) (room.participantBySid(sid) ? here : there).push(sid);
    this.local.toParticipants(room, here, msg);
    if (there.length > 0) this.publish(room, { k: 'to', m: msg, s: there });
  }

  toRoom(room: Room, msg: ServerMessage, exceptSid?: string): void {
    this.local.toRoom(room, msg, exceptSid);
    // The directory keeps what a newcomer must see (info, metadata): written before the
    // frame on the same connection, so a node reading the directory later has it.
    if (msg.participantUpdated && room.participantBySid(msg.participantUpdated.sid)) {
      this.dir.updateParticipant(room.name, msg.participantUpdated).catch(() => undefined);
    }
    if (msg.roomUpdated) this.dir.setMetadata(room.name, msg.roomUpdated.metadata).catch(() => undefined);
    this.publish(room, { k: 'room', m: msg, ...(exceptSid === undefined ? {} : { x: exceptSid }) });
  }

  lossyToRoom(room: Room, msg: ServerMessage): void {
    this.local.lossyToRoom(room, msg);
    this.publish(room, { k: 'lossy', m: msg });
  }

  lossyTo(room: Room, sid: string, msg: ServerMessage): void {
    if (room.participantBySid(sid)) this.local.lossyTo(room, sid, msg);
    else this.publish(room, { k: 'lossyTo', m: msg, s: [sid] });
  }

  subscribe(room: Room, p: Participant): void {
    this.local.subscribe(room, p);
  }

  unsubscribe(room: Room, p: Participant): void {
    this.local.unsubscribe(room, p);
  }

  /**
   * A frame from another node: delivered to this node's participants in the room (with
   * `only`, to those of them only, and room-wide frames not at all: a frame kept for a
   * joiner). Returns the addressed sids that are not in the room here (yet).
   */
  receive(room: Room, buf: Buffer, only?: ReadonlySet<string>): string[] {
    let f: Frame;
    try {
      f = packr.unpack(buf) as Frame;
    } catch (err) {
      this.log.warn({ err }, 'undecodable cluster frame');
      return [];
    }
    if (f.o === this.nodeId) return [];
    const missing = (f.s ?? []).filter((sid) => !room.participantBySid(sid));
    const to = (sid: string): boolean => !!room.participantBySid(sid) && (!only || only.has(sid));
    if (only && (f.k === 'room' || f.k === 'lossy')) return missing;
    const m = f.m;
    // Keep the roster current from what the room is told.
    const pu = m.participantUpdated;
    if (pu) {
      const r = room.remote.get(pu.identity);
      if (r && r.info.sid === pu.sid) r.info = pu;
    }
    if (m.roomUpdated) room.metadata = m.roomUpdated.metadata;
    switch (f.k) {
      case 'room':
        this.local.toRoom(room, m, f.x);
        break;
      case 'lossy':
        this.local.lossyToRoom(room, m);
        break;
      case 'to': {
        const here = (f.s ?? []).filter(to);
        if (here.length > 0) this.local.toParticipants(room, here, m);
        break;
      }
      case 'lossyTo':
        for (const sid of f.s ?? []) if (to(sid)) this.local.lossyTo(room, sid, m);
        break;
    }
    return missing;
  }
}
