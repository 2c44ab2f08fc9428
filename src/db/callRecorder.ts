import type { RoomEvents } from '../rooms/types.js';
import { RowInsert } from './rowInsert.js';
import type { WriteBehind } from './writeBehind.js';

// Inserts, so a storm's rows are written one statement per run (rowInsert.ts).
const CALL = new RowInsert(
  'calls',
  [
    ['id', 'text'],
    ['room_name', 'text'],
    ['node_id', 'text'],
    ['started_at', 'timestamptz'],
  ],
  { fixed: [['status', "'active'"]], tail: 'ON CONFLICT (id) DO NOTHING' },
);
export const PARTICIPANT_ROW = new RowInsert(
  'call_participants',
  [
    ['id', 'text'],
    ['call_id', 'text'],
    ['identity', 'text'],
    ['name', 'text'],
    ['joined_at', 'timestamptz'],
  ],
  { tail: 'ON CONFLICT (id) DO NOTHING' },
);

/** Room sessions become `calls` rows, participants `call_participants` rows (write-behind). */
export function recordCalls(manager: RoomEvents, writes: WriteBehind, nodeId: string): void {
  // Call rows this node has written (recent sessions, bounded). In a cluster the session
  // starts on one node; a node whose database is not shared with it (embedded PGlite each)
  // must have the call row too, or its participant rows break the foreign key.
  const written = new Set<string>();
  const call = (room: { sid: string; name: string; createdAt: number }): void => {
    if (written.has(room.sid)) return;
    written.add(room.sid);
    if (written.size > 10_000) written.delete(written.values().next().value!);
    writes.enqueue(CALL, [room.sid, room.name, nodeId, new Date(room.createdAt)]);
  };
  manager.on('roomStarted', (room) => call(room));
  manager.on('participantJoined', (room, p) => {
    call(room);
    writes.enqueue(PARTICIPANT_ROW, [p.sid, room.sid, p.identity, p.name, new Date(p.joinedAt)]);
  });
  manager.on('participantLeft', (_room, p, reason) => {
    const now = Date.now();
    writes.enqueue(`UPDATE call_participants SET left_at = $2, duration_seconds = $3, leave_reason = $4 WHERE id = $1`, [
      p.sid,
      new Date(now),
      (now - p.joinedAt) / 1000,
      reason,
    ]);
  });
  manager.on('roomFinished', (room) => {
    const now = Date.now();
    // The peak is tracked in memory and written once, when the call ends.
    writes.enqueue(`UPDATE calls SET ended_at = $2, duration_seconds = $3, status = 'ended', peak_participants = $4 WHERE id = $1`, [
      room.sid,
      new Date(now),
      (now - room.createdAt) / 1000,
      room.peakParticipants,
    ]);
  });
  // media_state: the sources a participant has published during the call.
  manager.on('trackPublished', (_room, p, t) => {
    writes.enqueue(
      `UPDATE call_participants SET media_state = jsonb_set(media_state, '{published}',
         (SELECT to_jsonb(array_agg(DISTINCT s)) FROM (SELECT jsonb_array_elements_text(COALESCE(media_state->'published', '[]'::jsonb)) AS s UNION SELECT $2) x))
       WHERE id = $1`,
      [p.sid, t.source],
    );
  });
}
