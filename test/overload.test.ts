import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { bytes, eventually, startServer, text, upgradeStatus, type TestServer } from './helpers.js';
import { opus } from './media.js';
import { plainSubscriber, rtpSource, type PlainSubscriber } from './plainRtp.js';

// Overload admission against the real server, its consumer limit set to 2 on its one worker:
// past it new joins get 503 OVERLOADED + Retry-After and /readiness is 503, while the calls
// already there keep their media, data and resumes; once the load drops it takes joins again.

describe('overload admission', () => {
  let t: TestServer;
  before(async () => {
    t = await startServer({
      sfu: { allow_plain_transports: true },
      // Consumers only: lag and CPU on a shared test machine must not decide this test.
      admission: { sample_ms: 100, max_consumers_per_worker: 2, max_event_loop_lag_ms: 0, max_worker_cpu_percent: 0, recover_s: 0.5, retry_after_s: 3 },
    });
  });
  after(async () => {
    await t.close();
  });

  test('at capacity: new joins 503 OVERLOADED + Retry-After, readiness 503; existing calls keep media, data and resumes; joins again once load drops', async () => {
    const alice = await t.client('alice', 'call');
    const bob = await t.client('bob', 'call');
    const carol = await t.client('carol', 'call');
    const send = (await alice.request('createTransport', { producing: true, plain: true })).transport!;
    const producerId = (await alice.request('produce', { transportId: send.id, kind: 'audio', rtpParameters: opus(4321) })).id!;
    const src = rtpSource(send.plainIp!, send.plainPort!, 4321);
    const subs: PlainSubscriber[] = [];
    try {
      assert.equal((await fetch(`${t.http}/readiness`)).status, 200);
      subs.push(await plainSubscriber(bob, producerId), await plainSubscriber(carol, producerId));
      await eventually(async () => (await fetch(`${t.http}/readiness`)).status === 503, 5000, 'readiness 503 at 2 consumers on the worker');

      const refused = await upgradeStatus(`${t.url}/rtc?access_token=${t.token('dave', 'call')}`);
      assert.equal(refused.status, 503);
      assert.equal(refused.body.code, 'OVERLOADED');
      assert.match(refused.body.message!, /consumers per worker 2, limit 2/);
      assert.equal(refused.headers['retry-after'], '3');
      // Another room on this node: refused too (the node is full, not the room).
      assert.equal((await upgradeStatus(`${t.url}/rtc?access_token=${t.token('erin', 'elsewhere')}`)).body.code, 'OVERLOADED');
      // A bad token is still a 401: admission comes after authentication.
      assert.equal((await upgradeStatus(`${t.url}/rtc?access_token=nope`)).status, 401);
      // A made-up resume token does not get a new join in.
      assert.equal((await upgradeStatus(`${t.url}/rtc?access_token=${t.token('dave', 'call')}&resume=forged&last_seq=0`)).status, 503);

      // The admitted calls carry on: media flows to both subscribers.
      const before = subs.map((s) => s.got.length);
      await eventually(() => subs.every((s, i) => s.got.length >= before[i]! + 20), 5000, 'RTP still forwarded to both subscribers while overloaded');
      // Bob's connection drops: his resume is admitted, his session (and consumer) carries on.
      const reconnected = bob.next('reconnected');
      bob.simulateDrop();
      assert.equal((await reconnected)[0].resumed, true, 'bob resumed while the node refused new joins');
      const afterResume = subs[0]!.got.length;
      await eventually(() => subs[0]!.got.length >= afterResume + 20, 5000, 'RTP to bob after his resume');
      const toCarol = carol.next('data');
      await bob.sendData(bytes('still here'));
      assert.equal(text((await toCarol)[0].payload), 'still here', 'data flows after the resume');
      assert.ok((await t.metric('auralink_admission_refused_total', { reason: 'consumers' })) >= 3);
      assert.equal(await t.metric('auralink_admission_resumes_admitted_total'), 1);
      assert.equal(await t.metric('auralink_admission_overloaded', { reason: 'consumers' }), 1);
      assert.equal((await t.health()).participants, 3, 'nobody was dropped');

      // Load drops (carol leaves: 1 consumer, under 0.8 × 2): after recover_s, joins again.
      await carol.leave();
      await eventually(async () => (await fetch(`${t.http}/readiness`)).status === 200, 5000, 'readiness back to 200');
      const dave = await t.client('dave', 'call');
      assert.equal(dave.me.identity, 'dave');
      assert.equal(await t.metric('auralink_admission_overloaded', { reason: 'consumers' }), 0);
      await dave.leave();
    } finally {
      src.stop();
      for (const s of subs) s.sock.close();
    }
    await alice.leave();
    await bob.leave();
  });
});
