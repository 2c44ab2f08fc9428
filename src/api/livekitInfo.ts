import {
  ParticipantInfo as LkParticipantInfo,
  ParticipantInfo_State,
  ParticipantPermission as LkPermission,
  Room as LkRoom,
  TrackInfo,
  TrackSource,
  TrackType,
} from '@livekit/protocol';
import type { Participant } from '../rooms/participant.js';
import type { Room } from '../rooms/room.js';
import type { ParticipantInfo } from '../signal/messages.js';
import type { Track } from '../rooms/track.js';

// Our rooms, participants and producers in LiveKit's messages (server API and webhooks).

// A Map, not an object literal: sources come from tokens, and 'constructor' must not find Object.
export const SOURCE_TO_LK = new Map<string, TrackSource>([
  ['camera', TrackSource.CAMERA],
  ['microphone', TrackSource.MICROPHONE],
  ['screen_share', TrackSource.SCREEN_SHARE],
  ['screen_share_audio', TrackSource.SCREEN_SHARE_AUDIO],
]);
export const LK_TO_SOURCE = new Map<TrackSource, string>([...SOURCE_TO_LK].map(([k, v]) => [v, k]));

export function lkTrack(t: Track): TrackInfo {
  return new TrackInfo({
    sid: t.producerId,
    type: t.kind === 'audio' ? TrackType.AUDIO : TrackType.VIDEO,
    source: SOURCE_TO_LK.get(t.source) ?? TrackSource.UNKNOWN,
    muted: t.paused,
    mimeType: t.mimeType,
  });
}

export function lkRoom(room: Room): LkRoom {
  return new LkRoom({
    sid: room.sid,
    name: room.name,
    emptyTimeout: Math.round(room.emptyTimeoutS),
    maxParticipants: room.maxParticipants,
    creationTime: BigInt(Math.floor(room.createdAt / 1000)),
    metadata: room.metadata,
    numParticipants: room.visibleCount(),
    numPublishers: room.publisherCount(),
  });
}

export function lkParticipant(p: Participant): LkParticipantInfo {
  return lkParticipantInfo(p.info(), [...p.tracks.values()].map(lkTrack), p.state === 'active');
}

/** From the public info (a participant on another node, as the cluster directory has it). */
export function lkParticipantInfo(p: ParticipantInfo, tracks: TrackInfo[] = [], active = true): LkParticipantInfo {
  const perm = p.permission;
  return new LkParticipantInfo({
    sid: p.sid,
    identity: p.identity,
    name: p.name,
    metadata: p.metadata,
    state: active ? ParticipantInfo_State.ACTIVE : ParticipantInfo_State.DISCONNECTED,
    joinedAt: BigInt(Math.floor(p.joinedAt / 1000)),
    tracks,
    isPublisher: tracks.length > 0,
    permission: new LkPermission({
      canSubscribe: perm.canSubscribe,
      canPublish: perm.canPublish,
      canPublishData: perm.canPublishData,
      hidden: perm.hidden,
      canUpdateMetadata: perm.canUpdateMetadata,
      canPublishSources: perm.canPublishSources.map((s) => SOURCE_TO_LK.get(s) ?? TrackSource.UNKNOWN),
    }),
  });
}
