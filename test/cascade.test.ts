import type { Socket } from 'node:dgram';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { eventually, sleep, startServer, type TestServer } from './helpers.js';
import { opus, publishAudio, transport } from './media.js';
import { closingSubscribers, plainSubscriber, rtpSource, type PlainSubscriber } from './plainRtp.js';
import { edgeConfig } from './clusterNode.js';
import { PrivateRedis } from './redis.js';

// Media across nodes: a track published on node 1 reaches subscribers on node 2 through one
// pipe transport pair (SRTP), each producer crossing once, pause/resume/close carried, and
// nothing left on either node afterwards. Real processes on loopback, plain-RTP clients.

const redis = new PrivateRedis();
before(() => redis.start());
after(() => redis.dispose());

const sub = closingSubscribers();

const nodeCfg = (p: string, id: string) =>
  edgeConfig(redis.url, p, id, { sfu: { allow_plain_transports: true, cascade_linger_ms: 300 }, room: { empty_timeout_s: 0.2 } });

const objects = async (t: TestServer): Promise<Record<string, number>> => {
  const out: Record<string, number> = {};
  for (const type of ['transport', 'producer', 'consumer']) out[type] = await t.metric('auralink_sfu_objects', { type });
  return out;
};

describe('a track published on one node, subscribed on another', () => {
  const p = `test:cas:${randomUUID().slice(0, 8)}:`;
  let a: TestServer;
  let b: TestServer;
  before(async () => {
    [a, b] = await Promise.all([startServer(nodeCfg(p, 'cas-1')), startServer(nodeCfg(p, 'cas-2'))]);
  });
  after(async () => {
    await Promise.all([a.close(), b.close()]);
  });

  test('RTP flows across the pipe; each producer crosses once; pause, resume and close reach the far subscribers; nothing is left', async () => {
    const alice = await a.client('alice', 'rc');
    const bob = await b.client('bob', 'rc');
    const send = (await alice.request('createTransport', { producing: true, plain: true })).transport!;
    const announced = bob.next('producerAdded');
    const producerId = (await alice.request('produce', { transportId: send.id, kind: 'audio', rtpParameters: opus(7777) })).id!;
    const [added] = await announced;
    assert.equal(added.producerId, producerId, 'bob on node 2 is told of the producer on node 1');
    assert.equal(added.participantIdentity, 'alice');
    const src = rtpSource(send.plainIp!, send.plainPort!, 7777);
    try {
      const s1 = await sub(bob, producerId);
      await eventually(() => s1.got.length >= 20, 5000, 'RTP from node 1 at bob on node 2');
      // A newcomer on node 2 learns the producer from node 1 and shares the piped one.
      const carol = await b.client('carol', 'rc');
      // (Told by node 1 as she joins: it can arrive with her join, before a `next` could listen.)
      await eventually(() => carol.producers.has(producerId), 5000, 'carol told of the producer');
      const s2 = await sub(carol, producerId);
      await eventually(() => s2.got.length >= 20, 5000, 'RTP at carol on node 2');
      assert.equal(await a.metric('auralink_cascade_producers', { direction: 'out' }), 1, 'the producer crossed once for two subscribers');
      assert.equal(await b.metric('auralink_cascade_producers', { direction: 'in' }), 1);
      assert.equal(await a.metric('auralink_cascade_links'), 1, 'one pipe transport per room and node pair');
      assert.ok((await a.metric('auralink_cascade_bytes', { direction: 'sent' })) > 0);
      assert.ok((await a.metric('auralink_cascade_packets', { direction: 'sent' })) >= 20, 'packets counted per link at the origin');
      assert.ok((await b.metric('auralink_cascade_packets', { direction: 'received' })) >= 20, 'and at the far node');

      // Pause at the origin: far subscribers are told, RTP stops; resume restarts it.
      const paused = bob.next('consumerPaused');
      await alice.request('pauseProducer', { producerId });
      assert.equal((await paused)[0].consumerId, s1.consumerId);
      await sleep(300);
      const n = s1.got.length;
      await sleep(300);
      assert.ok(s1.got.length - n <= 1, `no RTP while paused (${s1.got.length - n} arrived)`);
      const resumed = bob.next('consumerResumed');
      await alice.request('resumeProducer', { producerId });
      await resumed;
      await eventually(() => s1.got.length > n + 10, 5000, 'RTP again after resume');

      // The publisher closes its producer: far consumers close, far subscribers are told.
      const closed = bob.next('consumerClosed');
      const removed = carol.next('producerRemoved');
      await alice.request('closeProducer', { producerId });
      assert.equal((await closed)[0].consumerId, s1.consumerId);
      assert.equal((await removed)[0].producerId, producerId);
      await eventually(async () => (await b.metric('auralink_cascade_producers', { direction: 'in' })) === 0, 3000, 'piped producer gone on node 2');
      await carol.leave();
    } finally {
      src.stop();
    }
    await bob.leave();
    await alice.leave();
    for (const t of [a, b]) {
      await eventually(async () => (await t.metric('auralink_cascade_links')) === 0, 5000, 'no pipe link left');
      await eventually(async () => Object.values(await objects(t)).every((v) => v === 0), 5000, 'no mediasoup objects left');
    }
  });

  test('a far subscriber that stops consuming releases the piped producer (after the linger), and the link', async () => {
    const alice = await a.client('alice2', 'rc2');
    const bob = await b.client('bob2', 'rc2');
    const send = (await alice.request('createTransport', { producing: true, plain: true })).transport!;
    const producerId = (await alice.request('produce', { transportId: send.id, kind: 'audio', rtpParameters: opus(8888) })).id!;
    const s = await sub(bob, producerId);
    assert.equal(await b.metric('auralink_cascade_producers', { direction: 'in' }), 1);
    await bob.request('closeConsumer', { consumerId: s.consumerId });
    await eventually(async () => (await a.metric('auralink_cascade_producers', { direction: 'out' })) === 0, 3000, 'origin released its pipe consumer');
    await eventually(async () => (await a.metric('auralink_cascade_links')) === 0 && (await b.metric('auralink_cascade_links')) === 0, 3000, 'link closed on both');
    // Subscribing again pipes it again.
    const again = await sub(bob, producerId);
    assert.equal(await b.metric('auralink_cascade_producers', { direction: 'in' }), 1);
    again.sock.close();
    s.sock.close();
    await bob.leave();
    await alice.leave();
  });

  test('30 participants joining node 2 at once after a track was published on node 1 are each told of it', async () => {
    const alice = await a.client('alice4', 'rc4');
    const send = (await alice.request('createTransport', { producing: true, plain: true })).transport!;
    const producerId = (await alice.request('produce', { transportId: send.id, kind: 'audio', rtpParameters: opus(9999) })).id!;
    // Node 1 answers each join event with producerAdded for the joiner; it can overtake the
    // joiner's own admission on node 2 and must not be lost there.
    const told = await Promise.all(
      Array.from({ length: 30 }, async (_, i) => {
        const c = await b.client(`late${i}`, 'rc4');
        const seen = c.producers.has(producerId) || (await Promise.race([c.next('producerAdded').then(([p]) => p.producerId === producerId), sleep(5000).then(() => false)]));
        await c.leave();
        return seen;
      }),
    );
    assert.equal(told.filter(Boolean).length, 30, 'every late joiner heard of the producer');
    await alice.leave();
  });

  test('a data producer (SCTP) on node 1 is told to and consumed by participants on node 2, over the pipe link; its close reaches them; nothing is left', async () => {
    const alice = await a.client('alice5', 'rc5');
    const bob = await b.client('bob5', 'rc5');
    const send = await transport(alice, 'producing', true);
    const announced = bob.next('producerAdded');
    const dpId = (await alice.request('produceData', { transportId: send.id, sctpStreamParameters: JSON.stringify({ streamId: 1, ordered: true }), label: 'chat', protocol: 'json' })).id!;
    const [added] = await Promise.race([announced, sleep(5000).then(() => assert.fail('bob on node 2 was never told of the data producer'))]);
    assert.deepEqual([added.producerId, added.kind, added.participantIdentity], [dpId, 'data', 'alice5']);
    const recv = await transport(bob, 'consuming', true);
    const dc = (await bob.request('consumeData', { dataProducerId: dpId, transportId: recv.id })).dataConsumer!;
    assert.deepEqual([dc.dataProducerId, dc.label, dc.protocol], [dpId, 'chat', 'json']);
    assert.equal(await a.metric('auralink_cascade_data_producers', { direction: 'out' }), 1);
    assert.equal(await b.metric('auralink_cascade_data_producers', { direction: 'in' }), 1);
    // The pipe's SCTP association is up on both ends (no SCTP client here to send through it).
    for (const t of [a, b]) await eventually(async () => (await t.metric('auralink_cascade_sctp_links', { state: 'connected' })) === 1, 5000, 'SCTP over the pipe connected');

    // A participant joining node 2 later is told too, and shares the piped data producer.
    const carol = await b.client('carol5', 'rc5');
    const toCarol = carol.producers.has(dpId) || (await Promise.race([carol.next('producerAdded').then(([x]) => x.producerId === dpId), sleep(5000).then(() => false)]));
    assert.ok(toCarol, 'a late joiner on node 2 is told of the data producer on node 1');
    const recv2 = await transport(carol, 'consuming', true);
    await carol.request('consumeData', { dataProducerId: dpId, transportId: recv2.id });
    assert.equal(await b.metric('auralink_cascade_data_producers', { direction: 'in' }), 1, 'piped once for two data consumers');
    assert.equal(await b.metric('auralink_sfu_objects', { type: 'data_consumer' }), 2);

    // The publisher leaves: its data producer closes, and so do the piped one and its data consumers.
    await alice.leave();
    await eventually(async () => (await b.metric('auralink_cascade_data_producers', { direction: 'in' })) === 0, 5000, 'piped data producer gone on node 2');
    await eventually(async () => (await b.metric('auralink_sfu_objects', { type: 'data_consumer' })) === 0, 5000, 'data consumers on node 2 closed');
    await carol.leave();
    await bob.leave();
    for (const t of [a, b]) {
      await eventually(async () => (await t.metric('auralink_cascade_links')) === 0, 5000, 'no pipe link left');
      for (const type of ['transport', 'producer', 'consumer', 'data_producer', 'data_consumer']) {
        await eventually(async () => (await t.metric('auralink_sfu_objects', { type })) === 0, 5000, `no ${type} left`);
      }
    }
  });

  test('a data producer no node of the room has is NOT_FOUND', async () => {
    const bob = await b.client('bob6', 'rc6');
    const alice = await a.client('alice6', 'rc6');
    const recv = await transport(bob, 'consuming', true);
    await assert.rejects(bob.request('consumeData', { dataProducerId: randomUUID(), transportId: recv.id }), { code: 'NOT_FOUND' });
    await alice.leave();
    await bob.leave();
  });

  test('both nodes pulling from each other at once (the link made from both ends): every consume succeeds at the first ask', async (t) => {
    // Per room, node 2's subscriber starts 0–15 ms after node 1's: some start while node 1's
    // link request is being answered, when node 2 already has its end and node 1 not yet the
    // far end's id (a consume there was refused "no link" before).
    // (WebRTC transports, which share the node's one port: each link takes one of its 16 others.)
    const rooms = Array.from({ length: 10 }, (_, i) => ({ name: `race${i}`, delay: i * 1.5 }));
    const setups = await Promise.all(
      rooms.map(async ({ name, delay }) => {
        const [x, y] = await Promise.all([a.client('x', name), b.client('y', name)]);
        const ids = [await publishAudio(x, 9000), await publishAudio(y, 9001)];
        const recv = await Promise.all([x, y].map((c) => transport(c, 'consuming')));
        const caps = await x.routerCapabilities();
        return { x, y, ids, recv, caps, delay };
      }),
    );
    try {
      const results = await Promise.allSettled(
        setups.flatMap(({ x, y, ids, recv, caps, delay }) => [
          x.request('consume', { producerId: ids[1]!, transportId: recv[0]!.id, rtpCapabilities: caps }),
          sleep(delay).then(() => y.request('consume', { producerId: ids[0]!, transportId: recv[1]!.id, rtpCapabilities: caps })),
        ]),
      );
      const refused = results.flatMap((r) => (r.status === 'rejected' ? [String((r.reason as Error).message)] : []));
      if (refused.length > 0) for (const [n, srv] of [['1', a], ['2', b]] as const) for (const l of srv.logs.filter((x) => /"level":[45]0/.test(x)).slice(-6)) t.diagnostic(`node ${n}: ${l.trim()}`);
      assert.deepEqual(refused, [], 'no consume refused');
      assert.equal(await a.metric('auralink_cascade_links'), rooms.length, 'one link per room');
    } finally {
      await Promise.all(setups.flatMap(({ x, y }) => [x.leave(), y.leave()]));
    }
    await eventually(async () => (await a.metric('auralink_cascade_links')) === 0 && (await b.metric('auralink_cascade_links')) === 0, 10_000, 'links closed after the rooms emptied');
  });

  test('a producer no node of the room has is NOT_FOUND, as on one node', async () => {
    const bob = await b.client('bob3', 'rc3');
    const recv = (await bob.request('createTransport', { consuming: true, plain: true })).transport!;
    await assert.rejects(bob.request('consume', { producerId: randomUUID(), transportId: recv.id, rtpCapabilities: await bob.routerCapabilities() }), { code: 'NOT_FOUND' });
    await bob.leave();
  });
});

describe('a room over three nodes: every subscriber receives every publisher, each producer crossing each link once', () => {
  const p = `test:cas3:${randomUUID().slice(0, 8)}:`;
  let n: TestServer[] = [];
  before(async () => {
    n = await Promise.all([1, 2, 3].map((i) => startServer(nodeCfg(p, `cas3-${i}`))));
  });
  after(async () => {
    await Promise.all(n.map((s) => s.close()));
  });

  test('2 publishers (nodes 1 and 2), 10 plain-RTP subscribers on each node', async () => {
    const pubs = [
      { node: 0, ssrc: 11111 },
      { node: 1, ssrc: 22222 },
    ];
    const published: { producerId: string; src: { stop(): void } }[] = [];
    for (const [i, pub] of pubs.entries()) {
      const c = await n[pub.node]!.client(`pub${i}`, 'r3');
      const send = (await c.request('createTransport', { producing: true, plain: true })).transport!;
      const producerId = (await c.request('produce', { transportId: send.id, kind: 'audio', rtpParameters: opus(pub.ssrc) })).id!;
      published.push({ producerId, src: rtpSource(send.plainIp!, send.plainPort!, pub.ssrc) });
    }
    const subs: { got: Buffer[]; sock: Socket; ssrcs: number[] }[] = [];
    try {
      for (let node = 0; node < 3; node++) {
        for (let j = 0; j < 10; j++) {
          const c = await n[node]!.client(`sub${node}-${j}`, 'r3');
          const { got, sock, ssrcs } = await sub(c, ...published.map((x) => x.producerId));
          subs.push({ got, sock, ssrcs });
        }
      }
      const each = (s: (typeof subs)[number]): boolean => s.ssrcs.every((ssrc) => s.got.filter((m) => m.readUInt32BE(8) === ssrc).length >= 10);
      await eventually(() => subs.every(each), 10_000, 'every subscriber has RTP of both publishers');
      // Publisher on node 1 crosses to nodes 2 and 3 once each, whatever the subscriber count;
      // node 2's likewise; node 3 publishes nothing.
      assert.equal(await n[0]!.metric('auralink_cascade_producers', { direction: 'out' }), 2);
      assert.equal(await n[1]!.metric('auralink_cascade_producers', { direction: 'out' }), 2);
      assert.equal(await n[2]!.metric('auralink_cascade_producers', { direction: 'out' }), 0);
      assert.equal(await n[2]!.metric('auralink_cascade_producers', { direction: 'in' }), 2);
    } finally {
      for (const pb of published) pb.src.stop();
      for (const s of subs) s.sock.close();
    }
  });
});

describe('AIC across nodes: the far node tells the origin what its viewers need', () => {
  const p = `test:casd:${randomUUID().slice(0, 8)}:`;
  let a: TestServer;
  let b: TestServer;
  // Dynacast with a short hold-down: a layer nobody needs is switched off after 200 ms.
  const cfg = (id: string) => ({ ...nodeCfg(p, id), aic: { enabled: true, pause_hold_down_ms: 200 } });
  before(async () => {
    [a, b] = await Promise.all([startServer(cfg('casd-1')), startServer(cfg('casd-2'))]);
  });
  after(async () => {
    await Promise.all([a.close(), b.close()]);
  });

  test("a hidden tile on node 2 lets node 1's publisher stop its upper layers; shown large, they come back", async () => {
    const alice = await a.client('alice', 'rd');
    const bob = await b.client('bob', 'rd');
    const send = (await alice.request('createTransport', { producing: true, plain: true })).transport!;
    // Three simulcast layers (plain RTP: no media needed for the layer decisions).
    const rtpParameters = JSON.stringify({
      codecs: [{ mimeType: 'video/VP8', payloadType: 96, clockRate: 90000, rtcpFeedback: [] }],
      encodings: [{ ssrc: 111, scaleResolutionDownBy: 4 }, { ssrc: 222, scaleResolutionDownBy: 2 }, { ssrc: 333 }],
    });
    const producerId = (await alice.request('produce', { transportId: send.id, kind: 'video', rtpParameters, width: 1280, height: 720 })).id!;
    const s = await sub(bob, producerId);
    const wanted = (layer: number) =>
      new Promise<void>((resolve) => {
        const on = (m: { producerId: string; maxSpatialLayer: number }): void => {
          if (m.producerId === producerId && m.maxSpatialLayer === layer) {
            alice.off('layersWanted', on);
            resolve();
          }
        };
        alice.on('layersWanted', on);
      });
    const low = wanted(0);
    await bob.request('trackSettings', { consumerId: s.consumerId, hidden: true });
    await Promise.race([low, sleep(5000).then(() => assert.fail('the publisher was never told that layer 0 is enough'))]);
    const high = wanted(2);
    await bob.request('trackSettings', { consumerId: s.consumerId, width: 1280, height: 720 });
    await Promise.race([high, sleep(5000).then(() => assert.fail('the publisher was never told to send every layer again'))]);
    s.sock.close();
    await bob.leave();
    await alice.leave();
  });
});
