import { pack } from 'msgpackr';
import { codecs, type Encoding } from '../src/signal/codec.js';
import { bytes } from './helpers.js';
import { DTLS, opus } from './media.js';

// Seeded mutators of valid inputs, shared by the CI fuzz test (test/fuzz.test.ts) and the fuzz
// at scale (bench/fuzz.ts).

/** Real ids in the fuzzer's room, so media requests reach mediasoup instead of NOT_FOUND. */
export interface Ids {
  send: string;
  recv: string;
  producer: string;
  caps: string;
}

/** Valid requests of every kind but leave: the seeds that mutations start from. */
export const corpus = (ids: Ids): Record<string, unknown>[] => [
  { id: 1, ping: { timestamp: 12345, rtt: 20 } },
  { id: 2, sendData: { payload: bytes('hello'), topic: 'chat', destinationIdentities: ['someone'] } },
  { id: 3, updateParticipant: { name: 'n', metadata: '{"a":1}' } },
  { id: 4, updateRoomMetadata: { metadata: 'm' } },
  { id: 5, relay: { identity: 'peer', kind: 'OFFER', sdp: 'v=0', callId: 'c1' } },
  { id: 6, listParticipants: {} },
  { id: 7, getRouterCapabilities: {} },
  { id: 8, createTransport: { producing: true, sctp: true } },
  { id: 9, connectTransport: { transportId: ids.send, dtlsParameters: DTLS } },
  { id: 10, produce: { transportId: ids.send, kind: 'audio', rtpParameters: opus(4242), source: 'microphone' } },
  { id: 11, consume: { producerId: ids.producer, transportId: ids.recv, rtpCapabilities: ids.caps } },
  { id: 12, setPreferredLayers: { consumerId: 'c', spatialLayer: 2, temporalLayer: 1 } },
  { id: 13, setPriority: { consumerId: 'c', priority: 3 } },
  { id: 14, getStats: { id: ids.send } },
  { id: 15, produceData: { transportId: ids.send, sctpStreamParameters: '{"streamId":1,"ordered":true}', label: 'l' } },
  { id: 16, routeReport: { callId: 'c1', tier: 'p2p', connected: true, rttMs: 20, lossPct: 1, quality: 4 } },
  { id: 17, linkReport: { rtts: [{ nodeId: 'n1', rttMs: 3 }] } },
  { id: 18, restartIce: { transportId: ids.recv } },
  { id: 19, pauseConsumer: { consumerId: 'c' } },
  { id: 20, closeProducer: { producerId: ids.producer } },
  { id: 21, consumeData: { dataProducerId: 'd', transportId: ids.recv } },
  { id: 22, trackSettings: { consumerId: 'c', width: 320, height: 180, hidden: false, fps: 15 } },
];

export const pick = <T>(xs: readonly T[], rnd: () => number): T => xs[Math.floor(rnd() * xs.length)]!;
export const tally = <K>(m: Map<K, number>, k: K): void => void m.set(k, (m.get(k) ?? 0) + 1);
export const counts = (m: Map<unknown, number>): string => JSON.stringify(Object.fromEntries(m));

export const WEIRD: unknown[] = [null, true, -1, 0, 2 ** 53, -(2 ** 31), 1.5, 1e308, '', 'x'.repeat(3000), '\u0000\ud800', [], [1, 'a'], {}, { id: 1 }, { __proto__: { x: 1 } }, { constructor: 1 }];

/** Replaces, drops or adds one field somewhere in a copy of `v`. */
export function mutateValue(v: unknown, rnd: () => number, depth = 0): unknown {
  if (v === null || typeof v !== 'object' || v instanceof Uint8Array || depth > 4 || rnd() < 0.25) {
    return pick([...WEIRD, bytes('zz'), Number.NaN], rnd);
  }
  if (Array.isArray(v)) {
    const a = [...v];
    if (a.length > 0 && rnd() < 0.7) a[Math.floor(rnd() * a.length)] = mutateValue(a[0], rnd, depth + 1);
    else a.push(pick(WEIRD, rnd));
    return a;
  }
  const o: Record<string, unknown> = { ...(v as Record<string, unknown>) };
  const keys = Object.keys(o);
  const r = rnd();
  if (r < 0.15 && keys.length > 0) delete o[pick(keys, rnd)];
  else if (r < 0.3) o[pick(['__proto__', 'constructor', 'leave', 'ping', 'zz', 'id', 'toString'], rnd)] = pick(WEIRD, rnd);
  else if (keys.length > 0) {
    const k = pick(keys, rnd);
    o[k] = mutateValue(o[k], rnd, depth + 1);
  }
  return o;
}

/** Flips, inserts, deletes, truncates or splices bytes. */
export function mutateBytes(b: Uint8Array, rnd: () => number): Uint8Array {
  const out = Array.from(b);
  const n = 1 + Math.floor(rnd() * 4);
  for (let i = 0; i < n; i++) {
    const at = Math.floor(rnd() * (out.length + 1));
    const r = rnd();
    if (r < 0.35 && out.length > 0) out[at % out.length] = (out[at % out.length]! ^ (1 << Math.floor(rnd() * 8))) & 0xff;
    else if (r < 0.55) out.splice(at, 0, Math.floor(rnd() * 256));
    else if (r < 0.7) out.splice(at, 1 + Math.floor(rnd() * 4));
    else if (r < 0.8) out.length = at;
    else if (r < 0.9) out.splice(at, 0, ...out.slice(0, Math.floor(rnd() * 16)));
    else out.splice(at, 0, 0xff, 0xff, 0xff, 0xff, 0x0f);
  }
  return Uint8Array.from(out);
}

/** One fuzzed frame: a structurally mutated request, or mutated bytes of a valid one. */
export function fuzzFrame(enc: Encoding, seeds: Record<string, unknown>[], rnd: () => number): Uint8Array | string {
  const seed = pick(seeds, rnd);
  const structural = rnd() < 0.5;
  if (structural && enc !== 'proto') {
    const v = mutateValue(seed, rnd);
    // Encoded directly, not through our codec: the server must cope with what a foreign encoder sends.
    return enc === 'json' ? (JSON.stringify(v, (_k, x: unknown) => (x instanceof Uint8Array ? Buffer.from(x).toString('base64') : x)) ?? 'null') : pack(v);
  }
  const valid = codecs[enc].encodeRequest(seed as never);
  if (typeof valid === 'string') return Buffer.from(mutateBytes(Buffer.from(valid), rnd)).toString('latin1');
  return mutateBytes(valid as Uint8Array, rnd);
}

/** A valid body of each RoomService method for `room` (member: a participant's identity in it). */
export const twirpBodies = (room: string): Record<string, Record<string, unknown>> => ({
  CreateRoom: { name: room, emptyTimeout: 30, maxParticipants: 10, metadata: 'm' },
  ListRooms: { names: [room] },
  ListParticipants: { room },
  GetParticipant: { room, identity: 'member' },
  MutePublishedTrack: { room, identity: 'member', trackSid: 'TR_x', muted: true },
  UpdateParticipant: { room, identity: 'member', metadata: 'x', name: 'n', permission: { canPublish: true, canPublishSources: [1, 2] } },
  UpdateSubscriptions: { room, identity: 'member', trackSids: ['TR_x'], subscribe: true },
  UpdateRoomMetadata: { room, metadata: 'meta' },
  SendData: { room, data: Buffer.from('hi').toString('base64'), kind: 0, destinationIdentities: ['member'], topic: 't' },
});

const endpoint = { identity: 'a', region: 'eu', rtts: { 'relay-1': 20 }, nat: 'cone' };
/** Valid mesh API calls (path, body). */
export const MESH_POSTS: [string, Record<string, unknown>][] = [
  ['/internal/mesh/register_node', { id: 'relay-1', role: 'relay', region: 'eu', addresses: { http: 'http://127.0.0.1:1/', turn: ['turn:127.0.0.1:3478'] }, capacity: 100, load: 0.2, version: '1' }],
  ['/internal/mesh/nodes/relay-1/heartbeat', { load: 0.5 }],
  ['/internal/mesh/route/query', { from: endpoint, to: { ...endpoint, identity: 'b' }, participants: 2, policy: 'auto' }],
  ['/internal/mesh/route/feedback', { tier: 'p2p', path: ['relay-1'], metrics: { latencyMs: 20, lossPct: 1, jitterMs: 2, hops: 1, maxLoad: 0.3 }, observedQuality: 80, connected: true }],
  ['/internal/mesh/links', { links: [{ from: 'relay-1', to: 'relay-2', latencyMs: 5, lossPct: 0, jitterMs: 1, bandwidthKbps: 1000 }] }],
  ['/internal/mesh/nodes/relay-1/report', { reason: 'spam' }],
];

/** A STUN message: `method`, the magic cookie, a random transaction id, then `attrs`. */
export function stunMessage(method: number, attrs: Uint8Array, rnd: () => number): Buffer {
  const h = Buffer.alloc(20);
  h.writeUInt16BE(method, 0);
  h.writeUInt16BE(attrs.length, 2);
  h.writeUInt32BE(0x2112a442, 4);
  for (let i = 8; i < 20; i++) h[i] = Math.floor(rnd() * 256);
  return Buffer.concat([h, attrs]);
}

// Attribute types node-turn parses (and some it does not), and methods, for lengths that lie.
const STUN_TYPES = [0x0001, 0x0006, 0x0008, 0x0009, 0x000c, 0x0012, 0x0013, 0x0014, 0x0015, 0x0016, 0x0018, 0x0019, 0x001a, 0x0020, 0x0022, 0x8028, 0x0024, 0x0025, 0x8022, 0xc057];
const STUN_METHODS = [0x0001, 0x0003, 0x0004, 0x0008, 0x0009, 0x0016, 0x0017, 0x0111];

/** A random, mangled or lying STUN datagram. */
export function fuzzStun(rnd: () => number): Uint8Array {
  const attrs = Buffer.from(Array.from({ length: Math.floor(rnd() * 48) }, () => Math.floor(rnd() * 256)));
  if (attrs.length >= 4) {
    attrs.writeUInt16BE(pick(STUN_TYPES, rnd), 0);
    attrs.writeUInt16BE(Math.floor(rnd() * attrs.length), 2);
  }
  const r = rnd();
  return r < 0.2 ? attrs : r < 0.9 ? stunMessage(pick(STUN_METHODS, rnd), attrs, rnd) : mutateBytes(stunMessage(0x0001, attrs, rnd), rnd);
}
