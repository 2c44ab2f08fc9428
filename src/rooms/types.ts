import type { EventEmitter } from 'node:events';
import type { DisconnectReason, IceServer } from '../signal/messages.js';
import type { Participant } from './participant.js';
import type { Room } from './room.js';
import type { Track } from './track.js';

// The room domain's contract with the rest of the node: its events, refusals and inputs.

/** A join refused before the participant exists; the signal layer maps it to HTTP/close. */
export class JoinError extends Error {
  constructor(readonly status: number, readonly code: string, message: string) {
    super(message);
    this.name = 'JoinError';
  }
}

export interface ResumeRequest {
  token: string;
  lastSeq: number;
}

export interface RoomManagerEvents {
  roomStarted: [Room];
  roomFinished: [Room];
  participantJoined: [Room, Participant];
  participantLeft: [Room, Participant, DisconnectReason];
  resumed: [Room, Participant, 'ok' | 'gap' | 'unknown'];
  linkReport: [Room, Participant, LinkRtt[]];
  trackPublished: [Room, Participant, Track];
  trackUnpublished: [Room, Participant, Track];
  /** Paused by its publisher or muted by an admin, or resumed. */
  trackMuted: [Room, Participant, Track];
  /** Permissions changed (server API): the SFU undoes what they no longer allow. */
  permissionChanged: [Room, Participant];
}

export interface LinkRtt {
  nodeId: string;
  rttMs: number;
  lossPct?: number | undefined;
}

/** Per-join extras from other services (TURN credentials, mesh probe targets). */
export interface JoinExtras {
  iceServers(identity: string): IceServer[];
  probeTargets(): { nodeId: string; url: string }[];
  /** Other edge nodes' signalling URLs where a room can be rejoined (cluster; empty alone). */
  reconnectTargets(): { nodeId: string; url: string }[];
}

/** Where room lifecycle events come from: the RoomManager, or the cluster (cluster-wide once). */
export type RoomEvents = Pick<EventEmitter<RoomManagerEvents>, 'on'>;
