import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { find, joinDemo, launch, mediaState, remoteStats } from './chromium.js';
import { eventually, sleep, startServer, type TestServer } from './helpers.js';

// End to end in a real browser: two demo pages in one room (see chromium.ts).

describe('real browser end to end', () => {
  let t: TestServer;
  let browser: Browser;
  const pages: Record<string, Page> = {};

  before(async () => {
    t = await startServer({ development: true });
    browser = await launch();
    Object.assign(pages, await joinDemo(browser, t, 'e2e', ['alice', 'bob']));
  });

  after(async () => {
    await browser?.close();
    await t?.close();
  });

  test("each page receives the other's audio and video, and it keeps flowing", async () => {
    for (const [me, other] of [['alice', 'bob'], ['bob', 'alice']] as const) {
      await eventually(async () => {
        const s = await remoteStats(pages[me]!);
        return (find(s, other, 'camera')?.framesDecoded ?? 0) > 0 && (find(s, other, 'microphone')?.packetsReceived ?? 0) > 0;
      }, 20_000, `${me} receiving ${other}`);
    }
    const first = { alice: await remoteStats(pages.alice!), bob: await remoteStats(pages.bob!) };
    await sleep(1500);
    const second = { alice: await remoteStats(pages.alice!), bob: await remoteStats(pages.bob!) };
    for (const [me, other] of [['alice', 'bob'], ['bob', 'alice']] as const) {
      const v0 = find(first[me], other, 'camera')!.framesDecoded;
      const v1 = find(second[me], other, 'camera')!.framesDecoded;
      const a0 = find(first[me], other, 'microphone')!.packetsReceived;
      const a1 = find(second[me], other, 'microphone')!.packetsReceived;
      assert.ok(v1 > v0, `${me}: video frames from ${other} keep being decoded (${v0} -> ${v1})`);
      assert.ok(a1 > a0, `${me}: audio packets from ${other} keep arriving (${a0} -> ${a1})`);
    }
  });

  test('audio levels and the active speaker reach the pages', async () => {
    // Chromium's fake microphone beeps: the SFU's observers hear it.
    const levels = await pages.bob!.evaluate(
      () =>
        new Promise<number>((resolve) => {
          const room = (window as unknown as { auralinkRoom: import('../src/client/room.js').Room }).auralinkRoom;
          let n = 0;
          room.signal.on('audioLevels', (l) => (n += l.levels.length));
          setTimeout(() => resolve(n), 3000);
        }),
    );
    assert.ok(levels > 0, 'audio level reports arrived');
    for (const page of [pages.alice!, pages.bob!]) {
      await eventually(async () => {
        const { speaker, sids } = await page.evaluate(() => {
          const room = (window as unknown as { auralinkRoom: import('../src/client/room.js').Room }).auralinkRoom;
          return { speaker: room.activeSpeakerSid, sids: [room.me.sid, ...[...room.participants.values()].map((p) => p.sid)] };
        });
        return speaker !== null && sids.includes(speaker);
      }, 10_000, 'an active speaker among the participants');
    }
  });

  test("alice's screen share is seen by bob", async () => {
    await pages.alice!.click('#screen');
    await eventually(async () => (find(await remoteStats(pages.bob!), 'alice', 'screen_share')?.framesDecoded ?? 0) > 0, 20_000, 'bob decoding the screen share');
    assert.equal(await pages.bob!.locator('.tile .name', { hasText: 'alice (screen)' }).count(), 1);
  });

  test('a track the server cannot serve just now is subscribed on a later try; one refused for good, or unavailable too long, is reported', async () => {
    type Room = import('../src/client/room.js').Room;
    // On bob's page, the next `fails` consume asks for alice's screen share are refused with
    // `code` (as the server would: a real SignalRequestError); the page counts the asks and
    // records trackSubscriptionFailed.
    const refuse = (code: string, fails: number) =>
      pages.bob!.evaluate(
        async ({ code, fails }) => {
          const room = (window as unknown as { auralinkRoom: Room }).auralinkRoom;
          const w = window as unknown as { asks: number; failed: { code: string; source: string }[] };
          const real = (room.signal as unknown as { __real?: Room['signal']['request'] }).__real ?? room.signal.request.bind(room.signal);
          (room.signal as unknown as { __real: unknown }).__real = real;
          const Err = (await real('closeConsumer', { consumerId: 'none' }).then(
            () => Error,
            (e: Error) => e.constructor,
          )) as new (code: string, message: string, field?: string) => Error;
          w.asks = 0;
          w.failed ??= [];
          let left = fails;
          room.signal.request = ((kind: string, body: { producerId?: string }) => {
            const screen = [...room.signal.producers.values()].some((p) => p.producerId === body.producerId && p.source === 'screen_share');
            if (kind === 'consume' && screen) {
              w.asks++;
              if (left-- > 0) return Promise.reject(new Err(code, 'refused by the test', 'consume.producerId'));
            }
            return real(kind as 'consume', body as never);
          }) as Room['signal']['request'];
          if (!(window as unknown as { watching?: boolean }).watching) {
            (window as unknown as { watching: boolean }).watching = true;
            room.on('trackSubscriptionFailed', (f) => w.failed.push({ code: (f.error as Error & { code?: string }).code ?? '', source: f.source }));
          }
        },
        { code, fails },
      );
    const asks = () => pages.bob!.evaluate(() => (window as unknown as { asks: number }).asks);
    const failed = () => pages.bob!.evaluate(() => (window as unknown as { failed: { code: string; source: string }[] }).failed);
    const bobHasScreen = async () => !!find(await remoteStats(pages.bob!), 'alice', 'screen_share');
    // Alice shares her screen anew (it is on from the test before): bob is told a new producer.
    const reshare = async () => {
      await pages.alice!.click('#screen');
      await eventually(async () => !(await bobHasScreen()), 10_000, "bob's screen share tile gone");
      await pages.alice!.click('#screen');
    };

    await refuse('UNAVAILABLE', 2);
    await reshare();
    await eventually(async () => (find(await remoteStats(pages.bob!), 'alice', 'screen_share')?.framesDecoded ?? 0) > 0, 20_000, 'bob decoding the screen share after two refusals');
    assert.equal(await asks(), 3, 'asked three times: two refusals, then served');
    assert.deepEqual(await failed(), [], 'nothing reported');

    await refuse('PERMISSION_DENIED', 1000);
    await reshare();
    await eventually(async () => (await failed()).length === 1, 10_000, 'a refusal for good reported');
    assert.deepEqual(await failed(), [{ code: 'PERMISSION_DENIED', source: 'screen_share' }]);
    assert.equal(await asks(), 1, 'not asked again');

    await refuse('UNAVAILABLE', 1000);
    await reshare();
    await eventually(async () => (await failed()).length === 2, 15_000, 'still unavailable after the tries: reported');
    assert.deepEqual((await failed())[1], { code: 'UNAVAILABLE', source: 'screen_share' });
    assert.equal(await asks(), 5, 'asked five times (four tries again), then stopped');
    assert.equal(await bobHasScreen(), false);

    // Served again: a later share is received as before.
    await refuse('UNAVAILABLE', 0);
    await reshare();
    await eventually(async () => (find(await remoteStats(pages.bob!), 'alice', 'screen_share')?.framesDecoded ?? 0) > 0, 20_000, 'bob decoding the screen share');
  });

  test('a dropped signalling connection resumes the same session and restarts ICE; media keeps flowing', async () => {
    const restartsBefore = await t.metric('auralink_signal_messages_in_total', { type: 'restartIce' });
    const result = await pages.bob!.evaluate(
      () =>
        new Promise<{ before: string; after: string }>((resolve) => {
          const room = (window as unknown as { auralinkRoom: import('../src/client/room.js').Room }).auralinkRoom;
          const before = room.me.sid;
          room.once('reconnected', () => resolve({ before, after: room.me.sid }));
          room.signal.simulateDrop();
        }),
    );
    assert.equal(result.after, result.before, 'same participant after the resume');
    await eventually(async () => (await t.metric('auralink_signal_messages_in_total', { type: 'restartIce' })) >= restartsBefore + 2, 5000, 'ICE restarted on both transports');
    const v0 = find(await remoteStats(pages.bob!), 'alice', 'camera')!.framesDecoded;
    await eventually(async () => find(await remoteStats(pages.bob!), 'alice', 'camera')!.framesDecoded > v0 + 10, 10_000, 'video keeps flowing');
  });

  test('when the media worker dies, both pages get their media back without user action', async () => {
    const before = { alice: await remoteStats(pages.alice!), bob: await remoteStats(pages.bob!) };
    assert.ok(before.alice.length > 0 && before.bob.length > 0);
    const restored = Promise.all(
      ['alice', 'bob'].map((n) =>
        pages[n]!.evaluate(
          () =>
            new Promise<void>((resolve) =>
              (window as unknown as { auralinkRoom: import('../src/client/room.js').Room }).auralinkRoom.once('mediaRestored', () => resolve()),
            ),
        ),
      ),
    );
    const victim = (await t.health()).sfu!.workers[0]!.pid;
    process.kill(victim, 'SIGKILL');
    await restored;
    // New consumers: frames from the other side are decoded again, and keep coming.
    for (const [me, other] of [['alice', 'bob'], ['bob', 'alice']] as const) {
      await eventually(async () => (find(await remoteStats(pages[me]!), other, 'camera')?.framesDecoded ?? 0) > 10, 20_000, `${me} sees ${other} again`);
      await eventually(async () => (find(await remoteStats(pages[me]!), other, 'microphone')?.packetsReceived ?? 0) > 10, 20_000, `${me} hears ${other} again`);
    }
    assert.ok(!(await t.health()).sfu!.workers.some((w) => w.pid === victim), 'the worker was replaced');
  });

  test("leaving closes the other's consumers, and the server's", async () => {
    await pages.alice!.click('#leave');
    await eventually(async () => (await remoteStats(pages.bob!)).length === 0, 10_000, "bob's consumers of alice closed");
    await eventually(async () => (await t.metric('auralink_sfu_objects', { type: 'consumer' })) === 0, 5000, 'no consumers on the server');
    assert.equal(await t.metric('auralink_sfu_objects', { type: 'producer' }), 2, "only bob's camera and microphone are left");
    assert.equal(await pages.bob!.locator('.tile').count(), 1, "alice's tiles are gone from bob's page");
  });
});

describe('real browser through the embedded TURN relay', () => {
  let t: TestServer;
  let browser: Browser;
  const pages: Record<string, Page> = {};

  before(async () => {
    // The SFU is on loopback here, which the TURN peer filter denies by default: allow it.
    t = await startServer({ development: true, turn: { host: '127.0.0.1', allowed_peer_cidrs: ['127.0.0.0/8'] } });
    browser = await launch();
    // relay=1: iceTransportPolicy 'relay', TURN or nothing.
    Object.assign(pages, await joinDemo(browser, t, 'turn-e2e', ['carol', 'dave'], 'relay=1'));
  });

  after(async () => {
    await browser?.close();
    await t?.close();
  });

  test('media flows both ways with every transport relayed through TURN', async () => {
    for (const [me, other] of [['carol', 'dave'], ['dave', 'carol']] as const) {
      await eventually(async () => {
        const s = await remoteStats(pages[me]!);
        return (find(s, other, 'camera')?.framesDecoded ?? 0) > 5 && (find(s, other, 'microphone')?.packetsReceived ?? 0) > 5;
      }, 30_000, `${me} receiving ${other} through TURN`).catch(async (e: Error) => {
        throw new Error(`${e.message}; ${me}: ${await mediaState(pages[me]!)}; ${other}: ${await mediaState(pages[other]!)}`);
      });
      const types = await pages[me]!.evaluate(() =>
        (window as unknown as { auralinkRoom: import('../src/client/room.js').Room }).auralinkRoom.connectionTypes(),
      );
      assert.deepEqual(types, { producing: 'relay', consuming: 'relay' }, `${me}'s transports use relay candidates`);
    }
    const h = (await t.health()) as unknown as { turn: { allocations: number } };
    assert.ok(h.turn.allocations >= 4, `a send and a receive allocation per page (${h.turn.allocations})`);
  });
});
