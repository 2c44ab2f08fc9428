import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { find, joinDemo, launch, mediaState, remoteStats } from './chromium.js';
import { eventually } from './helpers.js';
import { PrivateRedis } from './redis.js';
import { routes, useCluster } from './relayCluster.js';

// A viewer in a real browser, on another node than the publisher, with the media coming
// through a relay that dies: the page keeps its remote tracks (the SDK swaps each track in
// place on consumerSwitched), and frames come again through the other relay.

const redis = new PrivateRedis();
before(() => redis.start());
after(() => redis.dispose());

type RoomHandle = { auralinkRoom: import('../src/client/room.js').Room; rerouteEvents?: string[] };

describe('real browsers: the relay a call goes through dies', () => {
  // Heartbeat 5 s: the mesh would expire R1 after 15 s; the peer watch notices it first.
  const { n, id } = useCluster(() => redis.url, 'casw', ['A', 'B', 'R1', 'R2'], [['A', 'R1', 5], ['R1', 'B', 5], ['A', 'R2', 10], ['R2', 'B', 10]], 5000, { development: true });
  let browser: Browser;
  let pages: Record<string, Page> = {};

  before(async () => {
    browser = await launch();
    pages = { ...(await joinDemo(browser, n.A!, 'rr', ['alice'])), ...(await joinDemo(browser, n.B!, 'rr', ['bob'])) };
  });
  after(async () => {
    await browser?.close();
  });

  const other = { alice: 'bob', bob: 'alice' } as const;
  const receiving = async (me: 'alice' | 'bob', min: number): Promise<boolean> => {
    const s = await remoteStats(pages[me]!);
    return (find(s, other[me], 'camera')?.framesDecoded ?? 0) > min && (find(s, other[me], 'microphone')?.packetsReceived ?? 0) > min;
  };

  test('each page keeps its tracks: switched in place to the path through the other relay, frames come again; one copy of each track left per node', async () => {
    const both = ['alice', 'bob'] as const;
    for (const me of both) {
      await eventually(() => receiving(me, 10), 20_000, `${me} receiving ${other[me]} across nodes`).catch(async (e: Error) => {
        throw new Error(`${e.message}; ${me}: ${await mediaState(pages[me]!)}`);
      });
    }
    const viaR1 = `${id('A')}>${id('R1')}>${id('B')}`;
    assert.deepEqual((await routes(n.B!)).map((r) => r.path.join('>')), [viaR1, viaR1], "alice's two tracks reach B through R1");
    const tracksBefore: Record<string, string[]> = {};
    for (const me of both) {
      tracksBefore[me] = await pages[me]!.evaluate(() => {
        const w = window as unknown as RoomHandle;
        const events: string[] = (w.rerouteEvents = []);
        w.auralinkRoom.on('trackSwitched', (r) => events.push(`switched ${r.source}`));
        w.auralinkRoom.on('trackUnsubscribed', (r) => events.push(`unsubscribed ${r.source}`));
        w.auralinkRoom.on('trackSubscribed', (r) => events.push(`subscribed ${r.source}`));
        return [...w.auralinkRoom.remote.keys()].sort();
      });
    }

    n.R1!.proc.kill('SIGKILL');
    delete n.R1;
    const events = (me: string): Promise<string[]> => pages[me]!.evaluate(() => (window as unknown as RoomHandle).rerouteEvents ?? []);
    for (const me of both) {
      await eventually(async () => (await events(me)).length >= 2, 15_000, `${me}'s two tracks switched`);
      // The switched consumers' receivers count from zero: frames and packets through R2.
      await eventually(() => receiving(me, 30), 15_000, `${me} receiving ${other[me]} again`).catch(async (e: Error) => {
        throw new Error(`${e.message}; ${me}: ${await mediaState(pages[me]!)}; events ${JSON.stringify(await events(me))}`);
      });
      assert.deepEqual((await events(me)).sort(), ['switched camera', 'switched microphone'], `${me}: switched in place, never unsubscribed or subscribed anew`);
      const tracksAfter = await pages[me]!.evaluate(() => [...(window as unknown as RoomHandle).auralinkRoom.remote.keys()].sort());
      assert.deepEqual(tracksAfter, tracksBefore[me], `${me}: the same remote tracks`);
      // The page shows the new track: the tile's video plays frames from the switched consumer.
      const playing = await pages[me]!.evaluate(async () => {
        const cam = [...(window as unknown as RoomHandle).auralinkRoom.remote.values()].find((r) => r.source === 'camera');
        const v = cam ? document.querySelector<HTMLVideoElement>(`#tile-${cam.participantSid} video`) : null;
        const t0 = v?.getVideoPlaybackQuality().totalVideoFrames ?? 0;
        await new Promise((r) => setTimeout(r, 1000));
        return (v?.getVideoPlaybackQuality().totalVideoFrames ?? 0) - t0;
      });
      assert.ok(playing > 5, `${me}'s tile keeps playing (${playing} frames in 1 s)`);
    }
    const viaR2 = `${id('A')}>${id('R2')}>${id('B')}`;
    assert.deepEqual((await routes(n.B!)).map((r) => r.path.join('>')), [viaR2, viaR2], 'now through R2');
    // Nothing of the old path left. Per node: its page's two producers and the other's two
    // copies; its page's two consumers and two pipe consumers (its tracks towards R2).
    for (const node of ['A', 'B']) {
      await eventually(async () => (await n[node]!.metric('auralink_sfu_objects', { type: 'producer' })) === 4, 5000, `${node}: 4 producers (the old copies gone)`);
      await eventually(async () => (await n[node]!.metric('auralink_sfu_objects', { type: 'consumer' })) === 4, 5000, `${node}: 4 consumers (the old ones and the pipe to R1 gone)`);
      assert.equal(await n[node]!.metric('auralink_cascade_links'), 1, `${node}: one pipe link (to R2)`);
    }
  });
});
