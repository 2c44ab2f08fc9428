import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { eventually, sleep, startServer, type TestServer } from './helpers.js';
import { opus } from './media.js';
import { plainSubscriber, rtpSource } from './plainRtp.js';
import { edgeConfig } from './clusterNode.js';
import { PrivateRedis } from './redis.js';

// Issue 16 chaos: Redis stopped and started again while a call's media crosses nodes. The
// pipes are direct UDP between the nodes: media goes on through the outage; signalling
// across nodes resumes when Redis is back, and a new subscriber can pull the track again.

const redis = new PrivateRedis();
before(() => redis.start());
after(() => redis.dispose());

const nodeCfg = (p: string, id: string) =>
  edgeConfig(redis.url, p, id, { sfu: { allow_plain_transports: true, cascade_linger_ms: 300 }, room: { empty_timeout_s: 0.2 } });

describe('Redis restarted during a cross-node call', () => {
  const p = `test:chaos:${randomUUID().slice(0, 8)}:`;
  let a: TestServer;
  let b: TestServer;
  before(async () => {
    [a, b] = await Promise.all([startServer(nodeCfg(p, 'chaos-1')), startServer(nodeCfg(p, 'chaos-2'))]);
  });
  after(async () => {
    await Promise.all([a.close(), b.close()]);
  });

  test('media across nodes goes on through the outage; afterwards the room works across nodes again', async () => {
    const alice = await a.client('alice', 'rr');
    const bob = await b.client('bob', 'rr');
    const send = (await alice.request('createTransport', { producing: true, plain: true })).transport!;
    const announced = bob.next('producerAdded');
    const producerId = (await alice.request('produce', { transportId: send.id, kind: 'audio', rtpParameters: opus(4242) })).id!;
    await announced;
    const src = rtpSource(send.plainIp!, send.plainPort!, 4242);
    const s1 = await plainSubscriber(bob, producerId);
    try {
      await eventually(() => s1.got.length >= 20, 5000, 'RTP across nodes before the outage');
      await redis.stop();
      try {
        const n0 = s1.got.length;
        await sleep(2000); // several leases (3 heartbeats): nothing may be reaped meanwhile
        assert.ok(s1.got.length - n0 >= 100, `RTP kept crossing while Redis was down (${s1.got.length - n0} packets in 2 s at 100/s)`);
      } finally {
        await redis.start();
      }
      const n1 = s1.got.length;
      await sleep(1500);
      assert.ok(s1.got.length - n1 >= 100, 'and after it came back');
      // Cross-node signalling again: a newcomer on node 2 hears of alice's producer and pulls it.
      await eventually(async () => (await bob.listParticipants()).length === 2, 10_000, 'the directory has both again');
      const carol = await b.client('carol', 'rr');
      await eventually(() => carol.producers.has(producerId), 10_000, 'carol is told of the producer on node 1');
      const s2 = await plainSubscriber(carol, producerId);
      await eventually(() => s2.got.length >= 20, 10_000, 'RTP at a subscriber that joined after the outage');
      assert.equal(await a.metric('auralink_cascade_producers', { direction: 'out' }), 1, 'still one crossing for both');
      s2.sock.close();
      await carol.leave();
    } finally {
      src.stop();
      s1.sock.close();
    }
    await bob.leave();
    await alice.leave();
  });
});
