import type { DataPacket, DisconnectReason, ParticipantInfo, RelaySignal, RoomInfo, ServerMessage } from '../signal/messages.js';
import type { SignalRequestError } from './signalClient.js';

export interface SignalClientEvents extends Record<string, unknown[]> {
  participantJoined: [ParticipantInfo];
  participantLeft: [ParticipantInfo | { sid: string; identity: string }, DisconnectReason];
  participantUpdated: [ParticipantInfo];
  roomUpdated: [RoomInfo];
  data: [DataPacket];
  relay: [RelaySignal];
  /** Server said why it is closing us. */
  disconnect: [{ reason: DisconnectReason; message: string; reconnect: boolean }];
  /** The node drains; with failover on, the client moves to another node by itself. */
  drain: [{ deadlineMs: number }];
  /** An unsolicited error (no matching request), e.g. rate limiting or a malformed frame. */
  error: [SignalRequestError];
  reconnecting: [];
  /** After a reconnect: resumed=true if the session was restored, false if it was a fresh join. */
  reconnected: [{ resumed: boolean }];
  closed: [{ code: number; reason: string }];
  message: [ServerMessage];
  // SFU events (see docs/PROTOCOL.md)
  producerAdded: [NonNullable<ServerMessage['producerAdded']>];
  producerRemoved: [NonNullable<ServerMessage['producerRemoved']>];
  consumerClosed: [NonNullable<ServerMessage['consumerClosed']>];
  consumerSwitched: [NonNullable<ServerMessage['consumerSwitched']>];
  consumerPaused: [NonNullable<ServerMessage['consumerPaused']>];
  consumerResumed: [NonNullable<ServerMessage['consumerResumed']>];
  layersChanged: [NonNullable<ServerMessage['layersChanged']>];
  score: [NonNullable<ServerMessage['score']>];
  activeSpeaker: [NonNullable<ServerMessage['activeSpeaker']>];
  audioLevels: [NonNullable<ServerMessage['audioLevels']>];
  mediaReset: [NonNullable<ServerMessage['mediaReset']>];
  trackMuted: [NonNullable<ServerMessage['trackMuted']>];
  layersWanted: [NonNullable<ServerMessage['layersWanted']>];
  route: [NonNullable<ServerMessage['route']>];
}

export const SFU_EVENTS = [
  'producerAdded', 'producerRemoved', 'consumerClosed', 'consumerSwitched', 'consumerPaused', 'consumerResumed',
  'layersChanged', 'score', 'activeSpeaker', 'audioLevels', 'mediaReset', 'trackMuted',
  'layersWanted',
] as const;

// Close codes after which resuming makes no sense (see docs/PROTOCOL.md).
export const TERMINAL_CLOSE = new Set([1000, 1008, 1009, 4001, 4002, 4003, 4004, 4006, 4007]);

