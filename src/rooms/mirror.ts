import type { ParticipantInfo, RoomInfo } from '../signal/messages.js';

/**
 * A write-only copy of this node's rooms and participants for an observer outside the node
 * (tests use the memory one). Nothing in the node reads it back: the live maps in
 * RoomManager are the state. Only public info goes through here, never live objects.
 */
export interface RoomMirror {
  putRoom(room: RoomInfo, nodeId: string): Promise<void>;
  deleteRoom(name: string): Promise<void>;
  putParticipant(room: string, p: ParticipantInfo): Promise<void>;
  deleteParticipant(room: string, identity: string): Promise<void>;
  close(): Promise<void>;
}

export interface MirroredRoom {
  room: RoomInfo;
  nodeId: string;
}

export class MemoryRoomMirror implements RoomMirror {
  private readonly rooms = new Map<string, MirroredRoom>();
  private readonly participants = new Map<string, Map<string, ParticipantInfo>>();

  async putRoom(room: RoomInfo, nodeId: string): Promise<void> {
    this.rooms.set(room.name, { room: { ...room }, nodeId });
  }
  async deleteRoom(name: string): Promise<void> {
    this.rooms.delete(name);
    this.participants.delete(name);
  }
  async putParticipant(room: string, p: ParticipantInfo): Promise<void> {
    let m = this.participants.get(room);
    if (!m) this.participants.set(room, (m = new Map()));
    m.set(p.identity, { ...p });
  }
  async deleteParticipant(room: string, identity: string): Promise<void> {
    this.participants.get(room)?.delete(identity);
  }
  async close(): Promise<void> {
    this.rooms.clear();
    this.participants.clear();
  }
  /** What the mirror holds (for its observer). */
  listRooms(): MirroredRoom[] {
    return [...this.rooms.values()];
  }
  listParticipants(room: string): ParticipantInfo[] {
    return [...(this.participants.get(room)?.values() ?? [])];
  }
}
