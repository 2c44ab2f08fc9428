import {
  DeleteRoomRequest,
  ListParticipantsRequest,
  ListParticipantsResponse,
  ListRoomsRequest,
  ListRoomsResponse,
  Room as LkRoom,
  type ParticipantInfo as LkParticipantInfo,
} from '@livekit/protocol';
import { lkParticipant, lkParticipantInfo, lkRoom, lkTrack } from '../api/livekitInfo.js';
import { need, needAdmin } from '../api/roomService.js';
import { twirpMethod, TwirpError, type TwirpMethod } from '../api/twirp.js';
import type { Claims } from '../auth/token.js';
import type { RoomManager } from '../rooms/roomManager.js';
import type { ClusterRooms } from './clusterRooms.js';
import type { ClusterCommands } from './commands.js';
import type { RoomDirectory } from './directory.js';

// Methods that name a participant: run where it is. Methods on a room: run on a node holding it.
const BY_PARTICIPANT = ['GetParticipant', 'RemoveParticipant', 'MutePublishedTrack', 'UpdateParticipant', 'UpdateSubscriptions'] as const;
const BY_ROOM = ['SendData', 'UpdateRoomMetadata'] as const;

/**
 * RoomService over the whole cluster: lists come from the room directory; calls on a
 * participant or room another node holds are forwarded there (ClusterCommands) and answered
 * with that node's own response. The local methods stay what a single node serves.
 */
export function clusterRoomService(
  local: Record<string, TwirpMethod>,
  manager: RoomManager,
  dir: RoomDirectory,
  commands: ClusterCommands,
  cluster: ClusterRooms,
): Record<string, TwirpMethod> {
  const methods: Record<string, TwirpMethod> = { ...local };
  const forward = async (node: string, name: string, req: { toBinary(): Uint8Array }, claims: Claims, res: TwirpMethod['res']) =>
    res.fromBinary(await commands.call(node, name, req, claims));

  for (const name of BY_PARTICIPANT) {
    const m = local[name]!;
    methods[name] = {
      req: m.req,
      res: m.res,
      handle: async (r, c) => {
        const { room, identity } = r as unknown as { room: string; identity: string };
        if (manager.rooms.get(room)?.participants.has(identity) || cluster.isDown) return m.handle(r, c);
        needAdmin(c, room);
        const e = await dir.entry(room, identity);
        return e ? forward(e.node, name, r, c, m.res) : m.handle(r, c);
      },
    };
  }
  for (const name of BY_ROOM) {
    const m = local[name]!;
    methods[name] = {
      req: m.req,
      res: m.res,
      handle: async (r, c) => {
        const { room } = r as unknown as { room: string };
        if (manager.rooms.has(room) || cluster.isDown) return m.handle(r, c);
        needAdmin(c, room);
        const [node] = await dir.nodes(room);
        return node ? forward(node, name, r, c, m.res) : m.handle(r, c);
      },
    };
  }
  methods.ListRooms = twirpMethod({
    req: ListRoomsRequest,
    res: ListRoomsResponse,
    handle: async (r, c) => {
      need(c, 'roomList');
      const out = new Map<string, LkRoom>();
      // This node's rooms first (some may not be in Redis: created empty, or while it was away).
      for (const room of manager.rooms.values()) out.set(room.name, lkRoom(room));
      if (!cluster.isDown) {
        const names = r.names.length > 0 ? r.names : await dir.roomNames();
        for (const n of names) {
          if (out.has(n)) continue;
          const meta = await dir.meta(n);
          if (!meta) continue;
          const parts = [...(await dir.participants(n)).values()];
          out.set(
            n,
            new LkRoom({
              sid: meta.sid,
              name: n,
              emptyTimeout: Math.round(meta.emptyTimeoutS),
              maxParticipants: meta.maxParticipants,
              creationTime: BigInt(Math.floor(meta.createdAt / 1000)),
              metadata: meta.metadata,
              numParticipants: parts.filter((p) => !p.info.permission.hidden).length,
              numPublishers: parts.filter((p) => p.tracks.length > 0).length,
            }),
          );
        }
      }
      const rooms = [...out.values()].filter((x) => r.names.length === 0 || r.names.includes(x.name));
      return new ListRoomsResponse({ rooms });
    },
  });
  methods.ListParticipants = twirpMethod({
    req: ListParticipantsRequest,
    res: ListParticipantsResponse,
    handle: async (r, c) => {
      needAdmin(c, r.room);
      const room = manager.rooms.get(r.room);
      const list = new Map<string, LkParticipantInfo>();
      if (room) for (const p of room.participants.values()) if (!p.hidden) list.set(p.identity, lkParticipant(p));
      if (!cluster.isDown) {
        for (const [id, e] of await dir.participants(r.room)) {
          if (!list.has(id) && !e.info.permission.hidden) list.set(id, lkParticipantInfo(e.info, e.tracks.map(lkTrack)));
        }
      } else if (room) {
        for (const [id, e] of room.remote) if (!list.has(id) && !e.info.permission.hidden) list.set(id, lkParticipantInfo(e.info));
      }
      if (!room && list.size === 0) throw new TwirpError('not_found', `room ${JSON.stringify(r.room)} does not exist`);
      return new ListParticipantsResponse({ participants: [...list.values()] });
    },
  });
  const del = local.DeleteRoom!;
  methods.DeleteRoom = twirpMethod({
    req: DeleteRoomRequest,
    res: del.res,
    handle: async (r, c) => {
      const res = await del.handle(r, c); // checks roomCreate, closes the room here
      // Every other node holding it closes its part (the last one's release ends the session).
      if (!cluster.isDown) await cluster.publishEvent(r.room, { t: 'delete' });
      return res;
    },
  });
  return methods;
}
