import type { Encoding } from '../signal/codec.js';
import type { ServerMessage } from '../signal/messages.js';
import type { Participant } from './participant.js';
import type { Room } from './room.js';

/** One client connection as the domain sees it (the signal layer implements it over uWS). */
export interface Connection {
  readonly encoding: Encoding;
  send(msg: ServerMessage): void;
  /** Close with a WebSocket close code; the domain has already sent any Disconnect. */
  close(code: number, reason: string): void;
}

/**
 * Room-wide fan-out to connected participants (no replay: rooms/delivery.ts adds that). The
 * uWS implementation uses pub/sub topics, one per room and encoding.
 */
export interface Fanout {
  subscribe(room: Room, p: Participant): void;
  unsubscribe(room: Room, p: Participant): void;
  publish(room: Room, msg: ServerMessage, except?: Participant): void;
}

/** WebSocket close codes the server uses (see docs/PROTOCOL.md). */
export const CloseCode = {
  NORMAL: 1000,
  POLICY: 1008, // rate limit flooding
  TOO_BIG: 1009,
  SERVICE_RESTART: 1012, // draining: reconnect elsewhere
  REPLACED: 4001, // same identity joined again
  REMOVED: 4002, // removed by an admin
  ROOM_DELETED: 4003,
  RESUMED_ELSEWHERE: 4004, // a resume took this session over
  SLOW_CONSUMER: 4005,
  RESUME_EXPIRED: 4006,
  JOIN_FAILED: 4007,
} as const;
