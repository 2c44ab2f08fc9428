import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { RoomServiceClient } from 'livekit-server-sdk';
import WebSocket from 'ws';
import { createToken } from '../src/auth/token.js';
import { SignalClient, type WebSocketCtor } from '../src/client/signalClient.js';
import { bytes, eventually, KEY, SECRET, sleep, startServer, text, type TestServer } from './helpers.js';
import { edgeConfig } from './clusterNode.js';
import { PrivateRedis } from './redis.js';

// Issue 16 chaos: one node's clock 30 s ahead (an unsynchronised host). Nodes compare time
// through Redis's clock (util/clusterClock.ts): leases, node-to-node call stamps and token
// nbf/exp still behave. Without that, the fast node reaped its peers' leases at once and
// dropped their calls as stale, and refused tokens that were valid.

const redis = new PrivateRedis();
before(() => redis.start());
after(() => redis.dispose());
const SKEW_MS = 30_000;
const PRELOAD = new URL('./fixtures/skewClock.js', import.meta.url).href;

const nodeCfg = (p: string, id: string) => edgeConfig(redis.url, p, id, { sfu: { enabled: false } });

const join = (t: TestServer, identity: string, room: string, ttlSeconds = 6 * 3600): Promise<SignalClient> =>
  SignalClient.connect(t.url, createToken(KEY, SECRET, { identity, video: { roomJoin: true, room, canUpdateOwnMetadata: true }, ttlSeconds }), {
    WebSocket: WebSocket as unknown as WebSocketCtor,
  });

describe('a node whose clock is 30 s ahead', () => {
  const p = `test:sk:${randomUUID().slice(0, 8)}:`;
  let fast: TestServer;
  let b: TestServer;
  before(async () => {
    [fast, b] = await Promise.all([
      startServer(nodeCfg(p, 'edge-fast'), { NODE_OPTIONS: `--import=${PRELOAD}`, TEST_CLOCK_SKEW_MS: String(SKEW_MS) }),
      startServer(nodeCfg(p, 'edge-ok')),
    ]);
    for (const n of [fast, b]) {
      await eventually(async () => ((await (await fetch(`${n.http}/health`)).json()) as { mesh?: { nodes: number } }).mesh?.nodes === 2, 8000, 'both nodes in the mesh');
    }
  });
  after(async () => {
    await Promise.all([fast.close(), b.close()]);
  });

  test('it measures its offset against Redis', async () => {
    const h = (await (await fetch(`${fast.http}/health`)).json()) as { clock: { offsetMs: number } };
    assert.ok(Math.abs(h.clock.offsetMs + SKEW_MS) < 1000, `offset ${h.clock.offsetMs} ms`);
    assert.ok(fast.logs.some((l) => l.includes('clock differs from Redis')), 'it warned');
  });

  test('a token valid for 15 more seconds is accepted there (its own clock reads it as expired)', async () => {
    const carol = await join(fast, 'carol', 'sk-token', 15);
    assert.equal(carol.join.room.name, 'sk-token');
    await carol.leave();
  });

  test('leases hold (nobody reaped); data and node calls cross both ways', async () => {
    const alice = await join(fast, 'alice', 'sk');
    const bob = await join(b, 'bob', 'sk');
    const left: string[] = [];
    alice.on('participantLeft', (i) => left.push(i.identity));
    bob.on('participantLeft', (i) => left.push(i.identity));
    await eventually(() => bob.participants.has('alice') && alice.participants.has('bob'), 5000, 'each sees the other');
    // Many leases (3 heartbeats) long: nobody is reaped.
    await sleep(2000);
    assert.deepEqual(left, [], 'nobody was reaped');
    assert.equal((await bob.listParticipants()).length, 2);
    const toBob = bob.next('data').then(([d]) => text(d.payload));
    await alice.sendData(bytes('from the fast node'));
    assert.equal(await toBob, 'from the fast node');
    // RoomService on the other node acting on alice: a node-to-node call into the fast node.
    const updated = alice.next('participantUpdated', 5000);
    await new RoomServiceClient(b.http, KEY, SECRET).updateParticipant('sk', 'alice', { metadata: 'set from node b' });
    assert.equal((await updated)[0].metadata, 'set from node b');
    await alice.leave();
    await bob.leave();
  });
});
