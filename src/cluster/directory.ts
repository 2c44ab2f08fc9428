import { Redis } from 'ioredis';
import type { Logger } from '../obs/logger.js';
import type { ParticipantInfo } from '../signal/messages.js';
import type { Track } from '../rooms/track.js';
import { ADMIT, FORGET_NODE, LEAVE, REAP, RELEASE, RESYNC, SET_META, UPDATE_PART } from './scripts.js';

/** A participant as the directory holds it. */
export interface DirEntry {
  node: string;
  sid: string;
  info: ParticipantInfo;
  /** Published tracks (what the server API lists for a participant on another node). */
  tracks: Track[];
}

export interface RoomMeta {
  sid: string;
  metadata: string;
  maxParticipants: number;
  createdAt: number;
  emptyTimeoutS: number;
}

export type Admission =
  | { ok: false; max: number }
  | { ok: true; started: boolean; meta: RoomMeta; parts: Map<string, DirEntry>; replaced: { node: string; sid: string } | undefined };

/** A room session that ended in Redis (reaped or released), for the room_finished emitter. */
export interface FinishedRoom {
  name: string;
  sid: string;
  createdAt: number;
}

type Scripts = Record<'clAdmit' | 'clLeave' | 'clUpdate' | 'clMeta' | 'clRelease' | 'clReap' | 'clForget' | 'clResync', (...a: (string | number)[]) => Promise<unknown>>;

function parseParts(flat: string[]): Map<string, DirEntry> {
  const m = new Map<string, DirEntry>();
  for (let i = 0; i + 1 < flat.length; i += 2) {
    const e = JSON.parse(flat[i + 1]!) as { n: string; s: string; i: string; t?: string };
    m.set(flat[i]!, { node: e.n, sid: e.s, info: JSON.parse(e.i) as ParticipantInfo, tracks: e.t ? (JSON.parse(e.t) as Track[]) : [] });
  }
  return m;
}

const finishedList = (raw: unknown): FinishedRoom[] =>
  ((raw ?? []) as [string, string, string][]).map(([name, sid, created]) => ({ name, sid, createdAt: Number(created) }));

/**
 * The cluster room directory in Redis (key layout in scripts.ts). Two connections: commands
 * (fail fast while Redis is away: no offline queue) and the subscriber (room channels and
 * this node's command channel; ioredis re-subscribes after a reconnect).
 */
export class RoomDirectory {
  readonly client: Redis;
  readonly sub: Redis;
  private readonly cmds: Scripts;

  constructor(url: string, readonly prefix: string, private readonly log: Logger) {
    const opts = {
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
      lazyConnect: true,
      retryStrategy: (times: number) => Math.min(50 * 2 ** Math.min(times, 6), 2000),
    };
    this.client = new Redis(url, opts);
    // The subscriber waits for Redis instead of failing its commands: ioredis re-subscribes
    // by itself on reconnect with no handler of ours, and a retry limit would reject that
    // (unhandled) when Redis flaps.
    this.sub = new Redis(url, { ...opts, enableOfflineQueue: true, maxRetriesPerRequest: null });
    for (const [name, c] of [['command', this.client], ['subscriber', this.sub]] as const) {
      c.on('error', (err: Error) => this.log.debug({ err: err.message, conn: name }, 'cluster redis error'));
    }
    const def = (name: keyof Scripts, lua: string): void => this.client.defineCommand(name, { numberOfKeys: 0, lua });
    def('clAdmit', ADMIT);
    def('clLeave', LEAVE);
    def('clUpdate', UPDATE_PART);
    def('clMeta', SET_META);
    def('clRelease', RELEASE);
    def('clReap', REAP);
    def('clForget', FORGET_NODE);
    def('clResync', RESYNC);
    this.cmds = this.client as unknown as Scripts;
  }

  roomChannel(room: string): string {
    return `${this.prefix}ch:${room}`;
  }

  nodeChannel(node: string): string {
    return `${this.prefix}cmd:${node}`;
  }

  async connect(): Promise<void> {
    await Promise.all([this.client.connect(), this.sub.connect()]);
  }

  get ready(): boolean {
    return this.client.status === 'ready';
  }

  async admit(a: {
    room: string;
    node: string;
    identity: string;
    sid: string;
    info: ParticipantInfo;
    defaultMax: number;
    newRoomSid: string;
    leaseExpiry: number;
    /** Cluster time (the room's `created`). */
    now: number;
    emptyTimeoutS: number;
    /** The room's entries are wanted (this node does not hold it yet). */
    wantParts: boolean;
  }): Promise<Admission> {
    const r = (await this.cmds.clAdmit(
      this.prefix, a.room, a.node, a.identity, a.sid, JSON.stringify(a.info), a.defaultMax, a.newRoomSid, a.now, a.leaseExpiry, a.emptyTimeoutS, a.wantParts ? 1 : 0,
    )) as unknown[];
    if (r[0] === 'full') return { ok: false, max: Number(r[1]) };
    const [, started, sid, metadata, max, created, empty, parts, oldNode, oldSid] = r as [string, number, string, string, string, string, string, string[], string, string];
    return {
      ok: true,
      started: started === 1,
      meta: { sid, metadata, maxParticipants: Number(max), createdAt: Number(created), emptyTimeoutS: Number(empty) },
      parts: parseParts(parts),
      replaced: oldSid ? { node: oldNode, sid: oldSid } : undefined,
    };
  }

  /** `node`: only if that node still holds the session ('' any). */
  async leave(room: string, identity: string, sid: string, node = ''): Promise<boolean> {
    return (await this.cmds.clLeave(this.prefix, room, identity, sid, node)) === 1;
  }

  async updateParticipant(room: string, info: ParticipantInfo): Promise<void> {
    await this.cmds.clUpdate(this.prefix, room, info.identity, info.sid, 'i', JSON.stringify(info), '');
  }

  async updateTracks(room: string, identity: string, sid: string, tracks: readonly Track[], node = ''): Promise<void> {
    await this.cmds.clUpdate(this.prefix, room, identity, sid, 't', JSON.stringify(tracks), node);
  }

  async setMetadata(room: string, metadata: string): Promise<void> {
    await this.cmds.clMeta(this.prefix, room, metadata);
  }

  /** This node stopped holding the room; returns the session if that finished it. */
  async release(room: string, node: string, epoch: string): Promise<FinishedRoom | undefined> {
    const r = (await this.cmds.clRelease(this.prefix, room, node, epoch)) as [string, string, string] | null;
    return r ? { name: r[0], sid: r[1], createdAt: Number(r[2]) } : undefined;
  }

  async heartbeat(node: string, leaseExpiry: number): Promise<void> {
    await this.client.zadd(`${this.prefix}alive`, leaseExpiry, node);
  }

  /** Removes every node whose lease has passed; returns the room sessions that ended. */
  async reap(now = Date.now()): Promise<FinishedRoom[]> {
    return finishedList(await this.cmds.clReap(this.prefix, now));
  }

  /** Drops everything `node` holds (its start, so a restart inherits nothing; its stop). */
  async forget(node: string): Promise<FinishedRoom[]> {
    return finishedList(await this.cmds.clForget(this.prefix, node));
  }

  async resync(
    room: string,
    node: string,
    meta: RoomMeta,
    leaseExpiry: number,
    live: { info: ParticipantInfo; tracks: readonly Track[] }[],
  ): Promise<{ sid: string; parts: Map<string, DirEntry> }> {
    const args: (string | number)[] = [this.prefix, room, node, meta.sid, meta.metadata, meta.maxParticipants, meta.createdAt, meta.emptyTimeoutS, leaseExpiry];
    for (const { info, tracks } of live) args.push(info.identity, info.sid, JSON.stringify(info), JSON.stringify(tracks));
    const [sid, parts] = (await this.cmds.clResync(...args)) as [string, string[]];
    return { sid, parts: parseParts(parts) };
  }

  // ---------- reads for the server API ----------

  async roomNames(): Promise<string[]> {
    return this.client.smembers(`${this.prefix}rooms`);
  }

  async meta(room: string): Promise<RoomMeta | undefined> {
    const m = await this.client.hgetall(`${this.prefix}r:${room}:meta`);
    if (!m.sid) return undefined;
    return { sid: m.sid, metadata: m.metadata ?? '', maxParticipants: Number(m.max), createdAt: Number(m.created), emptyTimeoutS: Number(m.empty) };
  }

  async participants(room: string): Promise<Map<string, DirEntry>> {
    const h = await this.client.hgetall(`${this.prefix}r:${room}:parts`);
    return parseParts(Object.entries(h).flat());
  }

  async entry(room: string, identity: string): Promise<DirEntry | undefined> {
    const v = await this.client.hget(`${this.prefix}r:${room}:parts`, identity);
    return v ? parseParts([identity, v]).get(identity) : undefined;
  }

  async nodes(room: string): Promise<string[]> {
    return this.client.hkeys(`${this.prefix}r:${room}:nodes`);
  }

  async close(): Promise<void> {
    for (const c of [this.client, this.sub]) {
      try {
        if (c.status === 'ready') await c.quit();
        else c.disconnect();
      } catch {
        c.disconnect();
      }
    }
  }
}
