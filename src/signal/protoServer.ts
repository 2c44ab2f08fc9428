import type protobuf from 'protobufjs/light.js';
import type { JoinResponse, ParticipantInfo, ServerMessage } from './messages.js';

// Field numbers in proto/auralink.proto, checked against the schema when the encoder is made.
const SERVER_JOIN = 3;
const SERVER_PARTICIPANT_JOINED = 4;
const SERVER_PARTICIPANT_UPDATED = 6;
const JOIN_PARTICIPANT = 2;
const JOIN_OTHERS = 3;

/**
 * The protobuf ServerMessage encoder, with each participant's ParticipantInfo encoded once.
 * A join lists every other participant and announces the newcomer: encoded whole, a room's
 * n joins re-encoded O(n²) infos, and the newcomer's twice (bench/PROFILE-join.md). A frozen
 * info (Participant.info(): replaced, never changed) keeps its bytes in a WeakMap, and a
 * JoinResponse, participantJoined or participantUpdated is put together from them: protobuf
 * writes fields in number order and a message is the concatenation of its fields (a
 * repeated one, of its entries), so the bytes are those of encoding it whole
 * (test/protoServer.test.ts compares the two). Everything else is encoded whole.
 */
export function protoServerEncoder(root: protobuf.Root): (msg: ServerMessage) => Uint8Array {
  const Server = root.lookupType('auralink.v1.ServerMessage');
  const Join = root.lookupType('auralink.v1.JoinResponse');
  const Info = root.lookupType('auralink.v1.ParticipantInfo');
  for (const [t, name, id] of [
    [Server, 'join', SERVER_JOIN],
    [Server, 'participantJoined', SERVER_PARTICIPANT_JOINED],
    [Server, 'participantUpdated', SERVER_PARTICIPANT_UPDATED],
    [Join, 'participant', JOIN_PARTICIPANT],
    [Join, 'otherParticipants', JOIN_OTHERS],
  ] as const) {
    if (t.fields[name]?.id !== id) throw new Error(`proto schema changed: ${t.name}.${name} is not field ${id}`);
  }
  // The fields composed here must be the first ones after seq (1) and room (1), in order.
  if (Join.fieldsArray.some((f) => f.id < JOIN_OTHERS && f.name !== 'room' && f.name !== 'participant')) throw new Error('proto schema changed: JoinResponse fields before 3');
  const whole = (t: protobuf.Type, obj: object): Uint8Array => t.encode(t.fromObject(obj as Record<string, unknown>)).finish();
  // The codec loads in browsers too (the SDK), which never encode server messages.
  if (typeof Buffer === 'undefined') return (msg) => whole(Server, msg);
  const kept = new WeakMap<ParticipantInfo, string>();

  const info = (i: ParticipantInfo): Uint8Array | string => {
    const k = kept.get(i);
    if (k !== undefined) return k;
    const bytes = whole(Info, i);
    // Only an info nobody can change may keep its bytes. As a latin1 string: a Buffer from the
    // pool would pin an 8 KB slab per participant, a Uint8Array of its own costs ~100 B more.
    if (Object.isFrozen(i) && Object.isFrozen(i.permission) && Object.isFrozen(i.permission.canPublishSources)) {
      const s = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('latin1');
      kept.set(i, s);
      return s;
    }
    return bytes;
  };

  const join = (parts: Part[], j: JoinResponse): void => {
    const { room, participant, otherParticipants, ...rest } = j;
    const at = parts.length;
    parts.push(0, 0); // the join field's key and length, known once its content is
    if (room != null) parts.push(whole(Join, { room }));
    if (participant != null) field(parts, JOIN_PARTICIPANT, info(participant));
    for (const o of otherParticipants ?? []) field(parts, JOIN_OTHERS, info(o));
    parts.push(whole(Join, rest));
    parts[at] = key(SERVER_JOIN);
    parts[at + 1] = size(parts, at + 2);
  };

  return (msg) => {
    let body: string | undefined;
    for (const k in msg) {
      if (k === 'seq') continue;
      if (body !== undefined) return whole(Server, msg); // more than one body: as protobufjs does it
      body = k;
    }
    const seq = msg.seq;
    // seq is uint64 field 1: a varint after key 0x08 (larger ones than this never occur).
    if (seq != null && !(Number.isInteger(seq) && seq >= 0 && seq < 2 ** 31)) return whole(Server, msg);
    const parts: Part[] = seq != null ? [0x08, seq] : [];
    if (body === 'join' && msg.join) join(parts, msg.join);
    else if (body === 'participantJoined' && msg.participantJoined) field(parts, SERVER_PARTICIPANT_JOINED, info(msg.participantJoined));
    else if (body === 'participantUpdated' && msg.participantUpdated) field(parts, SERVER_PARTICIPANT_UPDATED, info(msg.participantUpdated));
    else return whole(Server, msg);
    return concat(parts);
  };
}

/** Bytes (a latin1 string holds one byte per char) or, as a number, a varint below 2^31. */
type Part = Uint8Array | string | number;

const key = (id: number): number => (id << 3) | 2; // length-delimited
const varintLen = (v: number): number => (v < 0x80 ? 1 : v < 0x4000 ? 2 : v < 0x200000 ? 3 : v < 0x10000000 ? 4 : 5);
const partLen = (p: Part): number => (typeof p === 'number' ? varintLen(p) : p.length);

/** Bytes in parts[from..]. */
function size(parts: Part[], from: number): number {
  let n = 0;
  for (let i = from; i < parts.length; i++) n += partLen(parts[i]!);
  return n;
}

/** A length-delimited field holding one part. */
function field(parts: Part[], id: number, content: Uint8Array | string): void {
  parts.push(key(id), content.length, content);
}

function concat(parts: Part[]): Uint8Array {
  const out = Buffer.allocUnsafe(size(parts, 0));
  let off = 0;
  for (const p of parts) {
    if (typeof p === 'number') {
      let v = p;
      while (v > 0x7f) {
        out[off++] = (v & 0x7f) | 0x80;
        v >>>= 7;
      }
      out[off++] = v;
    } else if (typeof p === 'string') off += out.write(p, off, 'latin1');
    else {
      out.set(p, off);
      off += p.length;
    }
  }
  return out;
}
