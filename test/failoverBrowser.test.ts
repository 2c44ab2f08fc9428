import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { find, joinDemo, launch, remoteStats } from './chromium.js';
import { eventually, startServer, type TestServer } from './helpers.js';
import { edgeConfig } from './clusterNode.js';
import { PrivateRedis } from './redis.js';

// Issue 16, node loss with real media: alice's page on node a, bob's on node b. Node a is
// SIGKILLed mid-call; alice's SDK rejoins the room on node b by itself (the join named it),
// republishes camera and mic, and bob decodes her camera again. No page action.

const redis = new PrivateRedis();

const decoded = async (page: Page, identity: string, source: string): Promise<number> => find(await remoteStats(page), identity, source)?.framesDecoded ?? 0;

describe('a node lost mid-call, real browsers', () => {
  const p = `test:fob:${randomUUID().slice(0, 8)}:`;
  let a: TestServer;
  let b: TestServer;
  let browser: Browser;
  let pages: Record<string, Page> = {};
  const cfg = (id: string) => edgeConfig(redis.url, p, id, { development: true });
  before(async () => {
    await redis.start();
    [a, b] = await Promise.all([startServer(cfg('fob-1')), startServer(cfg('fob-2'))]);
    for (const n of [a, b]) {
      await eventually(async () => ((await (await fetch(`${n.http}/health`)).json()) as { mesh?: { nodes: number } }).mesh?.nodes === 2, 8000, 'both nodes in the mesh');
    }
    browser = await launch();
    pages = { ...(await joinDemo(browser, a, 'lost', ['alice'])), ...(await joinDemo(browser, b, 'lost', ['bob'])) };
  });
  after(async () => {
    await browser?.close();
    await Promise.all([a?.close().catch(() => undefined), b?.close()]);
    await redis.dispose();
  });

  test("alice's page moves to node b by itself and bob decodes her camera again", async (t) => {
    await eventually(async () => (await decoded(pages.bob!, 'alice', 'camera')) > 0 && (await decoded(pages.alice!, 'bob', 'camera')) > 0, 20_000, 'both decode each other across nodes');
    const killedAt = Date.now();
    a.proc.kill('SIGKILL');
    // Bob's old consumer of alice's camera ends with node a; a new one (alice republished on
    // node b) starts from 0 frames: wait for its frames.
    let lastSeen = await decoded(pages.bob!, 'alice', 'camera');
    let restarted = false;
    await eventually(
      async () => {
        const n = await decoded(pages.bob!, 'alice', 'camera');
        if (n < lastSeen) restarted = true; // a new track: its counter started again
        lastSeen = n;
        return restarted && n > 10;
      },
      30_000,
      "bob decodes alice's camera again",
    );
    t.diagnostic(`kill -> bob decodes alice's camera again (10 frames in): ${Date.now() - killedAt} ms`);
    const onB = await pages.alice!.evaluate(() => (window as unknown as { auralinkRoom?: { signal: { url: string } } }).auralinkRoom?.signal.url ?? '');
    assert.equal(new URL(onB).port, new URL(b.url).port, "alice's page is connected to node b");
    await eventually(async () => (await decoded(pages.alice!, 'bob', 'camera')) > 0, 20_000, "alice decodes bob's camera on node b");
  });
});
