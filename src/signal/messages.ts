// The canonical in-memory shape of every protocol message: protobufjs' object form of
// proto/auralink.proto (camelCase fields, enums by name, int64 as number, bytes as Uint8Array).
// All three encodings decode to and encode from these shapes.

export type ErrorCode =
  | 'MALFORMED'
  | 'UNKNOWN_MESSAGE'
  | 'INVALID_FIELD'
  | 'TOO_LARGE'
  | 'RATE_LIMITED'
  | 'PERMISSION_DENIED'
  | 'NOT_FOUND'
  | 'INTERNAL';

export type DisconnectReason =
  | 'UNKNOWN_REASON'
  | 'CLIENT_INITIATED'
  | 'DUPLICATE_IDENTITY'
  | 'SERVER_SHUTDOWN'
  | 'PARTICIPANT_REMOVED'
  | 'ROOM_DELETED'
  | 'SLOW_CONSUMER'
  | 'RATE_LIMITED'
  | 'RESUME_EXPIRED';

export type RelayKind = 'OFFER' | 'ANSWER' | 'CANDIDATE' | 'HANGUP';

export interface ParticipantPermission {
  canPublish: boolean;
  canSubscribe: boolean;
  canPublishData: boolean;
  canUpdateMetadata: boolean;
  hidden: boolean;
  canPublishSources: string[];
}

export interface ParticipantInfo {
  sid: string;
  identity: string;
  name: string;
  metadata: string;
  joinedAt: number;
  permission: ParticipantPermission;
}

export interface RoomInfo {
  sid: string;
  name: string;
  metadata: string;
  createdAt: number;
  maxParticipants: number;
  numParticipants: number;
  emptyTimeout: number;
}

export interface IceCandidate {
  candidate: string;
  sdpMid?: string;
  sdpMLineIndex?: number;
  usernameFragment?: string;
}

export interface RelaySignal {
  identity: string;
  kind: RelayKind;
  sdp?: string;
  candidate?: IceCandidate;
  callId?: string;
}

export interface DataPacket {
  participantSid: string;
  participantIdentity: string;
  payload: Uint8Array;
  topic?: string;
  destinationIdentities?: string[];
  timestamp: number;
}

export interface ErrorBody {
  code: ErrorCode;
  message: string;
  field?: string;
}

export interface Response {
  requestId: number;
  ok?: Record<string, never>;
  error?: ErrorBody;
  pong?: { timestamp: number; serverTime: number };
  participants?: { participants: ParticipantInfo[] };
}

export interface JoinResponse {
  room: RoomInfo;
  participant: ParticipantInfo;
  otherParticipants: ParticipantInfo[];
  resumeToken: string;
  resumeWindowMs: number;
  roomSeq: number;
  resumed: boolean;
  server: { version: string; nodeId: string; protocol: number };
  pingIntervalMs: number;
}

/** Exactly one body field is set. */
export interface ServerMessage {
  seq?: number;
  response?: Response;
  join?: JoinResponse;
  participantJoined?: ParticipantInfo;
  participantLeft?: { sid: string; identity: string; reason: DisconnectReason };
  participantUpdated?: ParticipantInfo;
  roomUpdated?: RoomInfo;
  data?: DataPacket;
  relay?: RelaySignal;
  disconnect?: { reason: DisconnectReason; message: string; reconnect: boolean };
  drain?: { deadlineMs: number };
}

export const SERVER_BODY_KINDS = [
  'response',
  'join',
  'participantJoined',
  'participantLeft',
  'participantUpdated',
  'roomUpdated',
  'data',
  'relay',
  'disconnect',
  'drain',
] as const;
export type ServerBodyKind = (typeof SERVER_BODY_KINDS)[number];

export function serverKind(msg: ServerMessage): ServerBodyKind | 'unknown' {
  for (const k of SERVER_BODY_KINDS) if (msg[k] !== undefined) return k;
  return 'unknown';
}

/** Client requests (wire shape; see schema.ts for validation). */
export interface RequestMessage {
  id?: number;
  ping?: { timestamp?: number; rtt?: number };
  sendData?: { payload: Uint8Array | string; topic?: string; destinationIdentities?: string[] };
  updateParticipant?: { name?: string; metadata?: string };
  updateRoomMetadata?: { metadata: string };
  relay?: RelaySignal;
  leave?: Record<string, never>;
  listParticipants?: Record<string, never>;
}

export const PROTOCOL_VERSION = 1;
