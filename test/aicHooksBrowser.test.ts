import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { joinDemo, launch } from './chromium.js';
import { eventually, startServer, type TestServer } from './helpers.js';

// The RTP hook chain's fallback as a viewer's browser sees it: the publisher's camera runs
// through a chain whose `fault` hook throws after some packets; the server switches the
// viewer to the original producer (consumerSwitched) and the SDK follows by itself: the same
// RemoteTrack gets the new consumer and track, the tile's <video> shows it, frames go on.

type RoomWin = { auralinkRoom: import('../src/client/room.js').Room };

interface CameraState {
  consumerId: string;
  framesDecoded: number;
  /** The tile's <video> plays this RemoteTrack's current track. */
  shown: boolean;
}

function camera(page: Page, identity: string): Promise<CameraState | null> {
  return page.evaluate(async (who) => {
    const room = (window as unknown as RoomWin).auralinkRoom;
    for (const r of room.remote.values()) {
      if (r.participantIdentity !== who || r.source !== 'camera' || !r.consumer) continue;
      let framesDecoded = 0;
      (await r.getStats()).forEach((s: { type: string; kind?: string; framesDecoded?: number }) => {
        if (s.type === 'inbound-rtp' && s.kind === 'video') framesDecoded = s.framesDecoded ?? 0;
      });
      const shown = [...document.querySelectorAll('video')].some((v) => v.srcObject instanceof MediaStream && v.srcObject.getTracks().includes(r.track));
      return { consumerId: r.consumer.id, framesDecoded, shown };
    }
    return null;
  }, identity);
}

describe('RTP hook fallback in a real browser', () => {
  let t: TestServer;
  let browser: Browser;
  let viewer: Page;

  before(async () => {
    t = await startServer({
      development: true,
      aic: {
        enabled: true,
        // Video through the chain; the fault hook throws once ~600 packets have passed (a few seconds of simulcast).
        hooks: [
          { name: 'packet_stats', kinds: ['video'], window_ms: 1000 },
          { name: 'fault', kinds: ['video'], mode: 'throw', after_packets: 600 },
        ],
      },
    });
    browser = await launch();
    ({ viewer } = (await joinDemo(browser, t, 'hooks-e2e', ['pub', 'viewer'], 'video=1280x720')) as { pub: Page; viewer: Page });
  });

  after(async () => {
    await browser?.close();
    await t?.close();
  });

  test("the viewer's tile keeps playing across the switch to the original producer, with no page action", async () => {
    await eventually(async () => ((await camera(viewer, 'pub'))?.framesDecoded ?? 0) > 0, 20_000, 'viewer decoding pub through the chain');
    const before = (await camera(viewer, 'pub'))!;
    await eventually(async () => (await t.metric('auralink_aic_hook_fallbacks_total')) >= 1, 30_000, 'the fault hook threw and the track fell back');
    await eventually(async () => (await camera(viewer, 'pub'))?.consumerId !== before.consumerId, 10_000, 'the SDK took the new consumer');
    const switched = (await camera(viewer, 'pub'))!;
    assert.ok(switched.shown, "the tile's <video> shows the new track");
    await eventually(async () => ((await camera(viewer, 'pub'))?.framesDecoded ?? 0) > switched.framesDecoded + 30, 15_000, 'frames decoded after the switch');
    // Every camera's chain (the viewer publishes one too) fell back and is closed: no track passes through Node.
    await eventually(async () => (await t.metric('auralink_aic_hook_chains')) === 0, 15_000, 'the chains closed');
  });
});
