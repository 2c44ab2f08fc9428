import type { ParticipantInfo, RoomInfo } from '../signal/messages.js';

/**
 * Shared room directory. The in-memory store serves one node; a Redis-backed store (mesh /
 * multi-node work) implements the same interface so the server API can see every node's rooms.
 * Live objects (connections, timers) never go through here: only their public info.
 */
export interface RoomStore {
  putRoom(room: RoomInfo, nodeId: string): Promise<void>;
  deleteRoom(name: string): Promise<void>;
  getRoom(name: string): Promise<StoredRoom | undefined>;
  listRooms(names?: string[]): Promise<StoredRoom[]>;
  putParticipant(room: string, p: ParticipantInfo): Promise<void>;
  deleteParticipant(room: string, identity: string): Promise<void>;
  listParticipants(room: string): Promise<ParticipantInfo[]>;
  close(): Promise<void>;
}

export interface StoredRoom {
  room: RoomInfo;
  nodeId: string;
}
