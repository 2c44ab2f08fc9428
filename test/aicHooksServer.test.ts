// RTP hooks in the real server: aic.hooks configured, a plain-RTP simulcast VP8 publisher and
// plain-RTP subscribers through the signalling API. A healthy chain carries the media (its
// packet_stats series move, the subscriber receives); a hook that throws, and one that stalls
// past max_latency_ms, make the track fall back: the subscriber is told consumerSwitched and
// keeps receiving packets on its new consumer without doing anything; the fallback is
// counted; mediasoup's object counts return to zero.
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import type { SignalClient } from '../src/client/signalClient.js';
import { eventually, sleep, startServer, type TestServer } from './helpers.js';
import { plainSubscriber, type PlainSubscriber } from './plainRtp.js';
import { publishVp8Simulcast } from './vp8Source.js';

const SSRCS = [3100, 3101, 3102];

async function objects(t: TestServer): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const type of ['transport', 'producer', 'consumer']) out[type] = await t.metric('auralink_sfu_objects', { type });
  return out;
}

const publish = (c: SignalClient): Promise<{ producerId: string; stop(): void }> => publishVp8Simulcast(c, SSRCS);

describe('RTP hooks in the server', () => {
  const servers: TestServer[] = [];
  after(async () => {
    for (const t of servers) await t.close();
  });
  const start = async (hooks: unknown[], sfu: Record<string, unknown> = {}): Promise<TestServer> => {
    const t = await startServer({
      aic: { enabled: true, hooks, compression: { max_latency_ms: 50 } },
      sfu: { allow_plain_transports: true, ...sfu },
      room: { empty_timeout_s: 0.2 },
    });
    servers.push(t);
    return t;
  };

  test('a healthy chain: the subscriber receives through it, packet_stats moves, objects return to zero', async () => {
    const t = await start([{ name: 'packet_stats', window_ms: 500 }]);
    const pub = await t.client('pub', 'hooks-ok');
    const sub = await t.client('sub', 'hooks-ok');
    const { producerId, stop } = await publish(pub);
    const s = await plainSubscriber(sub, producerId);
    try {
      await eventually(() => s.got.length > 60, 8000, 'media through the chain');
      assert.equal(await t.metric('auralink_aic_hook_chains'), 1);
      // The chain's own objects: a direct transport, its tap consumer, the processed producer.
      assert.deepEqual(await objects(t), { transport: 3, producer: 2, consumer: 2 });
      await eventually(async () => (await t.metric('auralink_aic_track_bitrate_bps', { producer: producerId, layer: '0' })) > 0, 5000, 'packet_stats bitrate');
      assert.ok((await t.metric('auralink_aic_track_fps', { producer: producerId, layer: '2' })) > 10, 'packet_stats fps');
      assert.ok((await t.metric('auralink_aic_hook_seconds_count', { hook: 'packet_stats' })) > 0);
    } finally {
      stop();
      s.sock.close();
    }
    await pub.leave();
    await sub.leave();
    await eventually(async () => Object.values(await objects(t)).every((n) => n === 0), 5000, 'every mediasoup object closed');
    assert.equal(await t.metric('auralink_aic_hook_chains'), 0);
    assert.equal(await t.metric('auralink_aic_track_bitrate_bps', { producer: producerId }), 0, "the track's series are gone");
  });

  for (const mode of ['throw', 'stall'] as const) {
    test(`a hook that ${mode === 'throw' ? 'throws' : 'stalls past max_latency_ms'}: the track falls back, the plain-RTP subscriber keeps receiving`, async () => {
      const t = await start([{ name: 'packet_stats' }, { name: 'fault', mode, after_packets: 150, stall_ms: 120 }]);
      const pub = await t.client('pub', `hooks-${mode}`);
      const sub = await t.client('sub', `hooks-${mode}`);
      const { producerId, stop } = await publish(pub);
      const switched = sub.next('consumerSwitched', 20_000);
      const s = await plainSubscriber(sub, producerId);
      try {
        await eventually(() => s.got.length > 20, 8000, 'media through the chain');
        const [msg] = await switched;
        assert.equal(msg.consumerId, s.consumerId);
        assert.equal(msg.reason, 'hookFallback');
        assert.equal(msg.consumer.producerId, producerId, 'same track');
        assert.notEqual(msg.consumer.id, s.consumerId);
        const newSsrc = (JSON.parse(msg.consumer.rtpParameters) as { encodings: { ssrc: number }[] }).encodings[0]!.ssrc;
        // Nothing done by the subscriber: its new consumer sends to the same socket.
        const n = s.got.length;
        await eventually(() => s.got.slice(n).filter((p) => p.readUInt32BE(8) === newSsrc).length > 60, 15_000, 'packets on the new consumer');
        assert.equal(await t.metric('auralink_aic_hook_fallbacks_total', { hook: 'fault', reason: mode === 'throw' ? 'throw' : 'latency' }), 1);
        await eventually(async () => (await t.metric('auralink_aic_hook_chains')) === 0, 3000, 'the chain closed');
        assert.deepEqual(await objects(t), { transport: 2, producer: 1, consumer: 1 }, 'only the publisher, the subscriber and its consumer of the original');
        assert.ok(t.logs.some((l) => l.includes('RTP hook failed') && l.includes('"hook":"fault"')), 'the hook is logged');
        // Control requests use the new consumer id.
        await sub.request('setPreferredLayers', { consumerId: msg.consumer.id, spatialLayer: 0 });
        await sleep(200);
      } finally {
        stop();
        s.sock.close();
      }
      await pub.leave();
      await sub.leave();
      await eventually(async () => Object.values(await objects(t)).every((x) => x === 0), 5000, 'every mediasoup object closed');
    });
  }

  test("a subscriber on the room's other router (over max_consumers_per_router) gets the processed track too, and is switched with the rest", async () => {
    const t = await start([{ name: 'fault', mode: 'throw', after_packets: 2000 }], { workers: 2, max_consumers_per_router: 1 });
    const pub = await t.client('pub', 'hooks-routers');
    const subs = [await t.client('sub1', 'hooks-routers'), await t.client('sub2', 'hooks-routers')];
    const { producerId, stop } = await publish(pub);
    const switched = subs.map((c) => c.next('consumerSwitched', 20_000));
    const got: PlainSubscriber[] = [];
    for (const c of subs) got.push(await plainSubscriber(c, producerId));
    try {
      const h = await t.health();
      assert.deepEqual(h.sfu!.workers.map((w) => w.routers).sort(), [1, 1], 'the second subscriber is on a router of its own');
      await eventually(() => got.every((s) => s.got.length > 20), 8000, 'media through the chain on both routers');
      // Only consumers of the processed producer are switched: the second subscriber is one.
      const msgs = (await Promise.all(switched)).map(([m]) => m);
      msgs.forEach((m, i) => {
        assert.equal(m.consumerId, got[i]!.consumerId);
        assert.equal(m.reason, 'hookFallback');
        assert.equal(m.consumer.producerId, producerId);
      });
      for (const [i, m] of msgs.entries()) {
        const ssrc = (JSON.parse(m.consumer.rtpParameters) as { encodings: { ssrc: number }[] }).encodings[0]!.ssrc;
        const n = got[i]!.got.length;
        await eventually(() => got[i]!.got.slice(n).filter((p) => p.readUInt32BE(8) === ssrc).length > 60, 15_000, `packets on subscriber ${i + 1}'s new consumer`);
      }
      await eventually(async () => (await t.metric('auralink_aic_hook_chains')) === 0, 3000, 'the chain closed');
    } finally {
      stop();
      for (const s of got) s.sock.close();
    }
    await pub.leave();
    for (const c of subs) await c.leave();
    await eventually(async () => Object.values(await objects(t)).every((x) => x === 0), 5000, 'every mediasoup object closed');
  });
});
