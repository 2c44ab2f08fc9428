import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { after, before, describe, test } from 'node:test';
import type { SignalClient } from '../src/client/signalClient.js';
import type { ProducerInfo } from '../src/signal/messages.js';
import { eventually, sleep, startServer, type TestServer } from './helpers.js';
import { DTLS, opus, transport } from './media.js';

// The SFU through the signalling API, as a client SDK drives it. No media flows here (no
// WebRTC stack in these tests): they check the control plane, permissions, events and that
// mediasoup's own object counts return to zero.

const vp8Simulcast = (ssrc: number): string =>
  JSON.stringify({
    codecs: [
      { mimeType: 'video/VP8', payloadType: 96, clockRate: 90000, rtcpFeedback: [{ type: 'nack' }, { type: 'nack', parameter: 'pli' }] },
      { mimeType: 'video/rtx', payloadType: 97, clockRate: 90000, parameters: { apt: 96 } },
    ],
    headerExtensions: [],
    encodings: [0, 1, 2].map((i) => ({ ssrc: ssrc + i, rtx: { ssrc: ssrc + 10 + i }, scaleResolutionDownBy: 4 / 2 ** i })),
    rtcp: { cname: `v${ssrc}` },
  });

const caps = (c: SignalClient): Promise<string> => c.routerCapabilities();

async function objects(t: TestServer): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const type of ['router', 'transport', 'producer', 'consumer']) out[type] = await t.metric('auralink_sfu_objects', { type });
  return out;
}

describe('SFU control plane', () => {
  let t: TestServer;
  before(async () => {
    t = await startServer({ room: { empty_timeout_s: 0.2 } });
  });
  after(async () => {
    await t.close();
  });

  test('getRouterCapabilities answers the router RTP capabilities (the join does not carry them); transports use the worker WebRtcServer port', async () => {
    const a = await t.client('cap-a', 'caps');
    assert.ok(!('routerRtpCapabilities' in a.join), 'not in every join: 5 KB each');
    const rc = JSON.parse(await caps(a)) as { codecs: { mimeType: string }[] };
    const mimes = rc.codecs.map((c) => c.mimeType);
    for (const m of ['audio/opus', 'video/VP8', 'video/VP9', 'video/H264', 'video/rtx']) assert.ok(mimes.includes(m), m);
    const tr = await transport(a, 'producing');
    const cands = JSON.parse(tr.iceCandidates) as { protocol: string; port: number; ip: string }[];
    const h = await t.health();
    const port = (h as unknown as { sfu: unknown }).sfu && cands[0]!.port;
    assert.ok(cands.some((c) => c.protocol === 'udp') && cands.some((c) => c.protocol === 'tcp'));
    assert.ok(cands.every((c) => c.port === port), 'all candidates on the one WebRtcServer port');
    assert.ok(JSON.parse(tr.dtlsParameters).fingerprints.length > 0);
    await a.leave();
  });

  test('publish, subscribe, pause, resume, layers, priority, stats, close: with the events subscribers need', async () => {
    await eventually(async () => (await objects(t)).router === 0, 3000, 'earlier rooms closed');
    const pub = await t.client('pub', 'media');
    const early = await t.client('early', 'media');
    const send = await transport(pub, 'producing');
    const added = early.next('producerAdded');
    const audioId = (await pub.request('produce', { transportId: send.id, kind: 'audio', rtpParameters: opus(1111) })).id!;
    const videoId = (await pub.request('produce', { transportId: send.id, kind: 'video', rtpParameters: vp8Simulcast(2000), source: 'camera' })).id!;
    const [pa] = await added;
    assert.deepEqual({ ...pa, producerId: undefined } as Partial<ProducerInfo>, {
      producerId: undefined, participantSid: pub.me.sid, participantIdentity: 'pub', kind: 'audio', source: 'microphone', paused: false,
    } as Partial<ProducerInfo>);
    // Someone joining later learns the existing producers.
    const late = await t.client('late', 'media');
    await eventually(() => late.producers.size === 2, 3000, 'late joiner sees producers');
    assert.deepEqual([...late.producers.keys()].sort(), [audioId, videoId].sort());
    assert.equal(late.producers.get(videoId)!.source, 'camera');

    const recv = await transport(early, 'consuming');
    const c = (await early.request('consume', { producerId: videoId, transportId: recv.id, rtpCapabilities: await caps(early) })).consumer!;
    assert.equal(c.producerId, videoId);
    assert.equal(c.participantIdentity, 'pub');
    assert.equal(c.source, 'camera');
    assert.equal(c.type, 'simulcast');
    assert.ok(JSON.parse(c.rtpParameters).codecs.length > 0);
    await early.request('resumeConsumer', { consumerId: c.id });
    await early.request('setPreferredLayers', { consumerId: c.id, spatialLayer: 1, temporalLayer: 0 });
    await early.request('setPriority', { consumerId: c.id, priority: 2 });
    const stats = JSON.parse((await pub.request('getStats', { id: videoId })).json!) as unknown[];
    assert.ok(Array.isArray(stats));
    const ice = JSON.parse((await early.request('restartIce', { transportId: recv.id })).json!) as { usernameFragment: string };
    assert.ok(ice.usernameFragment);

    const paused = early.next('consumerPaused');
    await pub.request('pauseProducer', { producerId: videoId });
    assert.deepEqual((await paused)[0], { consumerId: c.id, reason: 'producer' });
    const resumed = early.next('consumerResumed');
    await pub.request('resumeProducer', { producerId: videoId });
    assert.equal((await resumed)[0].consumerId, c.id);

    assert.deepEqual(await objects(t), { router: 1, transport: 2, producer: 2, consumer: 1 });
    const closed = early.next('consumerClosed');
    const removed = late.next('producerRemoved');
    await pub.request('closeProducer', { producerId: videoId });
    assert.deepEqual((await closed)[0], { consumerId: c.id, reason: 'producerclose' });
    assert.equal((await removed)[0].producerId, videoId);
    assert.deepEqual(await objects(t), { router: 1, transport: 2, producer: 1, consumer: 0 });

    // Leaving closes the leaver's media; the last one out closes the room's router.
    const gone = late.next('producerRemoved');
    await pub.leave();
    assert.equal((await gone)[0].producerId, audioId);
    await early.leave();
    await late.leave();
    await eventually(async () => (await objects(t)).router === 0, 3000, 'router closed with the room');
    assert.deepEqual(await objects(t), { router: 0, transport: 0, producer: 0, consumer: 0 });
  });

  test('SCTP data producers and consumers', async () => {
    const a = await t.client('dpub', 'data-room');
    const b = await t.client('dsub', 'data-room');
    const send = await transport(a, 'producing', true);
    assert.ok(send.sctpParameters);
    const added = b.next('producerAdded');
    const dpId = (await a.request('produceData', { transportId: send.id, sctpStreamParameters: JSON.stringify({ streamId: 1, ordered: true }), label: 'chat' })).id!;
    const [info] = await added;
    assert.equal(info.kind, 'data');
    const recv = await transport(b, 'consuming', true);
    const dc = (await b.request('consumeData', { dataProducerId: dpId, transportId: recv.id })).dataConsumer!;
    assert.equal(dc.dataProducerId, dpId);
    assert.equal(dc.label, 'chat');
    assert.ok(JSON.parse(dc.sctpStreamParameters).streamId >= 0);
    await a.leave();
    await b.leave();
  });

  test('without the SFU, getRouterCapabilities is a typed error and the session goes on', async () => {
    const t2 = await startServer({ sfu: { enabled: false } });
    try {
      const c = await t2.client('x', 'r');
      await assert.rejects(c.routerCapabilities(), { code: 'UNKNOWN_MESSAGE' });
      assert.ok((await c.request('ping', { timestamp: 1 })).pong);
    } finally {
      await t2.close();
    }
  });

  test('router codecs come from config', async () => {
    const t2 = await startServer({ sfu: { codecs: ['opus', 'H264'] } });
    try {
      const c = await t2.client('x', 'r');
      const mimes = (JSON.parse(await caps(c)) as { codecs: { mimeType: string }[] }).codecs.map((x) => x.mimeType);
      assert.ok(mimes.includes('video/H264') && mimes.includes('audio/opus'));
      assert.ok(!mimes.includes('video/VP8') && !mimes.includes('video/VP9'));
    } finally {
      await t2.close();
    }
  });

  test('grants are enforced: canPublish, canPublishSources, canSubscribe, canPublishData', async () => {
    const viewer = await t.client('viewer', 'perm', { grant: { canPublish: false, canPublishData: false } });
    await assert.rejects(viewer.request('createTransport', { producing: true }), { code: 'PERMISSION_DENIED' });
    const micOnly = await t.client('mic-only', 'perm', { grant: { canPublishSources: ['microphone'] } as never });
    const send = await transport(micOnly, 'producing', true);
    await assert.rejects(micOnly.request('produce', { transportId: send.id, kind: 'video', rtpParameters: vp8Simulcast(5000) }), {
      code: 'PERMISSION_DENIED',
      field: 'produce.source',
    });
    const micId = (await micOnly.request('produce', { transportId: send.id, kind: 'audio', rtpParameters: opus(6000) })).id!;
    const blind = await t.client('blind', 'perm', { grant: { canSubscribe: false } });
    await assert.rejects(blind.request('createTransport', { consuming: true }), { code: 'PERMISSION_DENIED' });
    await assert.rejects(blind.request('consume', { producerId: micId, transportId: 'x', rtpCapabilities: await caps(blind) }), { code: 'PERMISSION_DENIED' });
    await assert.rejects(viewer.request('produceData', { transportId: send.id, sctpStreamParameters: '{}' }), { code: 'PERMISSION_DENIED' });
    for (const c of [viewer, micOnly, blind]) await c.leave();
  });

  test('bad media requests get typed errors and change nothing', async () => {
    const a = await t.client('bad-a', 'bad-media');
    const b = await t.client('bad-b', 'bad-media');
    await assert.rejects(a.request('createTransport', {}), { code: 'INVALID_FIELD', field: 'createTransport' });
    await assert.rejects(a.request('connectTransport', { transportId: 'nope', dtlsParameters: DTLS }), { code: 'NOT_FOUND' });
    const send = await transport(a, 'producing');
    await assert.rejects(a.request('connectTransport', { transportId: send.id, dtlsParameters: DTLS }), { code: 'INVALID_FIELD' });
    await assert.rejects(a.request('produce', { transportId: send.id, kind: 'audio', rtpParameters: '{not json' }), {
      code: 'INVALID_FIELD',
      field: 'produce.rtpParameters',
    });
    await assert.rejects(a.request('produce', { transportId: send.id, kind: 'audio', rtpParameters: '{"codecs":[]}' }), {
      code: 'INVALID_FIELD',
      field: 'produce.rtpParameters',
    });
    const id = (await a.request('produce', { transportId: send.id, kind: 'audio', rtpParameters: opus(7000) })).id!;
    // Refused by the worker itself (these were INTERNAL): an ssrc already in use, RIDs twice.
    await assert.rejects(a.request('produce', { transportId: send.id, kind: 'audio', rtpParameters: opus(7000) }), {
      code: 'INVALID_FIELD',
      field: 'produce.rtpParameters',
    });
    const vp8 = (encodings: object[]): string =>
      JSON.stringify({ codecs: [{ mimeType: 'video/VP8', payloadType: 96, clockRate: 90000, parameters: {}, rtcpFeedback: [] }], encodings });
    await assert.rejects(a.request('produce', { transportId: send.id, kind: 'video', rtpParameters: vp8([{ rid: 'r0' }, { rid: 'r0' }]) }), {
      code: 'INVALID_FIELD',
      field: 'produce.rtpParameters',
    });
    // Someone else's ids are not yours.
    await assert.rejects(b.request('closeProducer', { producerId: id }), { code: 'NOT_FOUND' });
    await assert.rejects(b.request('consume', { producerId: id, transportId: send.id, rtpCapabilities: await caps(b) }), { code: 'NOT_FOUND', field: 'consume.transportId' });
    const recv = await transport(b, 'consuming');
    await assert.rejects(b.request('consume', { producerId: id, transportId: recv.id, rtpCapabilities: '{"codecs":[]}' }), {
      code: 'INVALID_FIELD',
      field: 'consume.rtpCapabilities',
    });
    await assert.rejects(a.request('consume', { producerId: id, transportId: send.id, rtpCapabilities: await caps(a) }), { code: 'INVALID_FIELD' });
    // Still working afterwards.
    const c = (await b.request('consume', { producerId: id, transportId: recv.id, rtpCapabilities: await caps(b) })).consumer!;
    assert.equal(c.kind, 'audio');
    await a.leave();
    await b.leave();
  });
});

describe('SFU across workers', () => {
  let t: TestServer;
  before(async () => {
    t = await startServer({ sfu: { workers: 2, max_consumers_per_router: 1 }, room: { empty_timeout_s: 0.2 } });
  });
  after(async () => {
    await t.close();
  });

  test('past the per-router consumer limit, subscribers are served from a router on another worker', async () => {
    const pub = await t.client('p', 'big');
    const send = await transport(pub, 'producing');
    const id = (await pub.request('produce', { transportId: send.id, kind: 'audio', rtpParameters: opus(8000) })).id!;
    const subs = [await t.client('s1', 'big'), await t.client('s2', 'big'), await t.client('s3', 'big')];
    for (const s of subs) {
      const recv = await transport(s, 'consuming');
      const c = (await s.request('consume', { producerId: id, transportId: recv.id, rtpCapabilities: await caps(s) })).consumer!;
      assert.equal(c.producerId, id);
    }
    const h = await t.health();
    const routers = h.sfu!.workers.map((w) => w.routers);
    assert.deepEqual([...routers].sort(), [1, 1], 'the room spans both workers');
    assert.equal(h.sfu!.workers.reduce((n, w) => n + w.consumers, 0), 3);
    // New producers reach the overflow router too.
    const pub2Send = await transport(subs[0]!, 'producing');
    const id2 = (await subs[0]!.request('produce', { transportId: pub2Send.id, kind: 'audio', rtpParameters: opus(9000) })).id!;
    const recv3 = await transport(subs[2]!, 'consuming');
    const c2 = (await subs[2]!.request('consume', { producerId: id2, transportId: recv3.id, rtpCapabilities: await caps(subs[2]!) })).consumer!;
    assert.equal(c2.producerId, id2);
    for (const c of [pub, ...subs]) await c.leave();
    await eventually(async () => (await objects(t)).router === 0, 3000, 'all routers closed');
  });

  test('a worker that dies is replaced; its rooms are told to rebuild media, other rooms are untouched', async () => {
    const a = await t.client('a', 'room-a');
    const b = await t.client('b', 'room-b');
    const ta = await transport(a, 'producing');
    const tb = await transport(b, 'producing');
    const h = await t.health();
    assert.deepEqual(h.sfu!.workers.map((w) => w.routers), [1, 1], 'one room per worker');
    const victim = h.sfu!.workers[0]!.pid;
    const resets: SignalClient[] = [];
    a.on('mediaReset', () => resets.push(a));
    b.on('mediaReset', () => resets.push(b));
    process.kill(victim, 'SIGKILL');
    // /metrics answers while the dead worker's rooms wait to be rebuilt (its routers' dumps fail).
    const scrapes: number[] = [];
    while (resets.length === 0 && scrapes.length < 200) scrapes.push((await fetch(`${t.http}/metrics`)).status);
    assert.deepEqual([...new Set(scrapes)], [200], 'every /metrics scrape after the kill answered 200');
    await eventually(() => resets.length === 1, 5000, 'mediaReset');
    await eventually(async () => {
      const w = (await t.health()).sfu!.workers;
      return w.length === 2 && !w.some((x) => x.pid === victim);
    }, 5000, 'worker replaced');
    await sleep(200);
    assert.equal(resets.length, 1, 'only the room on the dead worker was reset');
    const [hit, spared] = resets[0] === a ? [a, b] : [b, a];
    const sparedTransport = spared === a ? ta : tb;
    const hitTransport = hit === a ? ta : tb;
    // The reset room's old transport is gone; it can build media again on a new router.
    await assert.rejects(hit.request('produce', { transportId: hitTransport.id, kind: 'audio', rtpParameters: opus(1) }), { code: 'NOT_FOUND' });
    const fresh = await transport(hit, 'producing');
    assert.ok((await hit.request('produce', { transportId: fresh.id, kind: 'audio', rtpParameters: opus(2) })).id);
    // The other room's transport, made before the crash, still works.
    assert.ok((await spared.request('produce', { transportId: sparedTransport.id, kind: 'audio', rtpParameters: opus(3) })).id);
    await a.leave();
    await b.leave();
  });
});

describe('SFU forwarding RTP (plain transports)', () => {
  let t: TestServer;
  before(async () => {
    t = await startServer({ sfu: { allow_plain_transports: true } });
  });
  after(async () => {
    await t.close();
  });

  test('RTP sent by one participant arrives at the other, rewritten to the consumer ssrc', async () => {
    const a = await t.client('rtp-a', 'rtp');
    const b = await t.client('rtp-b', 'rtp');
    const send = (await a.request('createTransport', { producing: true, plain: true })).transport!;
    const producerId = (await a.request('produce', { transportId: send.id, kind: 'audio', rtpParameters: opus(4242) })).id!;
    const sock = createSocket('udp4');
    const got: Buffer[] = [];
    sock.on('message', (m) => got.push(m));
    await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
    const recv = (await b.request('createTransport', { consuming: true, plain: true })).transport!;
    await b.request('connectTransport', { transportId: recv.id, plainIp: '127.0.0.1', plainPort: sock.address().port });
    const c = (await b.request('consume', { producerId, transportId: recv.id, rtpCapabilities: await caps(b) })).consumer!;
    await b.request('resumeConsumer', { consumerId: c.id });
    const consumerSsrc = (JSON.parse(c.rtpParameters) as { encodings: { ssrc: number }[] }).encodings[0]!.ssrc;
    const src = createSocket('udp4');
    for (let i = 0; i < 20; i++) {
      const pkt = Buffer.alloc(12 + 40, 7);
      pkt[0] = 0x80;
      pkt[1] = 111;
      pkt.writeUInt16BE(100 + i, 2);
      pkt.writeUInt32BE(960 * i, 4);
      pkt.writeUInt32BE(4242, 8);
      src.send(pkt, send.plainPort!, send.plainIp!);
      await sleep(10);
    }
    await eventually(() => got.filter((m) => (m[1]! & 0x7f) < 72 || (m[1]! & 0x7f) > 76).length >= 15, 3000, 'RTP forwarded');
    const rtp = got.filter((m) => (m[1]! & 0x7f) < 72 || (m[1]! & 0x7f) > 76); // not RTCP
    assert.ok(rtp.every((m) => m.readUInt32BE(8) === consumerSsrc), 'forwarded with the consumer ssrc');
    // mediasoup may add header extensions: the payload starts after them.
    const payload = (m: Buffer): Buffer => {
      let off = 12 + (m[0]! & 0x0f) * 4;
      if (m[0]! & 0x10) off += 4 + m.readUInt16BE(off + 2) * 4;
      return m.subarray(off);
    };
    assert.deepEqual(payload(rtp[0]!), Buffer.alloc(40, 7), 'payload intact');
    sock.close();
    src.close();
    await a.leave();
    await b.leave();
  });

  test("media ports used up: createTransport is UNAVAILABLE (retry later), not INTERNAL, and nothing is logged as an error", async () => {
    // Two ports in the range: the third transport finds none (mediasoup: "no more available ports").
    // Below the blocks startServer picks from (20000+): this server's own media ports.
    const base = 17000 + Math.floor(Math.random() * 100) * 20;
    const t3 = await startServer({ sfu: { allow_plain_transports: true, webrtc_port: base, rtc_min_port: base + 4, rtc_max_port: base + 5 } });
    try {
      const a = await t3.client('ports', 'r');
      for (let i = 0; i < 2; i++) await a.request('createTransport', { consuming: true, plain: true });
      await assert.rejects(a.request('createTransport', { consuming: true, plain: true }), { code: 'UNAVAILABLE', field: 'createTransport' });
      assert.ok(!t3.logs.some((l) => l.includes('"level":50')), 'no error-level log');
      assert.equal((await a.listParticipants()).length, 1, 'the session goes on');
    } finally {
      await t3.close();
    }
  });

  test('plain transports stay refused where the server does not allow them', async () => {
    const t2 = await startServer();
    try {
      const a = await t2.client('p', 'r');
      await assert.rejects(a.request('createTransport', { producing: true, plain: true }), { code: 'PERMISSION_DENIED', field: 'createTransport.plain' });
    } finally {
      await t2.close();
    }
  });
});

describe('media errors (no sockets)', () => {
  test("mediasoup's worker-gone and no-ports errors are UNAVAILABLE, argument errors INVALID_FIELD, the rest thrown as they are", async () => {
    const { media } = await import('../src/sfu/mediaErrors.js');
    const named = (name: string, message: string): Error => Object.assign(new Error(message), { name });
    const cases: [Error, string | undefined][] = [
      [named('InvalidStateError', 'Channel closed'), 'UNAVAILABLE'],
      [new Error('Channel request handler with ID 153b49d7-6816 not found [method:consumer.resume]'), 'UNAVAILABLE'],
      [new Error("no more available ports [protocol:udp, ip:'127.0.0.1', numAttempt:2] [method:router.createPlainTransport]"), 'UNAVAILABLE'],
      [new TypeError('missing rtpParameters'), 'INVALID_FIELD'],
      [new Error('ssrc already exists in RTP listener [method:transport.produce]'), 'INVALID_FIELD'],
      [new Error('something else'), undefined],
    ];
    for (const [err, code] of cases) {
      await assert.rejects(media('f', () => Promise.reject(err)), (e: { code?: string; field?: string }) => e.code === code && (code === undefined || e.field === 'f'));
    }
  });
});
