import type { RoomEvents } from '../rooms/types.js';
import type { WriteBehind } from './writeBehind.js';

/** Room sessions become `calls` rows, participants `call_participants` rows (write-behind). */
export function recordCalls(manager: RoomEvents, writes: WriteBehind, nodeId: string): void {
  manager.on('roomStarted', (room) => {
    writes.enqueue(
      `INSERT INTO calls (id, room_name, node_id, started_at, status) VALUES ($1, $2, $3, $4, 'active') ON CONFLICT (id) DO NOTHING`,
      [room.sid, room.name, nodeId, new Date(room.createdAt)],
    );
  });
  manager.on('participantJoined', (room, p) => {
    writes.enqueue(
      `INSERT INTO call_participants (id, call_id, identity, name, joined_at) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (id) DO NOTHING`,
      [p.sid, room.sid, p.identity, p.name, new Date(p.joinedAt)],
    );
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
