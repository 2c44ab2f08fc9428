import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createHmac } from 'node:crypto';
import dgram from 'node:dgram';
import { pack } from 'msgpackr';
import { codecs, type Encoding } from '../src/signal/codec.js';
import type { ServerMessage } from '../src/signal/messages.js';
import { createToken } from '../src/auth/token.js';
import { bytes, ENCODINGS, KEY, prng, RawClient, SECRET, startServer, text, type TestServer } from './helpers.js';
import { DTLS, opus, publishAudio } from './media.js';

// Seeded, so a failure is reproducible: FUZZ_SEED=<n> npm test.
const SEED = Number(process.env.FUZZ_SEED ?? 20261122);
const FRAMES_PER_ENCODING = Number(process.env.FUZZ_FRAMES ?? 1500);
const ERROR_CODES = new Set(['MALFORMED', 'UNKNOWN_MESSAGE', 'INVALID_FIELD', 'TOO_LARGE', 'RATE_LIMITED', 'PERMISSION_DENIED', 'NOT_FOUND']);
// What a fuzzed frame may legitimately end a connection with: it left (a frame became `leave`),
// an oversized frame (1009), the rate limit (1008).
const CLOSE_CODES = new Set([1000, 1005, 1008, 1009]);

/** Real ids in the fuzzer's room, so media requests reach mediasoup instead of NOT_FOUND. */
interface Ids {
  send: string;
  recv: string;
  producer: string;
  caps: string;
}

/** Valid requests of every kind but leave: the seeds that mutations start from. */
const corpus = (ids: Ids): Record<string, unknown>[] => [
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

const pick = <T>(xs: readonly T[], rnd: () => number): T => xs[Math.floor(rnd() * xs.length)]!;
const tally = <K>(m: Map<K, number>, k: K): void => void m.set(k, (m.get(k) ?? 0) + 1);
const counts = (m: Map<unknown, number>): string => JSON.stringify(Object.fromEntries(m));
/** What the server logged at error or fatal level: a handler that failed. */
const failures = (t: TestServer): string[] => t.logs.filter((l) => /"level":(50|60)/.test(l));

const WEIRD: unknown[] = [null, true, -1, 0, 2 ** 53, -(2 ** 31), 1.5, 1e308, '', 'x'.repeat(3000), '\u0000\ud800', [], [1, 'a'], {}, { id: 1 }, { __proto__: { x: 1 } }, { constructor: 1 }];

/** Replaces, drops or adds one field somewhere in a copy of `v`. */
function mutateValue(v: unknown, rnd: () => number, depth = 0): unknown {
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
function mutateBytes(b: Uint8Array, rnd: () => number): Uint8Array {
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
function fuzzFrame(enc: Encoding, seeds: Record<string, unknown>[], rnd: () => number): Uint8Array | string {
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

describe('fuzzed frames (seeded mutations of valid requests, every encoding)', () => {
  let t: TestServer;
  before(async () => {
    t = await startServer({
      signal: {
        max_frame_bytes: 16384,
        // The fuzzer is the flood: its frames must reach the decoder, not the limiter.
        rate_limit: { messages_per_s: 100000, burst: 100000, violations_before_close: 10 },
        ip_connect_limit: { per_s: 100000, burst: 100000 },
        resume_window_s: 0,
      },
    });
  });
  after(async () => {
    await t.close();
  });

  for (const [index, enc] of ENCODINGS.entries()) {
    test(`${enc}: ${FRAMES_PER_ENCODING} frames: only typed errors, no internal error, others unaffected`, async () => {
      const rnd = prng(SEED + index);
      const room = `fuzz-${enc}`;
      // Someone in another room must hear nothing of it and stay connected.
      const elsewhere = await t.client(`elsewhere-${enc}`, `quiet-${enc}`);
      const heardElsewhere: string[] = [];
      elsewhere.on('data', () => heardElsewhere.push('data'));
      elsewhere.on('relay', () => heardElsewhere.push('relay'));
      const internalBefore = await t.metric('auralink_signal_errors_total', { code: 'INTERNAL' });
      const token = t.token(`fuzzer-${enc}`, room, { roomAdmin: true, canPublish: true, canSubscribe: true, canPublishData: true, canUpdateOwnMetadata: true });
      const codes = new Map<string, number>();
      let connections = 0;
      let c: RawClient | undefined;
      let seeds: Record<string, unknown>[] = [];
      // A publisher in the room, so consume has a producer to ask for.
      const publisher = await t.client(`publisher-${enc}`, room);
      const producer = await publishAudio(publisher, 7100 + index);
      const caps = await publisher.routerCapabilities();
      let nextId = 800000;
      const ask = async (x: RawClient, body: Record<string, unknown>): Promise<ServerMessage> => {
        const id = nextId++;
        x.request({ id, ...body });
        return x.response(id);
      };
      const mediaIds = async (x: RawClient): Promise<Ids> => {
        const send = (await ask(x, { createTransport: { producing: true, sctp: true } })).response!.transport!.id;
        const recv = (await ask(x, { createTransport: { consuming: true, sctp: true } })).response!.transport!.id;
        return { send, recv, producer, caps };
      };
      const note = (m: ServerMessage): void => {
        const e = m.response?.error;
        if (e) tally(codes, e.code);
      };
      const retire = async (x: RawClient): Promise<void> => {
        for (const m of x.messages) note(m);
        if (x.closed) assert.ok(CLOSE_CODES.has(x.closed.code), `closed with ${x.closed.code} ${x.closed.reason}`);
        else x.ws.close();
      };
      for (let i = 0; i < FRAMES_PER_ENCODING; i++) {
        if (!c || c.closed) {
          if (c) await retire(c);
          c = await RawClient.open(t.url, token, enc);
          connections++;
          seeds = corpus(await mediaIds(c));
        }
        c.send(fuzzFrame(enc, seeds, rnd));
        // Now and then, a round trip: the connection is being served, not just buffered.
        if (i % 100 === 99) {
          c.request({ id: 900000 + i, ping: { timestamp: i } });
          await c.response(900000 + i).catch(() => undefined); // a fuzzed `leave` may have ended it
        }
      }
      if (c) {
        c.request({ id: 999999, ping: { timestamp: 1 } });
        await c.response(999999).catch(() => undefined);
        await retire(c);
      }

      if (process.env.FUZZ_DEBUG) console.error(enc, connections, 'connections', counts(codes));
      const unexpected = [...codes.keys()].filter((k) => !ERROR_CODES.has(k));
      assert.deepEqual(unexpected, [], `error codes: ${counts(codes)}`);
      assert.ok((codes.get('MALFORMED') ?? 0) + (codes.get('INVALID_FIELD') ?? 0) > FRAMES_PER_ENCODING / 10, `mostly refused: ${counts(codes)}`);
      assert.equal(await t.metric('auralink_signal_errors_total', { code: 'INTERNAL' }), internalBefore, 'no handler failed');
      assert.deepEqual(failures(t), [], 'nothing logged at error level');
      assert.equal(t.proc.exitCode, null, 'the server is still running');

      // The room still works for a healthy pair, and the quiet room heard nothing.
      const peer = await t.client(`peer-${enc}`, room);
      const bystander = await t.client(`bystander-${enc}`, room);
      const got = bystander.next('data');
      await peer.sendData(bytes('still here'));
      assert.equal(text((await got)[0].payload), 'still here');
      assert.deepEqual(heardElsewhere, []);
      assert.equal((await elsewhere.ping()) >= 0, true);
      await peer.leave();
      await bystander.leave();
      await elsewhere.leave();
      await publisher.leave();
    });
  }

  test('mutated access tokens (claims re-signed with the right key, and mangled strings) are refused or join, never fail', async () => {
    const rnd = prng(SEED);
    const b64 = (v: unknown): string => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');
    const sign = (header: unknown, claims: unknown): string => {
      const head = `${b64(header)}.${b64(claims)}`;
      return `${head}.${createHmac('sha256', SECRET).update(head).digest('base64url')}`;
    };
    const valid = t.token('tok-fuzz', 'tok-room', { canPublish: true, metadata: 'm' });
    const claims = JSON.parse(Buffer.from(valid.split('.')[1]!, 'base64url').toString()) as Record<string, unknown>;
    const internalBefore = await t.metric('auralink_signal_errors_total', { code: 'INTERNAL' });
    const statuses = new Map<number, number>();
    for (let i = 0; i < 300; i++) {
      let token: string;
      const r = rnd();
      if (r < 0.6) token = sign({ alg: 'HS256', typ: 'JWT' }, mutateValue(claims, rnd));
      else if (r < 0.7) token = sign(mutateValue({ alg: 'HS256', typ: 'JWT' }, rnd), claims);
      else token = Buffer.from(mutateBytes(Buffer.from(valid), rnd)).toString('latin1');
      let status = 101;
      let failure = '';
      let c: RawClient | undefined;
      try {
        c = await RawClient.open(t.url, encodeURIComponent(token), 'proto');
      } catch (err) {
        failure = (err as Error).message; // "HTTP 401", or "socket hang up" when the server gave no answer
        status = Number(/HTTP (\d+)/.exec(failure)?.[1] ?? 0);
      }
      tally(statuses, status);
      assert.ok([101, 400, 401, 403, 404].includes(status), `token ${JSON.stringify(token)} got ${status} ${failure}`);
      if (c) {
        // Accepted: it joined (the claims were still valid), or was told why not, typed.
        const m = await c.waitFor((x) => !!x.join || !!x.disconnect, 3000).catch(() => undefined);
        assert.ok(m, `accepted token ${JSON.stringify(token)} neither joined nor was told why`);
        if (c.closed) assert.notEqual(c.closed.reason, 'INTERNAL');
        c.ws.close();
      }
    }
    if (process.env.FUZZ_DEBUG) console.error('upgrade statuses', counts(statuses));
    assert.ok((statuses.get(401) ?? 0) > 100, `mostly refused: ${counts(statuses)}`);
    assert.equal(await t.metric('auralink_signal_errors_total', { code: 'INTERNAL' }), internalBefore, 'no handler failed');
    assert.deepEqual(failures(t), [], 'nothing logged at error level');
    assert.equal(t.proc.exitCode, null, 'the server is still running');
  });

  test('RoomService (Twirp) with mutated JSON and protobuf bodies: 4xx Twirp errors, never a failure', async () => {
    const rnd = prng(SEED + 7);
    const room = 'api-fuzz';
    const admin = t.token('api-admin', room, { roomAdmin: true, roomCreate: true, roomList: true });
    const member = await t.client('member', room);
    const bodies: Record<string, Record<string, unknown>> = {
      CreateRoom: { name: room, emptyTimeout: 30, maxParticipants: 10, metadata: 'm' },
      ListRooms: { names: [room] },
      ListParticipants: { room },
      GetParticipant: { room, identity: 'member' },
      MutePublishedTrack: { room, identity: 'member', trackSid: 'TR_x', muted: true },
      UpdateParticipant: { room, identity: 'member', metadata: 'x', name: 'n', permission: { canPublish: true, canPublishSources: [1, 2] } },
      UpdateSubscriptions: { room, identity: 'member', trackSids: ['TR_x'], subscribe: true },
      UpdateRoomMetadata: { room, metadata: 'meta' },
      SendData: { room, data: Buffer.from('hi').toString('base64'), kind: 0, destinationIdentities: ['member'], topic: 't' },
    };
    const methods = Object.keys(bodies);
    const statuses = new Map<number, number>();
    for (let i = 0; i < 600; i++) {
      const known = pick(methods, rnd);
      // Now and then a name every JavaScript object has.
      const method = rnd() < 0.05 ? pick(['toString', 'constructor', '__proto__', 'valueOf'], rnd) : known;
      const r = rnd();
      let body: string | Uint8Array;
      let type = 'application/json';
      if (r < 0.6) body = JSON.stringify(mutateValue(bodies[known], rnd)) ?? 'null';
      else if (r < 0.8) body = Buffer.from(mutateBytes(Buffer.from(JSON.stringify(bodies[known])), rnd)).toString('latin1');
      else {
        type = 'application/protobuf';
        body = Uint8Array.from({ length: Math.floor(rnd() * 40) }, () => Math.floor(rnd() * 256));
      }
      const res = await fetch(`${t.http}/twirp/livekit.RoomService/${method}`, {
        method: 'POST',
        headers: { 'content-type': type, authorization: `Bearer ${admin}` },
        body: body as BodyInit,
      });
      await res.arrayBuffer();
      tally(statuses, res.status);
      assert.ok(res.status < 500, `${method} ${JSON.stringify(typeof body === 'string' ? body : Buffer.from(body).toString('hex'))} got ${res.status}`);
    }
    if (process.env.FUZZ_DEBUG) console.error('twirp statuses', counts(statuses));
    assert.ok((statuses.get(200) ?? 0) > 0 && [...statuses.keys()].some((s) => s >= 400), counts(statuses));
    assert.deepEqual(failures(t), [], 'nothing logged at error level');
    await member.leave().catch(() => undefined); // it may have been removed by a fuzzed call
  });

  test('mesh API with mutated JSON bodies and node ids: 4xx, never a failure', async () => {
    const rnd = prng(SEED + 11);
    const mesh = createToken(KEY, SECRET, { identity: 'fuzz-node', video: {}, mesh: true });
    const endpoint = { identity: 'a', region: 'eu', rtts: { 'relay-1': 20 }, nat: 'cone' };
    const posts: [string, Record<string, unknown>][] = [
      ['/internal/mesh/register_node', { id: 'relay-1', role: 'relay', region: 'eu', addresses: { http: 'http://127.0.0.1:1/', turn: ['turn:127.0.0.1:3478'] }, capacity: 100, load: 0.2, version: '1' }],
      ['/internal/mesh/nodes/relay-1/heartbeat', { load: 0.5 }],
      ['/internal/mesh/route/query', { from: endpoint, to: { ...endpoint, identity: 'b' }, participants: 2, policy: 'auto' }],
      ['/internal/mesh/route/feedback', { tier: 'p2p', path: ['relay-1'], metrics: { latencyMs: 20, lossPct: 1, jitterMs: 2, hops: 1, maxLoad: 0.3 }, observedQuality: 80, connected: true }],
      ['/internal/mesh/links', { links: [{ from: 'relay-1', to: 'relay-2', latencyMs: 5, lossPct: 0, jitterMs: 1, bandwidthKbps: 1000 }] }],
      ['/internal/mesh/nodes/relay-1/report', { reason: 'spam' }],
    ];
    const statuses = new Map<number, number>();
    for (let i = 0; i < 400; i++) {
      const [path, body] = pick(posts, rnd);
      const r = rnd();
      const url = r < 0.1 ? path.replace('relay-1', pick(['__proto__', 'constructor', '%00', 'x'.repeat(300)], rnd)) : path;
      const text = r < 0.7 ? (JSON.stringify(mutateValue(body, rnd)) ?? 'null') : Buffer.from(mutateBytes(Buffer.from(JSON.stringify(body)), rnd)).toString('latin1');
      const res = await fetch(`${t.http}${url}`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${mesh}` }, body: text });
      await res.arrayBuffer();
      tally(statuses, res.status);
      assert.ok(res.status < 500, `${url} ${text} got ${res.status}`);
    }
    if (process.env.FUZZ_DEBUG) console.error('mesh statuses', counts(statuses));
    assert.ok((statuses.get(200) ?? 0) > 0 && (statuses.get(400) ?? 0) > 0, counts(statuses));
    const nodes = (await (await fetch(`${t.http}/internal/mesh/nodes`, { headers: { authorization: `Bearer ${mesh}` } })).json()) as { nodes: unknown[] };
    assert.ok(Array.isArray(nodes.nodes), 'the registry still lists');
    assert.deepEqual(failures(t), [], 'nothing logged at error level');
  });

  test('embedded TURN: random and mangled STUN datagrams are dropped; binding requests are still answered', async () => {
    const rnd = prng(SEED + 13);
    const port = t.config.turn.port as number;
    const sock = dgram.createSocket('udp4');
    const send = (b: Uint8Array): Promise<void> => new Promise((r) => sock.send(b, port, '127.0.0.1', () => r()));
    const stun = (method: number, attrs: Uint8Array): Buffer => {
      const h = Buffer.alloc(20);
      h.writeUInt16BE(method, 0);
      h.writeUInt16BE(attrs.length, 2);
      h.writeUInt32BE(0x2112a442, 4);
      for (let i = 8; i < 20; i++) h[i] = Math.floor(rnd() * 256);
      return Buffer.concat([h, attrs]);
    };
    // Attribute types node-turn parses (and some it does not), with lengths that lie.
    const TYPES = [0x0001, 0x0006, 0x0008, 0x0009, 0x000c, 0x0012, 0x0013, 0x0014, 0x0015, 0x0016, 0x0018, 0x0019, 0x001a, 0x0020, 0x0022, 0x8028, 0x0024, 0x0025, 0x8022, 0xc057];
    const METHODS = [0x0001, 0x0003, 0x0004, 0x0008, 0x0009, 0x0016, 0x0017, 0x0111];
    for (let i = 0; i < 3000; i++) {
      const attrs = Buffer.from(Array.from({ length: Math.floor(rnd() * 48) }, () => Math.floor(rnd() * 256)));
      if (attrs.length >= 4) {
        attrs.writeUInt16BE(pick(TYPES, rnd), 0);
        attrs.writeUInt16BE(Math.floor(rnd() * attrs.length), 2);
      }
      const r = rnd();
      await send(r < 0.2 ? attrs : r < 0.9 ? stun(pick(METHODS, rnd), attrs) : mutateBytes(stun(0x0001, attrs), rnd));
    }
    // The server may still be working through the fuzz (and UDP may drop): ask as a client
    // would, retransmitting, and match the answer to the transaction.
    let reply: Buffer | undefined;
    for (let attempt = 0; attempt < 20 && !reply; attempt++) {
      const binding = stun(0x0001, new Uint8Array(0));
      reply = await new Promise<Buffer | undefined>((resolve) => {
        const onMessage = (m: Buffer): void => {
          if (m.length < 20 || !m.subarray(8, 20).equals(binding.subarray(8, 20))) return;
          clearTimeout(timer);
          sock.off('message', onMessage);
          resolve(m);
        };
        const timer = setTimeout(() => {
          sock.off('message', onMessage);
          resolve(undefined);
        }, 250);
        sock.on('message', onMessage);
        void send(binding);
      });
    }
    sock.close();
    assert.ok(reply, 'a binding request is answered after the fuzz');
    assert.equal(reply.readUInt16BE(0), 0x0101, 'a Binding success response');
    assert.equal(t.proc.exitCode, null);
    assert.deepEqual(failures(t), [], 'nothing logged at error level');
  });
});
