import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { eventually, sleep } from './helpers.js';
import { opus, transport } from './media.js';
import { plainSubscriber, requestStorm, rtpSource } from './plainRtp.js';
import { PrivateRedis } from './redis.js';
import { routes, useCluster as useRelayCluster } from './relayCluster.js';

// A relay forwarding to two far edges, on loopback: edges A (publisher), B and C, relay R.
// Every node reaches every other here, so the test makes the mesh's measured links itself
// (probes off): A–R, R–B, R–C and nothing else, and the mesh's path from A to B and to C goes
// through R, each producer crossing A→R once and fanning out at R. What the relay must do for
// the far edges: aggregate their viewers' layer demand (the highest of its next hops', which
// the origin's dynacast sees), and throttle their key-frame requests as one.

const redis = new PrivateRedis();
before(() => redis.start());
after(() => redis.dispose());

const DELAY_MS = 1000;
// Key-frame requests through pipes throttled by DELAY_MS; dynacast with a short hold-down (a
// layer nobody needs is switched off after 200 ms).
const CONFIG = { sfu: { pipe_key_frame_request_delay_ms: DELAY_MS, key_frame_request_delay_ms: 0 }, aic: { enabled: true, pause_hold_down_ms: 200 } };
const useCluster = (tag: string, names: readonly string[], links: readonly [string, string, number][], heartbeatMs: number): ReturnType<typeof useRelayCluster> =>
  useRelayCluster(() => redis.url, tag, names, links, heartbeatMs, CONFIG);

describe('three edges and a relay: B and C pull through R', () => {
  // A lease of 1.5 s: a node the loaded machine delays is not expired (its links would go with it).
  const { n, id, open } = useCluster('casr', ['A', 'B', 'C', 'R'], [['A', 'R', 5], ['R', 'B', 5], ['R', 'C', 5]], 500);
  const ids = { A: id('A'), B: id('B'), C: id('C'), R: id('R') };

  test("key-frame requests of viewers on B and C reach the publisher on A as about one per delay (R's pipe producer merges them)", async (t) => {
    const count = await requestStorm(n.A!, [n.B!, n.C!], 'kfr', { viewers: 5, windowMs: 3000, settleMs: DELAY_MS + 200 });
    // One per delay window, plus one per hop at the window's edges (two hops here: seen 6 once in
    // a fresh-clone run). Without the delay, 58-59 arrive.
    const max = Math.floor(3000 / DELAY_MS) + 3;
    t.diagnostic(`${count} key-frame requests at the publisher in 3000 ms`);
    assert.ok(count >= 1 && count <= max, `${count} requests in 3000 ms (at most ${max})`);
  });
  test('a data producer (SCTP) on A consumed on B and C crosses A→R once and fans out at R; its close reaches both', async () => {
    const alice = await n.A!.client('alice', 'dd');
    open.push(alice);
    const send = await transport(alice, 'producing', true);
    const dpId = (await alice.request('produceData', { transportId: send.id, sctpStreamParameters: JSON.stringify({ streamId: 3, ordered: true }), label: 'chat' })).id!;
    for (const node of ['B', 'C']) {
      const c = await n[node]!.client(`dsub-${node}`, 'dd');
      open.push(c);
      const recv = await transport(c, 'consuming', true);
      const dc = (await c.request('consumeData', { dataProducerId: dpId, transportId: recv.id })).dataConsumer!;
      assert.equal(dc.label, 'chat');
    }
    assert.equal(await n.A!.metric('auralink_cascade_data_producers', { direction: 'out' }), 1, 'A→R once');
    assert.equal(await n.R!.metric('auralink_cascade_data_producers', { direction: 'in' }), 1);
    assert.equal(await n.R!.metric('auralink_cascade_data_producers', { direction: 'out' }), 2, 'R→B, R→C');
    assert.equal(await n.A!.metric('auralink_cascade_data_producers', { direction: 'in' }), 0);
    await eventually(async () => (await n.R!.metric('auralink_cascade_sctp_links', { state: 'connected' })) === 3, 5000, "SCTP up on R's three links");
    await alice.leave();
    for (const node of ['B', 'C', 'R']) {
      await eventually(async () => (await n[node]!.metric('auralink_cascade_data_producers', { direction: 'in' })) === 0, 5000, `${node}: piped data producer gone`);
    }
    await eventually(async () => (await n.B!.metric('auralink_sfu_objects', { type: 'data_consumer' })) === 0, 5000, "B's data consumer closed");
  });

  test("the origin's dynacast sees the highest demand of the relay's next hops: C's while it is higher (before C first says so too), B's when C lowers it, leaves or dies", async () => {
    const alice = await n.A!.client('alice', 'dm');
    open.push(alice);
    const send = (await alice.request('createTransport', { producing: true, plain: true })).transport!;
    // Three simulcast layers (plain RTP: no media needed for the layer decisions).
    const rtpParameters = JSON.stringify({
      codecs: [{ mimeType: 'video/VP8', payloadType: 96, clockRate: 90000, rtcpFeedback: [] }],
      encodings: [{ ssrc: 111, scaleResolutionDownBy: 4 }, { ssrc: 222, scaleResolutionDownBy: 2 }, { ssrc: 333 }],
    });
    const producerId = (await alice.request('produce', { transportId: send.id, kind: 'video', rtpParameters, width: 1280, height: 720 })).id!;
    /** Resolves when the publisher is told `layer` (at most `ms` later). */
    const wanted = (layer: number, what: string, ms = 5000): Promise<void> =>
      new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => {
          alice.off('layersWanted', on);
          reject(new Error(`the publisher was never told layer ${layer}: ${what}`));
        }, ms);
        const on = (m: { producerId: string; maxSpatialLayer: number }): void => {
          if (m.producerId !== producerId || m.maxSpatialLayer !== layer) return;
          clearTimeout(timer);
          alice.off('layersWanted', on);
          resolve();
        };
        alice.on('layersWanted', on);
      });
    const told: number[] = [];
    alice.on('layersWanted', (m) => {
      if (m.producerId === producerId) told.push(m.maxSpatialLayer);
    });

    // B: a medium tile (layer 1 is enough). The origin drops to B's need.
    const bob = await n.B!.client('bob', 'dm');
    const sb = await plainSubscriber(bob, producerId);
    open.push(bob, sb.sock);
    const toB = (await routes(n.B!))[0];
    assert.deepEqual(toB?.path, [ids.A, ids.R, ids.B], 'B pulls through R');
    let next = wanted(1, "B's medium tile");
    await bob.request('trackSettings', { consumerId: sb.consumerId, width: 640, height: 360 });
    await next;

    // C: a large tile. R now forwards to two hops: the origin is asked for the higher (C's).
    const carol = await n.C!.client('carol', 'dm');
    next = wanted(2, "C's large tile");
    const sc = await plainSubscriber(carol, producerId);
    open.push(carol, sc.sock);
    await carol.request('trackSettings', { consumerId: sc.consumerId, width: 1280, height: 720 });
    await next;
    assert.deepEqual((await routes(n.C!))[0]?.path, [ids.A, ids.R, ids.C], 'C pulls through R');
    assert.equal(await n.A!.metric('auralink_cascade_producers', { direction: 'out' }), 1, 'the producer crosses A→R once for B and C');
    assert.equal(await n.R!.metric('auralink_cascade_producers', { direction: 'out' }), 2, 'and fans out at R');

    // C hides its tile: back to B's need, not to C's (layer 0).
    next = wanted(1, 'C lowered its demand: B is the highest');
    await carol.request('trackSettings', { consumerId: sc.consumerId, hidden: true });
    await next;
    await sleep(500); // dynacast's hold-down passes: had R forwarded C's alone, layer 0 would follow
    assert.equal(told.at(-1), 1, `the origin stays at B's need (told ${told.join(',')})`);

    // C large again, then C leaves: back to B's need (C's node says it needs nothing, then its
    // room ends there).
    next = wanted(2, 'C large again');
    await carol.request('trackSettings', { consumerId: sc.consumerId, width: 1280, height: 720 });
    await next;
    next = wanted(1, 'C left: B is the highest');
    await carol.leave();
    await next;
    await eventually(async () => (await n.R!.metric('auralink_cascade_producers', { direction: 'out' })) === 1, 5000, "R's pipe to C released");

    // A new viewer on C wants the top layer: C's first word is not needed to get it (a next hop
    // that has not reported counts as needing every layer)...
    const dave = await n.C!.client('dave', 'dm');
    open.push(dave);
    next = wanted(2, 'a new viewer on C');
    const sd = await plainSubscriber(dave, producerId);
    open.push(sd.sock);
    await dave.request('trackSettings', { consumerId: sd.consumerId, width: 1280, height: 720 });
    await next;
    // ...and C's node dies without a word: once the mesh drops it, R's pipe to C closes and the
    // origin is back at B's need.
    next = wanted(1, "C's node died: B is the highest", 10_000);
    n.C!.proc.kill('SIGKILL');
    delete n.C;
    await next;

    await bob.leave();
    await alice.leave();
    for (const s of Object.values(n)) {
      await eventually(async () => (await s.metric('auralink_cascade_links')) === 0, 5000, 'no pipe link left');
    }
  });
});

describe('a relay that dies is routed around before the mesh expires it', () => {
  // Heartbeat 5 s: the mesh expires a silent node after 15 s. Two relays; the links make R1
  // the better path from A to B.
  const { n, id, open } = useCluster('casf', ['A', 'B', 'R1', 'R2'], [['A', 'R1', 5], ['R1', 'B', 5], ['A', 'R2', 10], ['R2', 'B', 10]], 5000);

  test("SIGKILL of the relay in use: B's subscriber gets the media through the other relay long before the mesh's 15 s expiry, keeping its subscription (its consumer switched, nothing to do)", async (t) => {
    const alice = await n.A!.client('alice', 'fo');
    open.push(alice);
    const send = (await alice.request('createTransport', { producing: true, plain: true })).transport!;
    const producerId = (await alice.request('produce', { transportId: send.id, kind: 'audio', rtpParameters: opus(6060) })).id!;
    const src = rtpSource(send.plainIp!, send.plainPort!, 6060);
    open.push({ close: () => src.stop() });
    const bob = await n.B!.client('bob', 'fo');
    open.push(bob);
    const sub = await plainSubscriber(bob, producerId);
    open.push(sub.sock);
    // The subscriber does nothing: a re-route moves its consumer (consumerSwitched), never
    // takes the track away (consumerClosed, producerRemoved) or announces it again.
    const seen: string[] = [];
    const switched: { consumerId: string; reason: string }[] = [];
    for (const ev of ['producerAdded', 'producerRemoved', 'consumerClosed'] as const) bob.on(ev, () => seen.push(ev));
    bob.on('consumerSwitched', (s) => switched.push({ consumerId: s.consumerId, reason: s.reason }));
    // Not mediasoup's bandwidth probation packets (SSRC 1234): the publisher's RTP.
    const rtp = (): number => sub.got.filter((m) => m.readUInt32BE(8) !== 1234).length;
    await eventually(() => rtp() >= 20, 5000, 'RTP at B');
    assert.deepEqual((await routes(n.B!))[0]?.path, [id('A'), id('R1'), id('B')], 'through R1 first');

    const killedAt = Date.now();
    n.R1!.proc.kill('SIGKILL');
    delete n.R1;
    const before = rtp();
    await eventually(() => rtp() >= before + 20, 12_000, 'RTP at B again');
    t.diagnostic(`RTP at B again ${Date.now() - killedAt} ms after the kill`);
    assert.deepEqual((await routes(n.B!))[0]?.path, [id('A'), id('R2'), id('B')], 'now through R2');
    assert.ok(Date.now() - killedAt < 15_000, 'before the mesh could have expired R1');
    assert.deepEqual(switched, [{ consumerId: sub.consumerId, reason: 'reroute' }], "bob's consumer was switched once, for the re-route");
    assert.deepEqual(seen, [], 'the track was neither taken away nor announced again');
    assert.equal(await n.B!.metric('auralink_sfu_objects', { type: 'consumer' }), 1, 'one consumer at B: the old one went');
    assert.equal(await n.B!.metric('auralink_sfu_objects', { type: 'producer' }), 1, 'one copy of the track at B: the one through R2');
  });
});

describe('a relay whose upstream relay dies tells the hop after it at once', () => {
  // A→R1→R2→B is the cheapest path; A→R3→B the other. Heartbeat 500 ms: the mesh expires a
  // dead node after 1.5 s. R1 dies: R2 (a relay: nothing of its own to move) lets its copy go
  // at once and tells B its upstream lost it; B moves its subscriber to A→R3→B.
  const { n, id, open } = useCluster('casu', ['A', 'B', 'R1', 'R2', 'R3'], [['A', 'R1', 5], ['R1', 'R2', 5], ['R2', 'B', 5], ['A', 'R3', 20], ['R3', 'B', 20]], 500);

  test("SIGKILL of the first of two relays: B's subscriber gets the media through R3, its consumer switched; R2 keeps nothing", async (t) => {
    const alice = await n.A!.client('alice', 'fu');
    open.push(alice);
    const send = (await alice.request('createTransport', { producing: true, plain: true })).transport!;
    const producerId = (await alice.request('produce', { transportId: send.id, kind: 'audio', rtpParameters: opus(6161) })).id!;
    const src = rtpSource(send.plainIp!, send.plainPort!, 6161);
    open.push({ close: () => src.stop() });
    const bob = await n.B!.client('bob', 'fu');
    open.push(bob);
    const sub = await plainSubscriber(bob, producerId);
    open.push(sub.sock);
    const switched: string[] = [];
    bob.on('consumerSwitched', (s) => switched.push(s.reason));
    const rtp = (): number => sub.got.filter((m) => m.readUInt32BE(8) !== 1234).length;
    await eventually(() => rtp() >= 20, 5000, 'RTP at B');
    assert.deepEqual((await routes(n.B!))[0]?.path, [id('A'), id('R1'), id('R2'), id('B')], 'through R1 and R2 first');

    const killedAt = Date.now();
    n.R1!.proc.kill('SIGKILL');
    delete n.R1;
    const before = rtp();
    // Well before R2's dead-link bound (15 s), which is all that would end its silent copy otherwise.
    await eventually(() => rtp() >= before + 20, 8000, 'RTP at B again').catch(async (e: Error) => {
      for (const node of ['B', 'R2', 'R3', 'A']) for (const l of n[node]!.logs.filter((x) => /cascade|pipe|lost/i.test(x)).slice(-8)) t.diagnostic(`${node}: ${l.trim().slice(0, 400)}`);
      t.diagnostic(`routes at B: ${JSON.stringify(await routes(n.B!))}`);
      throw e;
    });
    t.diagnostic(`RTP at B again ${Date.now() - killedAt} ms after the kill`);
    assert.deepEqual((await routes(n.B!))[0]?.path, [id('A'), id('R3'), id('B')], 'now through R3');
    assert.deepEqual(switched, ['reroute'], "bob's consumer was switched");
    await eventually(async () => (await n.R2!.metric('auralink_cascade_producers', { direction: 'in' })) === 0, 5000, 'R2 holds no copy');
    await eventually(async () => (await n.R2!.metric('auralink_cascade_links')) === 0, 5000, 'R2 holds no link');
  });
});
