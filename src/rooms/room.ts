import type { RoomInfo, ServerMessage } from '../signal/messages.js';
import type { Participant } from './participant.js';
import { ReplayLog } from './replayLog.js';

export class Room {
  readonly participants = new Map<string, Participant>(); // by identity
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
    return n;
  }

  clearEmptyTimer(): void {
    if (this.emptyTimer) clearTimeout(this.emptyTimer);
    this.emptyTimer = undefined;
  }
}
