import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { joinDemo, launch } from './chromium.js';
import { eventually, sleep, startServer, type TestServer } from './helpers.js';

// The P2P tier end to end in real browsers: two demo pages that accept direct routes (?p2p=1).
// The server tells both to connect directly; when that cannot work the SDK falls back to the
// TURN relay, then to the SFU, with no user action. ?blockdirect=1 is the SDK's fault
// injection: it drops the peer's non-relay ICE candidates, as a NAT no direct path crosses.


type Win = { auralinkRoom: import('../src/client/room.js').Room };

interface Remote {
  identity: string;
  kind: string;
  source: string;
  route: string;
  frames: number;
  packets: number;
}

function remotes(page: Page): Promise<Remote[]> {
  return page.evaluate(async () => {
    const room = (window as unknown as Win).auralinkRoom;
    const out: Remote[] = [];
    for (const r of room.remote.values()) {
      let frames = 0;
      let packets = 0;
      (await r.getStats()).forEach((s: { type: string; kind?: string; framesDecoded?: number; packetsReceived?: number }) => {
        if (s.type !== 'inbound-rtp') return;
        frames += s.framesDecoded ?? 0;
        packets += s.packetsReceived ?? 0;
      });
      out.push({ identity: r.participantIdentity, kind: r.kind, source: r.source, route: r.route, frames, packets });
    }
    return out;
  });
}

/** Media from `other` reaches `page` on `route` and keeps flowing (video decoded, audio packets). */
async function flowing(page: Page, other: string, route: string, timeoutMs = 30_000): Promise<void> {
  const pick = (rs: Remote[], kind: string) => rs.find((r) => r.identity === other && r.kind === kind && r.route === route);
  await eventually(async () => {
    const rs = await remotes(page);
    return (pick(rs, 'video')?.frames ?? 0) > 3 && (pick(rs, 'audio')?.packets ?? 0) > 3;
  }, timeoutMs, `media from ${other} over ${route}`);
  const a = await remotes(page);
  await sleep(1000);
  const b = await remotes(page);
  assert.ok(pick(b, 'video')!.frames > pick(a, 'video')!.frames, `video from ${other} keeps being decoded over ${route}`);
  assert.ok(pick(b, 'audio')!.packets > pick(a, 'audio')!.packets, `audio from ${other} keeps arriving over ${route}`);
}


/** Waits for the page's media route; the error says where it is instead. */
async function onRoute(page: Page, route: string, timeoutMs = 30_000): Promise<void> {
  let last = '';
  try {
    await eventually(async () => (last = (await page.evaluate(() => document.body.dataset.route)) ?? '') === route, timeoutMs, `route ${route}`);
  } catch {
    const state = await page.evaluate(() => JSON.stringify((window as unknown as Win).auralinkRoom.signal.route));
    assert.fail(`route is ${last}, not ${route}; decision ${state}`);
  }
}

const connectionType = (page: Page): Promise<string | undefined> => page.evaluate(() => (window as unknown as Win).auralinkRoom.p2pConnectionType());

describe('P2P tier: a two-party call goes direct', () => {
  let t: TestServer;
  let browser: Browser;
  let pages: Record<string, Page>;
  before(async () => {
    t = await startServer({ development: true });
    browser = await launch();
    pages = await joinDemo(browser, t, 'p2p-direct', ['ann', 'ben'], 'p2p=1');
  });
  after(async () => {
    await browser?.close();
    await t?.close();
  });

  test('both pages connect directly and exchange audio and video without the SFU', async () => {
    for (const [me, other] of [['ann', 'ben'], ['ben', 'ann']] as const) {
      await onRoute(pages[me]!, 'p2p');
      await flowing(pages[me]!, other, 'p2p');
      assert.notEqual(await connectionType(pages[me]!), 'relay', 'a direct candidate pair, not TURN');
    }
    assert.equal(await t.metric('auralink_sfu_objects', { type: 'producer' }), 0, 'nothing published to the SFU');
    assert.ok(t.logs.some((l) => l.includes('"direct call"')));
  });

  test("a screen share added mid-call reaches the peer directly, labelled as a screen share", async () => {
    await pages.ann!.click('#screen');
    await eventually(async () => {
      const rs = await remotes(pages.ben!);
      return rs.some((r) => r.identity === 'ann' && r.source === 'screen_share' && r.route === 'p2p' && r.frames > 0);
    }, 20_000, "ben decoding ann's screen over the direct call");
    const cams = (await remotes(pages.ben!)).filter((r) => r.identity === 'ann' && r.kind === 'video');
    assert.deepEqual(cams.map((r) => r.source).sort(), ['camera', 'screen_share']);
    assert.equal(await t.metric('auralink_sfu_objects', { type: 'producer' }), 0, 'still nothing on the SFU');
  });

  test('a third participant moves the call to the SFU, and media keeps flowing there', async () => {
    const carol = await t.client('carol', 'p2p-direct');
    for (const [me, other] of [['ann', 'ben'], ['ben', 'ann']] as const) {
      await onRoute(pages[me]!, 'sfu');
      await flowing(pages[me]!, other, 'sfu');
    }
    assert.equal(await t.metric('auralink_sfu_objects', { type: 'producer' }), 5, "camera and microphone of both pages, and ann's screen");
    carol.close();
  });
});

describe('P2P tier: direct ICE blocked, the call falls back to the TURN relay', () => {
  let t: TestServer;
  let browser: Browser;
  let pages: Record<string, Page>;
  before(async () => {
    t = await startServer({
      development: true,
      mesh: { p2p_timeout_ms: 4000 },
      turn: { host: '127.0.0.1', allowed_peer_cidrs: ['127.0.0.0/8'] },
    });
    browser = await launch();
    pages = await joinDemo(browser, t, 'p2p-turn', ['ann', 'ben'], 'p2p=1&blockdirect=1');
  });
  after(async () => {
    await browser?.close();
    await t?.close();
  });

  test('with no direct path, both pages connect through TURN by themselves', async () => {
    for (const [me, other] of [['ann', 'ben'], ['ben', 'ann']] as const) {
      await onRoute(pages[me]!, 'turn');
      await flowing(pages[me]!, other, 'turn');
      assert.equal(await connectionType(pages[me]!), 'relay');
    }
    assert.ok(((await t.health()) as unknown as { turn: { allocations: number } }).turn.allocations >= 2, 'allocations on the embedded TURN server');
    assert.equal(await t.metric('auralink_sfu_objects', { type: 'producer' }), 0, 'still nothing on the SFU');
  });
});

describe('P2P tier: no direct path and no TURN, the call falls back to the SFU', () => {
  let t: TestServer;
  let browser: Browser;
  let pages: Record<string, Page>;
  before(async () => {
    t = await startServer({ development: true, mesh: { p2p_timeout_ms: 2000 }, turn: { mode: 'off' } });
    browser = await launch();
    pages = await joinDemo(browser, t, 'p2p-sfu', ['ann', 'ben'], 'p2p=1&blockdirect=1');
  });
  after(async () => {
    await browser?.close();
    await t?.close();
  });

  test('both pages end up on the SFU and receive each other', async () => {
    for (const [me, other] of [['ann', 'ben'], ['ben', 'ann']] as const) {
      await eventually(async () => (await pages[me]!.evaluate(() => document.body.dataset.route)) === 'sfu' && (await remotes(pages[me]!)).some((r) => r.route === 'sfu'), 30_000, `${me} on the SFU`);
      await flowing(pages[me]!, other, 'sfu');
    }
  });
});
