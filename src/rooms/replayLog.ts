import type { ServerMessage } from '../signal/messages.js';

interface Entry {
  seq: number;
  msg: ServerMessage;
  /** Not replayed to this participant sid (the sender of a broadcast). */
  except?: string;
  /** Replayed only to these sids (targeted messages). */
  only?: readonly string[];
}

/** Ring buffer of a room's reliable messages, for replay on resume. */
export class ReplayLog {
  private readonly entries: (Entry | undefined)[];
  private head = 0; // next write index
  private size = 0;

  constructor(private readonly capacity: number) {
    this.entries = new Array(capacity);
  }

  append(entry: Entry): void {
    this.entries[this.head] = entry;
    this.head = (this.head + 1) % this.capacity;
    if (this.size < this.capacity) this.size++;
  }

  /** Oldest seq still held (0 when empty). */
  oldestSeq(): number {
    if (this.size === 0) return 0;
    return this.entries[(this.head - this.size + this.capacity) % this.capacity]!.seq;
  }

  /**
   * Messages after `afterSeq` visible to `sid`, or null if some of them were already evicted
   * (the client cannot be brought up to date by replay).
   */
  since(afterSeq: number, lastSeq: number, sid: string): ServerMessage[] | null {
    if (afterSeq >= lastSeq) return [];
    if (this.size === 0 || this.oldestSeq() > afterSeq + 1) return null;
    const out: ServerMessage[] = [];
    for (let i = 0; i < this.size; i++) {
      const e = this.entries[(this.head - this.size + i + this.capacity) % this.capacity]!;
      if (e.seq <= afterSeq) continue;
      if (e.except === sid) continue;
      if (e.only && !e.only.includes(sid)) continue;
      out.push(e.msg);
    }
    return out;
  }
}
