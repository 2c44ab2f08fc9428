import type { ServerMessage } from '../signal/messages.js';

/**
 * One kept message. A class, not an object literal: spread literals ({ ...e, at }) got a
 * hidden class of their own each (a Map, a DescriptorArray and a PropertyArray, ~300 B per
 * entry in a heap snapshot of 10k joins).
 */
class Entry {
  constructor(
    readonly seq: number,
    readonly at: number, // ms timestamp, for pruning past the resume window
    readonly msg: ServerMessage,
    /** Not replayed to this participant sid (the sender of a broadcast). */
    readonly except: string | undefined,
    /** Replayed only to these sids (targeted messages). */
    readonly only: readonly string[] | undefined,
  ) {}
}

/**
 * A room's reliable messages, kept for replay on resume: at most `capacity` entries and
 * none older than the resume window (nobody can ask for those). Grows on demand, so an
 * idle room costs almost nothing.
 */
export class ReplayLog {
  private entries: Entry[] = [];
  private start = 0; // index of the oldest live entry

  constructor(private readonly capacity: number) {}

  get size(): number {
    return this.entries.length - this.start;
  }

  append(seq: number, msg: ServerMessage, opts: { except?: string; only?: readonly string[] }, now = Date.now()): void {
    this.entries.push(new Entry(seq, now, msg, opts.except, opts.only));
    if (this.size > this.capacity) this.start++;
    this.compact();
  }

  /** Drops entries older than `maxAgeMs`. */
  prune(maxAgeMs: number, now = Date.now()): void {
    while (this.start < this.entries.length && now - this.entries[this.start]!.at > maxAgeMs) this.start++;
    this.compact();
  }

  private compact(): void {
    // Amortised O(1): shift the array only once half of it is dead.
    if (this.start > 64 && this.start * 2 > this.entries.length) {
      this.entries = this.entries.slice(this.start);
      this.start = 0;
    } else if (this.start === this.entries.length && this.start > 0) {
      this.entries = [];
      this.start = 0;
    }
  }

  oldestSeq(): number {
    return this.size === 0 ? 0 : this.entries[this.start]!.seq;
  }

  /**
   * Messages after `afterSeq` visible to `sid`, or null if some of them are no longer held
   * (the client cannot be brought up to date by replay).
   */
  since(afterSeq: number, lastSeq: number, sid: string): ServerMessage[] | null {
    if (afterSeq >= lastSeq) return [];
    if (this.size === 0 || this.oldestSeq() > afterSeq + 1) return null;
    const out: ServerMessage[] = [];
    for (let i = this.start; i < this.entries.length; i++) {
      const e = this.entries[i]!;
      if (e.seq <= afterSeq) continue;
      if (e.except === sid) continue;
      if (e.only && !e.only.includes(sid)) continue;
      out.push(e.msg);
    }
    return out;
  }
}
