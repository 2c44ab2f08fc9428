import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createHmac } from 'node:crypto';
import dgram from 'node:dgram';
import type { ServerMessage } from '../src/signal/messages.js';
import { createToken } from '../src/auth/token.js';
import { bytes, ENCODINGS, KEY, prng, RawClient, SECRET, startServer, text, type TestServer } from './helpers.js';
import { publishAudio } from './media.js';
import { corpus, counts, fuzzFrame, fuzzStun, MESH_POSTS, mutateBytes, mutateValue, pick, stunMessage, tally, twirpBodies, type Ids } from './fuzzers.js';

// Seeded, so a failure is reproducible: FUZZ_SEED=<n> npm test.
const SEED = Number(process.env.FUZZ_SEED ?? 20261122);
const FRAMES_PER_ENCODING = Number(process.env.FUZZ_FRAMES ?? 1500);
const ERROR_CODES = new Set(['MALFORMED', 'UNKNOWN_MESSAGE', 'INVALID_FIELD', 'TOO_LARGE', 'RATE_LIMITED', 'PERMISSION_DENIED', 'NOT_FOUND']);
// What a fuzzed frame may legitimately end a connection with: it left (a frame became `leave`),
// an oversized frame (1009), the rate limit (1008).
const CLOSE_CODES = new Set([1000, 1005, 1008, 1009]);

/** What the server logged at error or fatal level: a handler that failed. */
const failures = (t: TestServer): string[] => t.logs.filter((l) => /"level":(50|60)/.test(l));

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
    const bodies = twirpBodies(room);
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
    const posts = MESH_POSTS;
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
    const stun = (method: number, attrs: Uint8Array): Buffer => stunMessage(method, attrs, rnd);
    for (let i = 0; i < 3000; i++) await send(fuzzStun(rnd));
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
