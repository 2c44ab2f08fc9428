/**
 * The most body each LiveKit RoomService request can legitimately need, so a request is
 * refused at its Content-Length (or once it has sent that much) instead of buffering 1 MiB.
 *
 * Names, identities and sids are at most 256 characters: under 1.5 KiB each even as JSON
 * with every character escaped. Text a limit is configured for (metadata:
 * room.max_metadata_bytes; data: signal.max_data_bytes) is counted twice for JSON escaping
 * (a JSON metadata string escapes every quote), bytes 4/3 for base64. Each gets headroom for
 * the request's other fields and encodings' framing.
 */
export function roomServiceBodyLimits(o: { maxMetadataBytes: number; maxDataBytes: number }): Record<string, number> {
  const KIB = 1024;
  const ids = 8 * KIB; // a room, an identity, a track sid, flags
  const meta = 2 * o.maxMetadataBytes;
  return {
    DeleteRoom: ids,
    ListParticipants: ids,
    GetParticipant: ids,
    RemoveParticipant: ids,
    MutePublishedTrack: ids,
    // Up to ~100 names of 256 characters.
    ListRooms: 64 * KIB,
    // Track sids, one list per participant.
    UpdateSubscriptions: 64 * KIB,
    UpdateRoomMetadata: ids + meta,
    // Metadata, plus attributes and permissions.
    UpdateParticipant: 2 * ids + 2 * meta,
    // Metadata, plus egress and agent dispatch settings.
    CreateRoom: 64 * KIB + meta,
    // The payload (base64 in JSON), ~256 destination identities of 256 characters plus sids,
    // a topic.
    SendData: Math.ceil((o.maxDataBytes * 4) / 3) + 128 * KIB + ids,
  };
}
