import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { after, before, describe, test } from 'node:test';
import type { SignalClient } from '../src/client/signalClient.js';
import type { Handler, HandlerTable } from '../src/signal/handlers.js';
import { OK, RESPONSE_FIELD } from '../src/signal/rpc.js';
import { REQUEST_KINDS } from '../src/signal/schema.js';
import { eventually, RawClient, sleep, startServer, type TestServer } from './helpers.js';
import { subscribe } from './media.js';

// The seams the node is built on: one typed handler table, one request→response map, one
// delivery port that every reliable message goes through (replayed on resume) and that
// encodes room-wide lossy events once per encoding.

describe('handler table and RPC map (compile-time)', () => {
  test('a table without a handler for every kind, or a handler answering in the wrong field, does not compile', () => {
    // These lines are checked by tsc when the tests are built: if HandlerTable stopped
    // requiring every kind (or Handler<K> its response type), the @ts-expect-error lines
    // would be unused and the build would fail.
    const partial = {} as Omit<HandlerTable, 'ping'>;
    // @ts-expect-error a table missing 'ping' is not a HandlerTable
    const missing: HandlerTable = partial;
    // @ts-expect-error ping is answered in `pong`, not `ok`
    const wrong: Handler<'ping'> = () => OK;
    const right: Handler<'ping'> = () => ({ pong: { timestamp: 0, serverTime: 0 } });
    void missing;
    void wrong;
    assert.equal(typeof right, 'function');
  });

  test('every request kind the schema accepts has exactly one response field', () => {
    assert.deepEqual(Object.keys(RESPONSE_FIELD).sort(), [...REQUEST_KINDS].sort());
  });
});

// RTP with the RFC 6464 audio level (one-byte extension id 1): what the observers read.
function rtpWithLevel(seq: number, ssrc: number, dBov: number): Buffer {
  const pkt = Buffer.alloc(12 + 8 + 20, 0);
  pkt[0] = 0x90; // V=2, X=1
  pkt[1] = 111;
  pkt.writeUInt16BE(seq & 0xffff, 2);
  pkt.writeUInt32BE((960 * seq) >>> 0, 4);
  pkt.writeUInt32BE(ssrc, 8);
  pkt.writeUInt16BE(0xbede, 12);
  pkt.writeUInt16BE(1, 14); // one 32-bit word of extensions
  pkt[16] = (1 << 4) | 0; // id 1, length 1
  pkt[17] = 0x80 | dBov; // voice activity + level
  pkt.fill(0x55, 20);
  return pkt;
}

const opusWithLevel = (ssrc: number): string =>
  JSON.stringify({
    codecs: [{ mimeType: 'audio/opus', payloadType: 111, clockRate: 48000, channels: 2, rtcpFeedback: [] }],
    headerExtensions: [{ uri: 'urn:ietf:params:rtp-hdrext:ssrc-audio-level', id: 1 }],
    encodings: [{ ssrc }],
    rtcp: { cname: `l${ssrc}` },
  });

describe('delivery port', () => {
  let t: TestServer;
  before(async () => {
    t = await startServer({ sfu: { allow_plain_transports: true, audio_level_interval_ms: 100 }, signal: { resume_window_s: 30 } });
  });
  after(async () => {
    await t.close();
  });

  test('a consumerClosed sent while the subscriber is inside its resume window is replayed on resume', async () => {
    const pub = await t.client('pub', 'replay');
    const sub = await t.client('sub', 'replay');
    const send = (await pub.request('createTransport', { producing: true, plain: true })).transport.id;
    const audio = (await pub.request('produce', { transportId: send, kind: 'audio', rtpParameters: opusWithLevel(7100) })).id;
    await eventually(() => sub.producers.has(audio), 3000, 'producerAdded');
    const consumerId = await subscribe(sub, audio);
    const token = sub.join.resumeToken;
    const lastSeq = sub.lastSeq;
    sub.close(); // no Leave: the server keeps the session for the resume window
    await eventually(async () => (await t.health()).connections === 1, 3000, 'subscriber disconnected');
    await pub.request('closeProducer', { producerId: audio });
    await sleep(100);
    const back = await RawClient.open(t.url, t.token('sub', 'replay'), 'proto', `&resume=${encodeURIComponent(token)}&last_seq=${lastSeq}`);
    const join = await back.waitFor((m) => m.join !== undefined);
    assert.equal(join.join!.resumed, true);
    const closed = await back.waitFor((m) => m.consumerClosed !== undefined);
    assert.equal(closed.consumerClosed!.consumerId, consumerId);
    assert.equal(closed.consumerClosed!.reason, 'producerclose');
    assert.ok((closed.seq ?? 0) > lastSeq, 'numbered in the room sequence');
    back.request({ id: 1, leave: {} });
    await back.waitClosed();
    await pub.leave();
  });

  test('active speaker and audio levels are encoded once per encoding in use, not once per participant', async () => {
    const room = 'speakers';
    const speaker = await t.client('speaker', room);
    const listeners: SignalClient[] = [];
    for (let i = 0; i < 3; i++) listeners.push(await t.client(`proto-${i}`, room));
    const jsonListener = await t.client('json-0', room, { encoding: 'json' });
    const all = [speaker, ...listeners, jsonListener];
    const counts = new Map<SignalClient, { speaker: number; levels: number }>(all.map((c) => [c, { speaker: 0, levels: 0 }]));
    for (const c of all) {
      c.on('activeSpeaker', () => counts.get(c)!.speaker++);
      c.on('audioLevels', () => counts.get(c)!.levels++);
    }
    const out = (type: string, encoding: string): Promise<number> => t.metric('auralink_signal_messages_out_total', { type, encoding });
    const before = { speaker: await out('activeSpeaker', 'proto'), levels: await out('audioLevels', 'proto'), json: await out('audioLevels', 'json') };
    const send = (await speaker.request('createTransport', { producing: true, plain: true })).transport;
    await speaker.request('produce', { transportId: send.id, kind: 'audio', rtpParameters: opusWithLevel(7200) });
    const sock = createSocket('udp4');
    for (let i = 0; i < 150; i++) {
      sock.send(rtpWithLevel(i, 7200, 10), send.plainPort!, send.plainIp!);
      await sleep(10);
    }
    await eventually(() => listeners.every((c) => counts.get(c)!.speaker >= 1 && counts.get(c)!.levels >= 2), 5000, 'speaker and levels heard');
    sock.close();
    await sleep(300); // the last interval's events reach everyone
    const proto = listeners.map((c) => counts.get(c)!);
    const speakerEncodes = (await out('activeSpeaker', 'proto')) - before.speaker;
    const levelEncodes = (await out('audioLevels', 'proto')) - before.levels;
    // Four proto clients (the speaker and three listeners) heard each event; it was encoded once.
    assert.equal(speakerEncodes, counts.get(speaker)!.speaker);
    assert.ok(proto.every((c) => c.speaker === speakerEncodes), `each proto client heard every active-speaker event: ${JSON.stringify(proto)} vs ${speakerEncodes}`);
    assert.ok(levelEncodes > 0);
    assert.ok(proto.every((c) => Math.abs(c.levels - levelEncodes) <= 1), `audio levels encoded once per event: ${JSON.stringify(proto)} vs ${levelEncodes}`);
    assert.ok(Math.abs((await out('audioLevels', 'json')) - before.json - counts.get(jsonListener)!.levels) <= 1, 'and once for json');
    for (const c of all) await c.leave();
  });
});
