import type { ServerMessage } from '../signal/messages.js';
import type { Participant } from './participant.js';
import type { Fanout } from './ports.js';
import type { Room } from './room.js';

/**
 * How the domain (rooms, SFU, call policy) reaches clients, addressed by participant sid.
 * Reliable messages get a room seq and go into the room's replay log whoever sends them, so
 * a participant inside its resume window gets them on resume. Lossy ones (active speaker,
 * levels, scores: state that the next one supersedes) are neither numbered nor kept.
 */
export interface Delivery {
  /** Reliable, to the named participants only. */
  toParticipants(room: Room, sids: readonly string[], msg: ServerMessage): void;
  /** Reliable, to everyone in the room (but `exceptSid`). */
  toRoom(room: Room, msg: ServerMessage, exceptSid?: string): void;
  /** Lossy, to everyone connected: encoded once per encoding in use. */
  lossyToRoom(room: Room, msg: ServerMessage): void;
  /** Lossy, to one participant if connected. */
  lossyTo(room: Room, sid: string, msg: ServerMessage): void;
  /** Room-wide messages start (subscribe) and stop reaching a connected participant. */
  subscribe(room: Room, p: Participant): void;
  unsubscribe(room: Room, p: Participant): void;
}

/** The one Delivery of a node: the room's replay log, then the connections and room fan-out. */
export class RoomDelivery implements Delivery {
  constructor(private readonly fanout: Fanout) {}

  toParticipants(room: Room, sids: readonly string[], msg: ServerMessage): void {
    if (sids.length === 0) return;
    room.record(msg, { only: sids });
    for (const sid of sids) room.participantBySid(sid)?.conn?.send(msg);
  }

  toRoom(room: Room, msg: ServerMessage, exceptSid?: string): void {
    const except = exceptSid === undefined ? undefined : room.participantBySid(exceptSid);
    this.fanout.publish(room, room.record(msg, exceptSid === undefined ? {} : { except: exceptSid }), except);
  }

  lossyToRoom(room: Room, msg: ServerMessage): void {
    this.fanout.publish(room, msg);
  }

  lossyTo(room: Room, sid: string, msg: ServerMessage): void {
    room.participantBySid(sid)?.conn?.send(msg);
  }

  subscribe(room: Room, p: Participant): void {
    this.fanout.subscribe(room, p);
  }

  unsubscribe(room: Room, p: Participant): void {
    this.fanout.unsubscribe(room, p);
  }
}
