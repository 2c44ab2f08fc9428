import type { EventEmitter } from 'node:events';
import type { Logger } from '../obs/logger.js';
import type { Delivery } from '../rooms/delivery.js';
import type { Room } from '../rooms/room.js';
import type { RoomManager } from '../rooms/roomManager.js';
import type { Held, RosterEvents } from './clusterTypes.js';
import type { DirEntry, RoomDirectory } from './directory.js';
import type { HeldRooms } from './heldRooms.js';
import { markRoster, reconcile, type RosterChange } from './reconcile.js';

/**
 * Brings the directory and this node's rosters back in line after Redis was away (or lost
 * this node's entries, or this node's subscriber missed events): resync puts this node's
 * live participants back and takes in what others have put back so far, removing nobody;
 * a verify pass a lease later reads the room's entries and removes who is really gone
 * (reconcile.ts). Owns the verify timers.
 */
export class RosterSync {
  private readonly timers = new Set<NodeJS.Timeout>();

  constructor(
    private readonly held: HeldRooms,
    private readonly manager: RoomManager,
    private readonly dir: RoomDirectory,
    /** The node-local delivery: what this node tells its own participants. */
    private readonly local: Delivery,
    private readonly roster: EventEmitter<RosterEvents>,
    private readonly opts: { nodeId: string; leaseMs: number; now: () => number },
    /** False while Redis is away or the node is stopping: a verify pass waits for the next. */
    private readonly live: () => boolean,
    private readonly log: Logger,
  ) {}

  resync(name: string): void {
    const h = this.held.get(name);
    const room = this.manager.rooms.get(name);
    if (!h || !room) return;
    this.held.track(
      this.held.serial(h, () =>
        this.reading(h, room, false, async () => {
          const live = [...room.participants.values()].map((p) => ({ info: p.info(), tracks: [...p.tracks.values()] }));
          const meta = { sid: room.sid, metadata: room.metadata, maxParticipants: room.maxParticipants, createdAt: room.createdAt, emptyTimeoutS: room.emptyTimeoutS };
          const r = await this.dir.resync(name, this.opts.nodeId, meta, this.opts.now() + this.opts.leaseMs, live);
          if (r.sid !== room.sid) this.log.warn({ room: name, local: room.sid, cluster: r.sid }, 'cluster: room session differs after resync');
          return r.parts;
        }),
      ),
    );
    this.later(name, this.opts.leaseMs);
  }

  /** Reads the room's directory entries and brings the roster in line, removals included. */
  verify(name: string): void {
    const h = this.held.get(name);
    const room = this.manager.rooms.get(name);
    if (!h || !room || !this.live()) return;
    this.held.track(this.held.serial(h, () => this.reading(h, room, true, () => this.dir.participants(name))));
  }

  /** A verify pass for the room after `ms`. */
  later(name: string, ms: number): void {
    const t = setTimeout(() => {
      this.timers.delete(t);
      this.verify(name);
    }, ms);
    this.timers.add(t);
  }

  private async reading(h: Held, room: Room, removeMissing: boolean, read: () => Promise<Map<string, DirEntry>>): Promise<void> {
    const mark = markRoster(room.remote);
    h.reads++;
    try {
      const snapshot = await read();
      if (room.closed) return;
      const change = reconcile(room.remote, snapshot, this.opts.nodeId, mark, h.gone, removeMissing);
      this.announce(room, change);
      this.roster.emit('remoteChanged', room);
      for (const info of change.joined) this.roster.emit('remoteJoined', room, info);
    } finally {
      if (--h.reads === 0) h.gone.clear();
    }
  }

  /** Tells this node's participants what changed while they could not hear it. */
  private announce(room: Room, c: RosterChange): void {
    for (const l of c.left) this.local.toRoom(room, { participantLeft: { ...l, reason: 'UNKNOWN_REASON' } });
    for (const info of c.joined) this.local.toRoom(room, { participantJoined: info });
  }

  get pending(): number {
    return this.timers.size;
  }

  close(): void {
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
  }
}
