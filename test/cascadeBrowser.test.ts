import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { find, joinDemo, launch, remoteStats, type TrackStat } from './chromium.js';
import { eventually, sleep, startServer, type TestServer } from './helpers.js';
import { edgeConfig } from './clusterNode.js';
import { PrivateRedis } from './redis.js';

// Real browsers on two nodes of one room: each page publishes camera (simulcast) and mic to
// its own node and receives the other's through the pipe between the nodes, with AIC on.

const redis = new PrivateRedis();

const stat = async (page: Page, identity: string, source: string): Promise<TrackStat | undefined> => find(await remoteStats(page), identity, source);

describe('real browsers on two nodes of one room', () => {
  const p = `test:casb:${randomUUID().slice(0, 8)}:`;
  let a: TestServer;
  let b: TestServer;
  let browser: Browser;
  let pages: Record<string, Page> = {};
  const cfg = (id: string) =>
    edgeConfig(redis.url, p, id, {
      development: true,
      // AIC's dynacast switches off a publisher's layers nobody needs: viewers on the other
      // node must count (a short hold-down, so a publisher starved of demand would stop soon).
      aic: { enabled: true, pause_hold_down_ms: 500 },
    });
  before(async () => {
    await redis.start();
    [a, b] = await Promise.all([startServer(cfg('casb-1')), startServer(cfg('casb-2'))]);
    browser = await launch();
    pages = { ...(await joinDemo(browser, a, 'xnode', ['alice'])), ...(await joinDemo(browser, b, 'xnode', ['bob'])) };
  });
  after(async () => {
    await browser?.close();
    await Promise.all([a?.close(), b?.close()]);
    await redis.dispose();
  });

  test("each page decodes the other node's camera and receives its mic; frames keep coming", async (t) => {
    for (const [me, other] of [['alice', 'bob'], ['bob', 'alice']] as const) {
      try {
        await eventually(async () => ((await stat(pages[me]!, other, 'camera'))?.framesDecoded ?? 0) > 0 && ((await stat(pages[me]!, other, 'microphone'))?.packetsReceived ?? 0) > 0, 20_000, `${me} receives ${other} across nodes`);
      } catch (err) {
        // What the page and both nodes had, for the report.
        const m = async (t: TestServer) => (await (await fetch(`${t.http}/metrics`)).text()).split('\n').filter((l) => /^auralink_(cascade|sfu_objects)/.test(l)).join(' | ');
        t.diagnostic(`${me} sees ${JSON.stringify(await remoteStats(pages[me]!))}`);
        t.diagnostic(`node a: ${await m(a)}`);
        t.diagnostic(`node b: ${await m(b)}`);
        for (const [n, srv] of [['a', a], ['b', b]] as const) for (const l of srv.logs.filter((x) => /"level":[45]0/.test(x)).slice(-15)) t.diagnostic(`node ${n} log: ${l.trim()}`);
        throw err;
      }
      await sleep(1500); // three hold-downs
      const f0 = (await stat(pages[me]!, other, 'camera'))!.framesDecoded;
      await eventually(async () => ((await stat(pages[me]!, other, 'camera'))?.framesDecoded ?? 0) > f0 + 10, 10_000, `${me}: frames keep being decoded`);
    }
    // A subscription the SDK had to try again (the cascade said why): in the report.
    for (const [n, srv] of [['a', a], ['b', b]] as const) for (const l of srv.logs.filter((x) => /"level":40.*cascade:/.test(x))) t.diagnostic(`node ${n}: ${l.trim()}`);
    // Camera and mic of each side crossed once each way, over one link.
    for (const t of [a, b]) {
      assert.equal(await t.metric('auralink_cascade_links'), 1);
      assert.equal(await t.metric('auralink_cascade_producers', { direction: 'in' }), 2);
      assert.equal(await t.metric('auralink_cascade_producers', { direction: 'out' }), 2);
    }
  });
});
