import type { ParticipantInfo, RoomInfo, ServerMessage } from '../signal/messages.js';
import type { Participant } from './participant.js';
import { ReplayLog } from './replayLog.js';

export class Room {
  /** By identity (the domain's key: one participant per identity). */
  readonly participants = new Map<string, Participant>();
  /**
   * Participants held by other nodes of the cluster, by identity (kept by cluster/ from the
   * room directory and its events; always empty on a single node).
   */
  readonly remote = new Map<string, { node: string; info: ParticipantInfo }>();
  /** The same participants by sid (how delivery addresses them). */
  private readonly bySid = new Map<string, Participant>();
  readonly createdAt = Date.now();
  /** Last reliable room message seq handed out. */
  seq = 0;
  readonly log: ReplayLog;
  emptyTimer: NodeJS.Timeout | undefined;
  closed = false;
  /** Most participants in the room at once during this session. */
  peakParticipants = 0;

  constructor(
    readonly sid: string,
    readonly name: string,
    public metadata: string,
    public maxParticipants: number,
    public emptyTimeoutS: number,
    replayCapacity: number,
  ) {
    this.log = new ReplayLog(replayCapacity);
  }

  add(p: Participant): void {
    this.participants.set(p.identity, p);
    this.bySid.set(p.sid, p);
    this.peakParticipants = Math.max(this.peakParticipants, this.participants.size);
  }

  /** False when `p` is not (or no longer) the room's participant for its identity. */
  remove(p: Participant): boolean {
    if (this.participants.get(p.identity) !== p) return false;
    this.participants.delete(p.identity);
    this.bySid.delete(p.sid);
    return true;
  }

  has(p: Participant): boolean {
    return this.participants.get(p.identity) === p;
  }

  participantBySid(sid: string): Participant | undefined {
    return this.bySid.get(sid);
  }

  /** Stamps a reliable room message with the next seq and keeps it for replay. */
  record(msg: ServerMessage, opts: { except?: string; only?: readonly string[] } = {}): ServerMessage {
    msg.seq = ++this.seq;
    this.log.append(msg.seq, msg, opts);
    return msg;
  }

  info(): RoomInfo {
    return {
      sid: this.sid,
      name: this.name,
      metadata: this.metadata,
      createdAt: this.createdAt,
      maxParticipants: this.maxParticipants,
      numParticipants: this.visibleCount(),
      emptyTimeout: this.emptyTimeoutS,
    };
  }

  visibleCount(): number {
    let n = 0;
    for (const p of this.participants.values()) if (!p.hidden) n++;
    for (const r of this.remote.values()) if (!r.info.permission.hidden) n++;
    return n;
  }

  /** Participants in the whole room (this node's and other nodes'). */
  get size(): number {
    return this.participants.size + this.remote.size;
  }

  /** The sid of an identity held here or on another node. */
  sidOf(identity: string): string | undefined {
    return this.participants.get(identity)?.sid ?? this.remote.get(identity)?.info.sid;
  }

  /** Participants with at least one published track (LiveKit's numPublishers). */
  publisherCount(): number {
    let n = 0;
    for (const p of this.participants.values()) if (p.tracks.size > 0) n++;
    return n;
  }

  clearEmptyTimer(): void {
    if (this.emptyTimer) clearTimeout(this.emptyTimer);
    this.emptyTimer = undefined;
  }
}
