// compression.target_reduction_percent: what an AIC-arm room's savings are held to. A room
// under it shows in auralink_aic_rooms_below_target until its reduction so far reaches it; the
// call's summary row records the target next to the reduction. Real VP8 simulcast (the
// committed capture, the same on every layer, so a visible tile costs what forward-all does
// and a hidden one nothing) from a plain-RTP publisher to a plain-RTP subscriber. Simulcast
// signalled by SSRC, as plain RTP does: its layers were once never measured (matched by rid
// only), so forward-all counted nothing and no reduction was ever known.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { aicSummaries, eventually, startServer, type TestServer } from './helpers.js';
import { plainSubscriber } from './plainRtp.js';
import { publishVp8Simulcast } from './vp8Source.js';

describe('AIC target reduction', () => {
  let t: TestServer;
  before(async () => {
    t = await startServer({
      aic: { enabled: true, stats_interval_ms: 200, pause_hold_down_ms: 200, compression: { target_reduction_percent: 50 } },
      sfu: { allow_plain_transports: true },
      room: { empty_timeout_s: 0.2 },
    });
  });
  after(() => t.close());

  test('a room under its target is counted until its savings reach it; the summary row holds both', async () => {
    const pub = await t.client('pub', 'target');
    const sub = await t.client('sub', 'target');
    const { producerId, stop } = await publishVp8Simulcast(pub, [4100, 4101, 4102]);
    const s = await plainSubscriber(sub, producerId);
    try {
      // A visible full-size tile: everything forward-all would send is sent (reduction ~0).
      await sub.request('trackSettings', { consumerId: s.consumerId, width: 1280, height: 720 });
      await eventually(async () => (await t.metric('auralink_aic_rooms_below_target')) === 1, 8000, 'the room under its 50 % target');
      // Hidden: nothing is sent while forward-all keeps counting; the reduction so far climbs past 50 %.
      await sub.request('trackSettings', { consumerId: s.consumerId, width: 1280, height: 720, hidden: true });
      await eventually(async () => (await t.metric('auralink_aic_rooms_below_target')) === 0, 15_000, 'the room at its target');
    } finally {
      stop();
      s.sock.close();
    }
    const callId = pub.join.room.sid;
    await sub.leave();
    await pub.leave();
    const rows = await aicSummaries<{ reduction_percent: number | null; target_reduction_percent: number | null }>(t, callId);
    assert.equal(rows[0]!.target_reduction_percent, 50);
    assert.ok(rows[0]!.reduction_percent !== null && rows[0]!.reduction_percent >= 50, `reduction ${rows[0]!.reduction_percent}`);
  });
});
