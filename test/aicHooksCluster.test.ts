// RTP hooks across nodes: a track published on node 1 and subscribed on node 2 passes through
// a hook chain on node 2 too (each node that forwards a track to subscribers runs the chain for
// its own; the pipe carries the original). Node 2's chain is started by its first subscriber
// (a node that only forwards runs none), its packet_stats move, and a hook that throws there
// switches node 2's subscriber to the plain track (consumerSwitched) with packets going on and
// the track kept on node 2 while the new consumer uses it; nothing is left on either node.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { edgeConfig } from './clusterNode.js';
import { eventually, sleep, startServer, type TestServer } from './helpers.js';
import { closingSubscribers } from './plainRtp.js';
import { PrivateRedis } from './redis.js';
import { publishVp8Simulcast } from './vp8Source.js';

const redis = new PrivateRedis();
before(() => redis.start());
after(() => redis.dispose());

const sub = closingSubscribers();

const objects = async (t: TestServer): Promise<Record<string, number>> => {
  const out: Record<string, number> = {};
  for (const type of ['transport', 'producer', 'consumer']) out[type] = await t.metric('auralink_sfu_objects', { type });
  return out;
};

const ssrcOf = (rtpParameters: string): number => (JSON.parse(rtpParameters) as { encodings: { ssrc: number }[] }).encodings[0]!.ssrc;

describe('RTP hooks on a track subscribed on another node', () => {
  const p = `test:hooks:${randomUUID().slice(0, 8)}:`;
  let a: TestServer;
  let b: TestServer;
  // Node 1's chain never fails (it would not matter to node 2: the pipe carries the original);
  // node 2's throws after its 1500th packet (~4 s of the three layers).
  const cfg = (id: string, failAfter: number) =>
    edgeConfig(redis.url, p, id, {
      sfu: { allow_plain_transports: true, cascade_linger_ms: 300 },
      room: { empty_timeout_s: 0.2 },
      aic: {
        enabled: true,
        compression: { max_latency_ms: 50 },
        hooks: [
          { name: 'packet_stats', window_ms: 500 },
          { name: 'fault', mode: 'throw', after_packets: failAfter },
        ],
      },
    });
  before(async () => {
    [a, b] = await Promise.all([startServer(cfg('hk-1', 1e9)), startServer(cfg('hk-2', 1500))]);
  });
  after(async () => {
    await Promise.all([a.close(), b.close()]);
  });

  test("node 2's subscriber gets the track through node 2's chain, is switched to the plain track when a hook there throws, and keeps receiving", async () => {
    const alice = await a.client('alice', 'hk');
    const bob = await b.client('bob', 'hk');
    const announced = bob.next('producerAdded');
    const { producerId, stop } = await publishVp8Simulcast(alice, [4100, 4101, 4102]);
    await announced;
    await eventually(async () => (await a.metric('auralink_aic_hook_chains')) === 1, 3000, "node 1 runs its publisher's chain");
    assert.equal(await b.metric('auralink_aic_hook_chains'), 0, 'node 2 runs none before a subscriber there wants the track');
    const switched = bob.next('consumerSwitched', 20_000);
    const s = await sub(bob, producerId);
    try {
      await eventually(() => s.got.length > 20, 8000, 'media on node 2');
      assert.equal(await b.metric('auralink_aic_hook_chains'), 1, "node 2 runs the track's chain for its subscriber");
      await eventually(async () => (await b.metric('auralink_aic_track_bitrate_bps', { producer: producerId, layer: '2' })) > 0, 5000, "node 2's packet_stats");
      const [msg] = await switched;
      assert.equal(msg.consumerId, s.consumerId, "node 2's subscriber consumed the processed track");
      assert.equal(msg.reason, 'hookFallback');
      assert.equal(msg.consumer.producerId, producerId, 'same track');
      const n = s.got.length;
      const ssrc = ssrcOf(msg.consumer.rtpParameters);
      await eventually(() => s.got.slice(n).filter((x) => x.readUInt32BE(8) === ssrc).length > 60, 15_000, 'packets on the new consumer');
      assert.equal(await b.metric('auralink_aic_hook_fallbacks_total', { hook: 'fault', reason: 'throw' }), 1);
      await eventually(async () => (await b.metric('auralink_aic_hook_chains')) === 0, 3000, "node 2's chain closed");
      // Past the cascade's linger: the piped-in track stays while the new consumer uses it.
      await sleep(600);
      const m = s.got.length;
      await eventually(() => s.got.length > m + 30, 5000, 'still receiving after the linger time');
      assert.deepEqual(await objects(b), { transport: 2, producer: 1, consumer: 1 }, "node 2: the pipe, the subscriber's transport, the piped-in track and its one consumer");
      assert.equal(await a.metric('auralink_aic_hook_chains'), 1, "node 1's chain is untouched");
      // A second subscriber on node 2 gets the plain track: a failed chain is not started again.
      const carol = await b.client('carol', 'hk');
      const s2 = await sub(carol, producerId);
      await eventually(() => s2.got.length > 20, 8000, "carol's media");
      assert.equal(await b.metric('auralink_aic_hook_chains'), 0, 'no new chain on node 2');
      s2.sock.close();
      await carol.leave();
    } finally {
      stop();
      s.sock.close();
    }
    await alice.leave();
    await bob.leave();
    for (const t of [a, b]) {
      await eventually(async () => Object.values(await objects(t)).every((x) => x === 0), 5000, `every mediasoup object closed on ${t === a ? 'node 1' : 'node 2'}`);
      assert.equal(await t.metric('auralink_aic_hook_chains'), 0);
    }
  });
});
