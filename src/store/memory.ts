import type { ParticipantInfo, RoomInfo } from '../signal/messages.js';
import type { RoomStore, StoredRoom } from './types.js';

export class MemoryRoomStore implements RoomStore {
  private readonly rooms = new Map<string, StoredRoom>();
  private readonly participants = new Map<string, Map<string, ParticipantInfo>>();

  async putRoom(room: RoomInfo, nodeId: string): Promise<void> {
    this.rooms.set(room.name, { room: { ...room }, nodeId });
  }
  async deleteRoom(name: string): Promise<void> {
    this.rooms.delete(name);
    this.participants.delete(name);
  }
  async getRoom(name: string): Promise<StoredRoom | undefined> {
    return this.rooms.get(name);
  }
  async listRooms(names?: string[]): Promise<StoredRoom[]> {
    if (!names?.length) return [...this.rooms.values()];
    return names.map((n) => this.rooms.get(n)).filter((r): r is StoredRoom => !!r);
  }
  async putParticipant(room: string, p: ParticipantInfo): Promise<void> {
    let m = this.participants.get(room);
    if (!m) this.participants.set(room, (m = new Map()));
    m.set(p.identity, { ...p });
  }
  async deleteParticipant(room: string, identity: string): Promise<void> {
    this.participants.get(room)?.delete(identity);
  }
  async listParticipants(room: string): Promise<ParticipantInfo[]> {
    return [...(this.participants.get(room)?.values() ?? [])];
  }
  async close(): Promise<void> {
    this.rooms.clear();
    this.participants.clear();
  }
}
