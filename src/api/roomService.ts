import {
  CreateRoomRequest,
  DeleteRoomRequest,
  DeleteRoomResponse,
  ListParticipantsRequest,
  ListParticipantsResponse,
  ListRoomsRequest,
  ListRoomsResponse,
  MuteRoomTrackRequest,
  MuteRoomTrackResponse,
  ParticipantInfo as LkParticipantInfo,
  RemoveParticipantResponse,
  Room as LkRoom,
  RoomParticipantIdentity,
  SendDataRequest,
  SendDataResponse,
  UpdateParticipantRequest,
  UpdateRoomMetadataRequest,
  UpdateSubscriptionsRequest,
  UpdateSubscriptionsResponse,
} from '@livekit/protocol';
import type { Claims } from '../auth/token.js';
import type { Participant } from '../rooms/participant.js';
import { CloseCode } from '../rooms/ports.js';
import type { Room } from '../rooms/room.js';
import type { RoomManager } from '../rooms/roomManager.js';
import { SignalError } from '../signal/errors.js';
import type { RoomMessaging } from '../rooms/messaging.js';
import type { TrackControl } from '../sfu/sfuService.js';
import { LK_TO_SOURCE, lkParticipant, lkRoom, lkTrack } from './livekitInfo.js';
import { twirpMethod, TwirpError, type TwirpMethod } from './twirp.js';

// LiveKit's grant rules for RoomService.
export function need(claims: Claims, grant: 'roomCreate' | 'roomList'): void {
  if (!claims.video?.[grant]) throw new TwirpError('permission_denied', `token lacks ${grant}`);
}
export function needAdmin(claims: Claims, room: string): void {
  if (!claims.video?.roomAdmin) throw new TwirpError('permission_denied', 'token lacks roomAdmin');
  if (claims.video.room !== room) throw new TwirpError('permission_denied', `token is for room ${JSON.stringify(claims.video.room ?? '')}`);
}

/**
 * LiveKit's RoomService (livekit.RoomService over Twirp) on this node's rooms, so LiveKit
 * server SDKs and the platform dashboard work unchanged. Rooms are this node's; the Redis
 * room store (multi-node work) will widen ListRooms/ListParticipants to the cluster.
 */
export class RoomServiceApi {
  constructor(
    private readonly manager: RoomManager,
    private readonly messaging: RoomMessaging,
    /** Media control of tracks; none when the SFU is off. */
    private readonly tracks: TrackControl | undefined,
  ) {}

  private room(name: string): Room {
    const room = this.manager.rooms.get(name);
    if (!room) throw new TwirpError('not_found', `room ${JSON.stringify(name)} does not exist`);
    return room;
  }

  /** The room a roomAdmin request names, after checking the token may administer it. */
  private adminRoom(claims: Claims, name: string): Room {
    needAdmin(claims, name);
    return this.room(name);
  }

  private participant(room: Room, identity: string): Participant {
    const p = room.participants.get(identity);
    if (!p) throw new TwirpError('not_found', `participant ${JSON.stringify(identity)} is not in room ${JSON.stringify(room.name)}`);
    return p;
  }


  methods(): Record<string, TwirpMethod> {
    return {
      CreateRoom: twirpMethod({
        req: CreateRoomRequest,
        res: LkRoom,
        handle: (r, c) => {
          need(c, 'roomCreate');
          if (!r.name) throw new TwirpError('invalid_argument', 'name is required');
          const room = this.manager.createRoom(r.name, {
            metadata: r.metadata,
            ...(r.maxParticipants ? { maxParticipants: r.maxParticipants } : {}),
            ...(r.emptyTimeout ? { emptyTimeoutS: r.emptyTimeout } : {}),
          });
          return lkRoom(room);
        },
      }),
      ListRooms: twirpMethod({
        req: ListRoomsRequest,
        res: ListRoomsResponse,
        handle: (r, c) => {
          need(c, 'roomList');
          const rooms = [...this.manager.rooms.values()].filter((x) => r.names.length === 0 || r.names.includes(x.name));
          return new ListRoomsResponse({ rooms: rooms.map((x) => lkRoom(x)) });
        },
      }),
      DeleteRoom: twirpMethod({
        req: DeleteRoomRequest,
        res: DeleteRoomResponse,
        handle: (r, c) => {
          need(c, 'roomCreate');
          // LiveKit answers DeleteRoom for an unknown room without error.
          const room = this.manager.rooms.get(r.room);
          if (room) this.manager.closeRoom(room, 'ROOM_DELETED', CloseCode.ROOM_DELETED);
          return new DeleteRoomResponse();
        },
      }),
      ListParticipants: twirpMethod({
        req: ListParticipantsRequest,
        res: ListParticipantsResponse,
        handle: (r, c) => {
          const room = this.adminRoom(c, r.room);
          const list = [...room.participants.values()].filter((p) => !p.hidden).map((p) => lkParticipant(p));
          return new ListParticipantsResponse({ participants: list });
        },
      }),
      GetParticipant: twirpMethod({
        req: RoomParticipantIdentity,
        res: LkParticipantInfo,
        handle: (r, c) => {
          const room = this.adminRoom(c, r.room);
          return lkParticipant(this.participant(room, r.identity));
        },
      }),
      RemoveParticipant: twirpMethod({
        req: RoomParticipantIdentity,
        res: RemoveParticipantResponse,
        handle: (r, c) => {
          const room = this.adminRoom(c, r.room);
          const p = this.participant(room, r.identity);
          this.manager.removeParticipant(room, p, 'PARTICIPANT_REMOVED', { closeCode: CloseCode.REMOVED, message: 'removed by the server' });
          return new RemoveParticipantResponse();
        },
      }),
      MutePublishedTrack: twirpMethod({
        req: MuteRoomTrackRequest,
        res: MuteRoomTrackResponse,
        handle: async (r, c) => {
          const room = this.adminRoom(c, r.room);
          const p = this.participant(room, r.identity);
          const track = p.tracks.get(r.trackSid);
          if (!track || !this.tracks || !(await this.tracks.setTrackMuted(room, p, r.trackSid, r.muted))) {
            throw new TwirpError('not_found', `track ${JSON.stringify(r.trackSid)} not published by ${JSON.stringify(r.identity)}`);
          }
          return new MuteRoomTrackResponse({ track: lkTrack(track) });
        },
      }),
      UpdateParticipant: twirpMethod({
        req: UpdateParticipantRequest,
        res: LkParticipantInfo,
        handle: (r, c) => {
          const room = this.adminRoom(c, r.room);
          const p = this.participant(room, r.identity);
          if (r.permission) {
            const lp = r.permission;
            this.manager.setPermission(room, p, {
              canPublish: lp.canPublish,
              canSubscribe: lp.canSubscribe,
              canPublishData: lp.canPublishData,
              canUpdateMetadata: lp.canUpdateMetadata,
              hidden: lp.hidden,
              canPublishSources: lp.canPublishSources.map((s) => LK_TO_SOURCE.get(s)).filter((s): s is string => !!s),
            });
          }
          try {
            this.manager.updateParticipant(room, p, {
              ...(r.name ? { name: r.name } : {}),
              ...(r.metadata ? { metadata: r.metadata } : {}),
            });
          } catch (err) {
            if (err instanceof SignalError) throw new TwirpError('invalid_argument', err.message);
            throw err;
          }
          return lkParticipant(p);
        },
      }),
      UpdateSubscriptions: twirpMethod({
        req: UpdateSubscriptionsRequest,
        res: UpdateSubscriptionsResponse,
        handle: (r, c) => {
          const room = this.adminRoom(c, r.room);
          const p = this.participant(room, r.identity);
          const ids = [...r.trackSids, ...r.participantTracks.flatMap((pt) => pt.trackSids)];
          this.tracks?.setSubscribed(room, p, ids, r.subscribe);
          return new UpdateSubscriptionsResponse();
        },
      }),
      UpdateRoomMetadata: twirpMethod({
        req: UpdateRoomMetadataRequest,
        res: LkRoom,
        handle: (r, c) => {
          const room = this.adminRoom(c, r.room);
          try {
            this.manager.updateRoomMetadata(room, r.metadata);
          } catch (err) {
            if (err instanceof SignalError) throw new TwirpError('invalid_argument', err.message);
            throw err;
          }
          return lkRoom(room);
        },
      }),
      SendData: twirpMethod({
        req: SendDataRequest,
        res: SendDataResponse,
        handle: (r, c) => {
          const room = this.adminRoom(c, r.room);
          const identities = [...r.destinationIdentities];
          for (const sid of r.destinationSids) {
            for (const p of room.participants.values()) if (p.sid === sid) identities.push(p.identity);
          }
          this.messaging.sendServerData(room, r.data, r.topic, identities);
          return new SendDataResponse();
        },
      }),
    };
  }
}
