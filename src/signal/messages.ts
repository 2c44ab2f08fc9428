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
  | 'RESUME_EXPIRED'
  | 'MIGRATION';

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
  /** OFFER/ANSWER: JSON {streamId: source} of the sender's streams. */
  streams?: string;
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

export interface TransportInfo {
  id: string;
  iceParameters: string;
  iceCandidates: string;
  dtlsParameters: string;
  sctpParameters?: string;
  plainIp?: string;
  plainPort?: number;
  iceServers?: IceServer[];
}

export interface ConsumerInfo {
  id: string;
  producerId: string;
  kind: string;
  rtpParameters: string;
  participantSid: string;
  participantIdentity: string;
  source: string;
  producerPaused: boolean;
  type: string;
}

export interface DataConsumerInfo {
  id: string;
  dataProducerId: string;
  sctpStreamParameters: string;
  label: string;
  protocol: string;
}

export interface ProducerInfo {
  producerId: string;
  participantSid: string;
  participantIdentity: string;
  kind: string;
  source: string;
  paused: boolean;
}

export interface Response {
  requestId: number;
  ok?: Record<string, never>;
  error?: ErrorBody;
  pong?: { timestamp: number; serverTime: number };
  participants?: { participants: ParticipantInfo[] };
  transport?: TransportInfo;
  consumer?: ConsumerInfo;
  id?: string;
  json?: string;
  dataConsumer?: DataConsumerInfo;
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
  iceServers?: IceServer[];
  probeTargets?: { nodeId: string; url: string }[];
  /** Other edge nodes where this room can be rejoined if this node is lost (cluster only). */
  reconnectTargets?: { nodeId: string; url: string }[];
}

export interface IceServer {
  urls: string[];
  username?: string;
  credential?: string;
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
  drain?: { deadlineMs: number; reconnectTargets?: { nodeId: string; url: string }[]; moveToken?: string };
  producerAdded?: ProducerInfo;
  producerRemoved?: { producerId: string; participantSid: string };
  consumerClosed?: { consumerId: string; reason: string };
  /** Your consumer `consumerId` was replaced by `consumer` (same track, e.g. a hook chain fell back). */
  consumerSwitched?: { consumerId: string; consumer: ConsumerInfo; reason: string };
  consumerPaused?: { consumerId: string; reason: string };
  consumerResumed?: { consumerId: string; reason: string };
  layersChanged?: { consumerId: string; spatialLayer: number; temporalLayer: number };
  score?: { id: string; score: number; producerScore?: number };
  activeSpeaker?: { participantSid: string; producerId: string };
  audioLevels?: { levels: { participantSid: string; producerId: string; volume: number }[] };
  mediaReset?: { reason: string };
  trackMuted?: { producerId: string; muted: boolean };
  layersWanted?: { producerId: string; maxSpatialLayer: number };
  route?: RouteDecision;
}

export interface RouteDecision {
  callId: string;
  tier: 'p2p' | 'sfu';
  peerIdentity?: string;
  polite?: boolean;
  timeoutMs?: number;
  fallbacks?: ('turn' | 'sfu')[];
  predictedQuality?: number;
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
  'producerAdded',
  'producerRemoved',
  'consumerClosed',
  'consumerSwitched',
  'consumerPaused',
  'consumerResumed',
  'layersChanged',
  'score',
  'activeSpeaker',
  'audioLevels',
  'mediaReset',
  'trackMuted',
  'layersWanted',
  'route',
] as const;
export type ServerBodyKind = (typeof SERVER_BODY_KINDS)[number];

export function serverKind(msg: ServerMessage): ServerBodyKind | 'unknown' {
  for (const k of SERVER_BODY_KINDS) if (msg[k] !== undefined) return k;
  return 'unknown';
}

export const PROTOCOL_VERSION = 2;
