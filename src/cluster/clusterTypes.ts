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
  /**
   * Directory events and message frames (Buffers) seen while an admission is in flight,
   * applied in order after it: a frame for the joiner (another node's producerAdded answering
   * its join event) can overtake the admission's reply, before the joiner is in the room here.
   */
  buffer: (DirEvent | Buffer)[];
  chain: Promise<unknown>;
  /** Directory reads in flight for a reconcile, and the sessions that left meanwhile. */
  reads: number;
  gone: Set<string>;
  /** The local room's roster was filled from the directory while subscribed (events keep it). */
  synced: boolean;
}

export type JoinResult = { room: Room; participant: Participant };
