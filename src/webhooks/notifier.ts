import { randomUUID } from 'node:crypto';
import { WebhookEvent } from '@livekit/protocol';
import { lkParticipant, lkRoom, lkTrack } from '../api/livekitInfo.js';
import { RowInsert } from '../db/rowInsert.js';
import type { WriteBehind } from '../db/writeBehind.js';
import type { Participant } from '../rooms/participant.js';
import type { Room } from '../rooms/room.js';
import type { RoomEvents } from '../rooms/types.js';
import type { Track } from '../rooms/track.js';

// bigserial ids in queue order: the dispatcher delivers per (room, URL) in id order.
const OUTBOX = new RowInsert(
  'webhook_outbox',
  [
    ['room_name', 'text'],
    ['url', 'text'],
    ['event', 'text'],
    ['body', 'text'],
  ],
  {
    fixed: [
      ['created_at', 'now()'],
      ['next_attempt_at', 'now()'],
    ],
  },
);

/**
 * Turns room events into LiveKit WebhookEvents and puts one outbox row per target URL
 * (write-behind, so the signalling path never waits on the database). The dispatcher
 * delivers them.
 */
export function notifyWebhooks(manager: RoomEvents, writes: WriteBehind, urls: string[]): void {
  if (urls.length === 0) return;
  const put = (room: Room, event: string, p?: Participant, track?: Track): void => {
    const body = JSON.stringify(
      new WebhookEvent({
        event,
        id: `EV_${randomUUID()}`,
        createdAt: BigInt(Math.floor(Date.now() / 1000)),
        room: lkRoom(room),
        ...(p ? { participant: lkParticipant(p) } : {}),
        ...(track ? { track: lkTrack(track) } : {}),
      }).toJson(),
    );
    for (const url of urls) {
      writes.enqueue(OUTBOX, [room.name, url, event, body]);
    }
  };
  manager.on('roomStarted', (room) => put(room, 'room_started'));
  manager.on('roomFinished', (room) => put(room, 'room_finished'));
  manager.on('participantJoined', (room, p) => put(room, 'participant_joined', p));
  manager.on('participantLeft', (room, p) => put(room, 'participant_left', p));
  manager.on('trackPublished', (room, p, t) => put(room, 'track_published', p, t));
  manager.on('trackUnpublished', (room, p, t) => put(room, 'track_unpublished', p, t));
}
