import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import type { SignalClient } from '../src/client/signalClient.js';
import { bytes, eventually, sleep, startServer, text, type TestServer } from './helpers.js';
import { edgeConfig } from './clusterNode.js';
import { PrivateRedis } from './redis.js';

// Issue 16: a node lost or drained loses no call. The client rejoins the room on another node
// the cluster named (JoinResponse.reconnectTargets / drain.reconnectTargets) by itself.

const redis = new PrivateRedis();
before(() => redis.start());
after(() => redis.dispose());
const nodeCfg = (p: string, id: string) => edgeConfig(redis.url, p, id, { sfu: { enabled: false }, drain: { timeout_s: 10 } });

const portOf = (url: string): string => new URL(url).port;
const nextData = (c: SignalClient): Promise<string> => c.next('data').then(([d]) => text(d.payload));

/** Two edge nodes that see each other in the mesh (so each names the other at join). */
async function pair(p: string, ids: [string, string]): Promise<[TestServer, TestServer]> {
  const nodes = await Promise.all(ids.map((id) => startServer(nodeCfg(p, id)))) as [TestServer, TestServer];
  for (const n of nodes) {
    await eventually(async () => ((await (await fetch(`${n.http}/health`)).json()) as { mesh?: { nodes: number } }).mesh?.nodes === 2, 8000, 'both nodes in the mesh');
  }
  return nodes;
}

describe('failover between edge nodes', () => {
  test("a SIGKILLed node's participant rejoins the room on the other node by itself; the others see it back, with no ghost", async () => {
    const p = `test:fo:${randomUUID().slice(0, 8)}:`;
    const [a, b] = await pair(p, ['edge-fa', 'edge-fb']);
    try {
      const alice = await a.client('alice', 'fo');
      const bob = await b.client('bob', 'fo');
      assert.deepEqual(alice.join.reconnectTargets?.map((t) => [t.nodeId, portOf(t.url), new URL(t.url).pathname]), [['edge-fb', portOf(b.url), '/rtc']]);
      const oldSid = alice.me.sid;
      const back = alice.next('reconnected', 15_000);
      const bobSeesAlice = new Promise<string>((resolve) => {
        bob.on('participantJoined', (info) => {
          if (info.identity === 'alice' && info.sid !== oldSid) resolve(info.sid);
        });
      });
      let closed = false;
      alice.on('closed', () => (closed = true));
      a.proc.kill('SIGKILL');
      const [{ resumed }] = await back;
      assert.equal(resumed, false, 'a fresh join on the other node');
      assert.equal(portOf(alice.url), portOf(b.url), 'alice is on node b now');
      assert.equal(alice.join.room.name, 'fo');
      assert.deepEqual(alice.join.otherParticipants.map((x) => x.identity), ['bob'], "the join lists the room's current state");
      const newSid = await bobSeesAlice;
      assert.equal(newSid, alice.me.sid);
      const got = nextData(bob);
      await alice.sendData(bytes('after the kill'));
      assert.equal(await got, 'after the kill');
      const toAlice = nextData(alice);
      await bob.sendData(bytes('welcome back'));
      assert.equal(await toAlice, 'welcome back');
      // Past the dead node's lease (3 heartbeats) and the reaper: alice's new entry stays.
      await sleep(1500);
      assert.equal(bob.participants.get('alice')?.sid, newSid, 'bob still has the new alice');
      assert.deepEqual((await bob.listParticipants()).map((x) => [x.identity, x.sid]).sort(), [['alice', newSid], ['bob', bob.me.sid]]);
      assert.equal(closed, false, 'the client never gave up');
      await alice.leave();
      await bob.leave();
    } finally {
      // a was killed on purpose: its close() only reports that.
      await Promise.all([a.close().catch(() => undefined), b.close()]);
    }
  });

  test('a draining node moves its participants to another node before its deadline; nobody is dropped, and the others see them go on, not leave and join', async () => {
    const p = `test:fd:${randomUUID().slice(0, 8)}:`;
    const [a, b] = await pair(p, ['edge-da', 'edge-db']);
    try {
      const alice = await a.client('alice', 'fd');
      const carol = await a.client('carol', 'fd');
      const bob = await b.client('bob', 'fd');
      const sids = { alice: alice.me.sid, carol: carol.me.sid };
      const seenByBob: string[] = [];
      bob.on('participantJoined', (i) => seenByBob.push(`joined:${i.identity}`));
      bob.on('participantLeft', (i) => seenByBob.push(`left:${i.identity}`));
      const events: string[] = [];
      for (const [name, c] of [['alice', alice], ['carol', carol]] as const) {
        c.on('drain', () => events.push(`${name}:drain`));
        c.on('reconnected', ({ resumed }) => events.push(`${name}:reconnected:${resumed}`));
        c.on('closed', () => events.push(`${name}:closed`));
      }
      const moved = Promise.all([alice.next('reconnected', 10_000), carol.next('reconnected', 10_000)]);
      const exit = a.stop(); // SIGTERM: drain
      await moved;
      assert.equal(portOf(alice.url), portOf(b.url));
      assert.equal(portOf(carol.url), portOf(b.url));
      assert.equal(await exit, 0, 'the drained node exits cleanly');
      assert.deepEqual(events.filter((e) => e.endsWith('closed')), [], 'nobody was dropped');
      assert.ok(events.indexOf('alice:drain') < events.indexOf('alice:reconnected:false'));
      // The same sessions on the new node: same sids; bob saw no one leave or join.
      assert.deepEqual({ alice: alice.me.sid, carol: carol.me.sid }, sids);
      assert.deepEqual(alice.join.otherParticipants.map((x) => x.identity).sort(), ['bob', 'carol']);
      await sleep(500);
      assert.deepEqual(seenByBob, [], 'bob saw nobody leave or join');
      assert.equal(bob.participants.get('alice')?.sid, sids.alice);
      // Everyone hears everyone on the remaining node.
      const got = Promise.all([nextData(bob), nextData(carol)]);
      await alice.sendData(bytes('moved'));
      assert.deepEqual(await got, ['moved', 'moved']);
      await eventually(async () => (await bob.listParticipants()).length === 3, 5000, 'three in the room');
      for (const c of [alice, carol, bob]) await c.leave();
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });
});
