import type { Participant } from '../rooms/participant.js';
import type { Room } from '../rooms/room.js';
import type { ParticipantInfo } from '../signal/messages.js';

export interface RosterEvents {
  /** `Room.remote` changed (a participant on another node joined, left or was replaced). */
  remoteChanged: [Room];
  /** A participant on another node joined (its node's events; the cascade tells it this node's tracks). */
  remoteJoined: [Room, ParticipantInfo];
}

// The cluster room roster's own types (clusterRooms.ts).

export interface ClusterOptions {
  nodeId: string;
  heartbeatMs: number;
  /** A node whose heartbeat is older than this loses its rooms' entries (reaped). */
  leaseMs: number;
  defaultMaxParticipants: number;
  emptyTimeoutS: number;
  /** Signs and checks drain move tokens (an API secret every node holds); none: no moves. */
  moveSecret?: string;
  /** Wall-clock time for leases and move tokens (util/clusterClock.ts: Redis-corrected). */
  now: () => number;
}

/** A directory event (published by the Lua scripts, or DeleteRoom). */
export interface DirEvent {
  t: 'join' | 'leave' | 'finished' | 'delete';
  id: string;
  s: string;
  n: string;
  i?: string;
  oldSid?: string;
  reaped?: number;
  re?: number;
}

/** A room this node holds or is joining: its channel subscription and ordered directory work. */
export interface Held {
  subscribed: Promise<unknown>;
  joining: number;
  /** Directory events seen while an admission's snapshot is in flight, applied after it. */
  buffer: DirEvent[];
  /**
   * Per join being admitted (by its sid), the message frames addressed to it that arrived
   * first (another node's producerAdded answering its join event can overtake the
   * admission's reply): delivered to it right after its join. Frames for everyone else go
   * at once (a join storm must not hold up the room).
   */
  admitting: Map<string, Buffer[]>;
  chain: Promise<unknown>;
  /** Directory reads in flight for a reconcile, and the sessions that left meanwhile. */
  reads: number;
  gone: Set<string>;
  /** The local room's roster was filled from the directory while subscribed (events keep it). */
  synced: boolean;
}

export type JoinResult = { room: Room; participant: Participant };
