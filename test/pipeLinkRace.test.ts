// The link between two nodes made from both ends at once, in one process: two PipeRouters
// (each with its own worker pool, standing for a node), their node calls carried by a fake
// channel that can hold back a reply. Both orders of the race are driven on purpose, where
// the real cluster hits them only now and then (a browser's second track that never crossed).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { types } from 'mediasoup';
import pino from 'pino';
import { PipeRouter } from '../src/cluster/media/pipeRouter.js';
import type { MediaRooms } from '../src/cluster/media/mediaRooms.js';
import type { NodeClient, NodeHandlers } from '../src/cluster/nodeChannel.js';
import type { ClusterMethods } from '../src/cluster/nodeMethods.js';
import { SfuPeer } from '../src/sfu/sfuPeer.js';
import { SfuRoom } from '../src/sfu/sfuRoom.js';
import { WorkerPool } from '../src/sfu/workerPool.js';
import { opus } from './media.js';
import { sleep } from './helpers.js';

const log = pino({ level: 'silent' });
const ROOM = 'race';

interface Node {
  id: string;
  pool: WorkerPool;
  room: SfuRoom;
  router: PipeRouter;
  producerId: string;
  /** Pipe transports this node's room router made. */
  pipes: number;
}

/** Node calls between the routers; a reply to `hold.method` asked by `hold.from` waits `hold.ms`. */
class FakeChannel {
  readonly handlers = new Map<string, NodeHandlers<ClusterMethods>>();
  hold: { method: string; from: string; ms: number } | undefined;

  client(from: string): NodeClient<ClusterMethods> {
    const call = async (node: string, method: string, req: unknown): Promise<unknown> => {
      const h = this.handlers.get(node) as Record<string, (r: unknown, from: string) => Promise<unknown>> | undefined;
      if (!h?.[method]) throw new Error(`no ${method} on ${node}`);
      await sleep(1); // a hop of the channel
      const res = await h[method]!(structuredClone(req), from);
      if (this.hold && this.hold.method === method && this.hold.from === from) await sleep(this.hold.ms);
      return structuredClone(res);
    };
    return { call } as unknown as NodeClient<ClusterMethods>;
  }
}

describe('a room link made from both ends at once', () => {
  const channel = new FakeChannel();
  const nodes: Node[] = [];

  before(async () => {
    for (const [i, id] of ['n1', 'n2'].entries()) {
      const base = 47000 + i * 100;
      const pool = new WorkerPool({ workers: 1, codecs: ['opus'], logLevel: 'warn', listenIp: '127.0.0.1', announcedIp: '', webrtcPort: base, rtcMinPort: base + 1, rtcMaxPort: base + 99 }, log);
      await pool.start();
      const room = await SfuRoom.create(ROOM, 'RM_race', pool, { maxConsumersPerRouter: 500, activeSpeakerIntervalMs: 300, audioLevelIntervalMs: 1000 }, { activeSpeaker: () => undefined, audioLevels: () => undefined }, log);
      const rooms: MediaRooms = { get: (r) => (r === ROOM ? room : undefined), forLink: async () => room, unused: () => undefined };
      const router = new PipeRouter(rooms, channel.client(id), undefined, () => undefined, { nodeId: id, listenIp: '127.0.0.1', announcedIp: '', lingerMs: 60_000, lossSampleMs: 60_000, keyFrameRequestDelayMs: 0 }, log);
      channel.handlers.set(id, router.handlers() as NodeHandlers<ClusterMethods>);
      const node: Node = { id, pool, room, router, producerId: '', pipes: 0 };
      room.main.router.observer.on('newtransport', (t: types.Transport) => {
        if (t.constructor.name === 'PipeTransport') node.pipes++;
      });
      nodes.push(node);
    }
  });

  after(async () => {
    for (const n of nodes) {
      n.router.close();
      n.room.close();
      await n.pool.close();
    }
  });

  /** A fresh producer published on `n` (a DirectTransport: no media needed to pipe it). */
  async function publish(n: Node): Promise<string> {
    const t = await n.room.main.router.createDirectTransport();
    const p = await t.produce({ kind: 'audio', rtpParameters: JSON.parse(opus(Math.floor(Math.random() * 1e9))) as types.RtpParameters });
    await n.room.addProducer(p, new SfuPeer(`PA_${n.id}`, n.id), 'microphone');
    return p.id;
  }

  const pull = (to: Node, from: Node, producerId: string): Promise<boolean> => to.router.pull(ROOM, to.room, producerId, [from.id, to.id]);

  test("a node that uses the link before the other has the answer to its own link request is not refused: the message waits for the far end's id", async () => {
    const [n1, n2] = nodes as [Node, Node];
    const [p1, p2] = [await publish(n1), await publish(n2)];
    // n1 asks n2 for the link; n2 makes its end at once, but its answer reaches n1 only later.
    channel.hold = { method: 'media.link', from: 'n1', ms: 300 };
    const first = pull(n1, n2, p2);
    await sleep(100); // n2 has its end (connected to n1's) by now
    // n2 pulls n1's producer over its end: its media.pipe reaches n1 before n1 has the answer.
    const second = pull(n2, n1, p1);
    assert.deepEqual(await Promise.all([first, second]), [true, true], 'both pulls brought the producer');
    channel.hold = undefined;
    assert.ok(n1.room.producers.get(p2)?.remote, "n2's producer is piped in on n1");
    assert.ok(n2.room.producers.get(p1)?.remote, "n1's producer is piped in on n2");
    assert.deepEqual([n1.pipes, n2.pipes], [1, 1], 'one pipe transport per node');
    n1.router.closeRoom(ROOM);
    n2.router.closeRoom(ROOM);
  });

  test('both nodes opening the link at the same moment make one pipe transport each (the far request shares the one being made)', async () => {
    const [n1, n2] = nodes as [Node, Node];
    const before = [n1.pipes, n2.pipes];
    const [p1, p2] = [await publish(n1), await publish(n2)];
    // n1 is slow to make its end: n2's link request arrives while n1's own is being made.
    const r = n1.room.main.router;
    const make = r.createPipeTransport.bind(r);
    r.createPipeTransport = async (o) => {
      await sleep(50);
      return make(o);
    };
    try {
      assert.deepEqual(await Promise.all([pull(n1, n2, p2), pull(n2, n1, p1)]), [true, true]);
    } finally {
      r.createPipeTransport = make;
    }
    assert.deepEqual([n1.pipes - before[0]!, n2.pipes - before[1]!], [1, 1], 'one pipe transport per node for the room');
    n1.router.closeRoom(ROOM);
    n2.router.closeRoom(ROOM);
  });
});
