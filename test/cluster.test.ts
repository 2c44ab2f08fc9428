import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { Redis } from 'ioredis';
import { createServer } from 'node:http';
import pg from 'pg';
import { RoomServiceClient, WebhookReceiver } from 'livekit-server-sdk';
import { createToken } from '../src/auth/token.js';
import type { SignalClient } from '../src/client/signalClient.js';
import { bytes, eventually, KEY, SECRET, sleep, startServer, text, type TestServer } from './helpers.js';
import { publishAudio } from './media.js';
import { PrivateRedis } from './redis.js';

// One room over several edge nodes sharing one Redis (each test on its own key prefix).

const redis = new PrivateRedis();
const REDIS = redis.url;
const startRedis = (): Promise<void> => redis.start();
const stopRedis = (keep = false): Promise<void> => redis.stop(keep);
before(startRedis);
after(() => redis.dispose());
const PG = 'postgres://postgres@127.0.0.1:5432/test';

const nodeCfg = (p: string, id: string, extra: Record<string, unknown> = {}) => ({
  node_id: id,
  sfu: { enabled: false },
  redis: { url: REDIS },
  mesh: { redis_prefix: p, heartbeat_ms: 200, probe_interval_ms: 0 },
  // PostgreSQL, not embedded PGlite: three servers start in seconds, not tens of seconds.
  database: { url: PG },
  turn: { mode: 'off' },
  ...extra,
});

const keysUnder = (p: string): Promise<string[]> => redis.keys(`${p}cluster:*`);

const nextData = (c: SignalClient): Promise<string> => c.next('data').then(([d]) => text(d.payload));

describe('one room over three nodes', () => {
  const p = `test:cl:${randomUUID().slice(0, 8)}:`;
  let n: TestServer[] = [];
  before(async () => {
    n = await Promise.all([1, 2, 3].map((i) => startServer(nodeCfg(p, `edge-${i}`))));
  });
  after(async () => {
    await Promise.all(n.map((s) => s.close()));
    assert.deepEqual(await keysUnder(p), [], 'no directory keys left in Redis');
  });

  test('presence, metadata, data to all and to named identities, relay across nodes', async () => {
    const a = await n[0]!.client('alice', 'r1');
    const bJoined = a.next('participantJoined');
    const b = await n[1]!.client('bob', 'r1', { grant: { canUpdateOwnMetadata: true } });
    assert.equal((await bJoined)[0].identity, 'bob', 'alice (node 1) sees bob join on node 2');
    assert.deepEqual(b.join.otherParticipants.map((x) => x.identity), ['alice'], "bob's join lists alice on node 1");
    const cJoinedA = a.next('participantJoined');
    const cJoinedB = b.next('participantJoined');
    const c = await n[2]!.client('carol', 'r1', { grant: { roomAdmin: true } });
    await Promise.all([cJoinedA, cJoinedB]);
    assert.deepEqual(c.join.otherParticipants.map((x) => x.identity).sort(), ['alice', 'bob'], 'the join response lists the whole room');
    assert.deepEqual((await a.listParticipants()).map((x) => x.identity).sort(), ['alice', 'bob', 'carol']);

    // Data to everyone, from node 1: nodes 2 and 3 deliver it; the sender does not get it back.
    const atB = nextData(b);
    const atC = nextData(c);
    await a.sendData(bytes('hello all'));
    assert.deepEqual(await Promise.all([atB, atC]), ['hello all', 'hello all']);

    // Data to a named identity on another node: only it gets it.
    const onlyC = nextData(c);
    let bGot = 0;
    const count = (): void => void bGot++;
    b.on('data', count);
    await a.sendData(bytes('for carol'), { destinationIdentities: ['carol'] });
    assert.equal(await onlyC, 'for carol');
    const marker = nextData(b);
    await c.sendData(bytes('marker'), { destinationIdentities: ['bob'] });
    assert.equal(await marker, 'marker', 'the marker (sent after) reached bob, the targeted packet did not');
    assert.equal(bGot, 1);
    b.off('data', count);

    // Order per sender across nodes.
    const seen: string[] = [];
    const all = new Promise<void>((resolve) => {
      const on = ([d]: [{ payload: Uint8Array }]): void => {
        seen.push(text(d.payload));
        if (seen.length === 50) resolve();
      };
      c.on('data', (d) => on([d]));
    });
    for (let i = 0; i < 50; i++) a.publishData(bytes(String(i)));
    await all;
    assert.deepEqual(seen, Array.from({ length: 50 }, (_, i) => String(i)), 'in the order sent');

    // Metadata: participant update on node 2 and room metadata from node 3 reach node 1.
    const upd = a.next('participantUpdated');
    await b.updateParticipant({ name: 'Bobby' });
    assert.equal((await upd)[0].name, 'Bobby', "bob's update on node 2 reached node 1");
    const roomUpd = a.next('roomUpdated');
    await c.updateRoomMetadata('cluster-meta');
    assert.equal((await roomUpd)[0].metadata, 'cluster-meta');
    const late = await n[1]!.client('dave', 'r1');
    assert.equal(late.join.room.metadata, 'cluster-meta', 'a later joiner on another node sees the room metadata');
    assert.equal(late.join.otherParticipants.find((x) => x.identity === 'bob')?.name, 'Bobby', "and bob's new name");

    // P2P relay signal to a participant on another node.
    const rel = c.next('relay');
    await a.relay({ identity: 'carol', kind: 'OFFER', sdp: 'sdp-offer' });
    const [sig] = await rel;
    assert.equal(sig.identity, 'alice');
    assert.equal(sig.sdp, 'sdp-offer');

    // Leaving on node 2 is seen on nodes 1 and 3.
    const leftA = a.next('participantLeft');
    await late.leave();
    assert.equal((await leftA)[0].identity, 'dave');
    for (const x of [a, b, c]) await x.leave();
  });

  test('same identity on another node replaces the first connection, which is told why', async () => {
    const first = await n[0]!.client('same', 'r-dup', { autoResume: false });
    const watcher = await n[2]!.client('watch', 'r-dup');
    const told = first.next('disconnect');
    const closed = first.next('closed');
    const second = await n[1]!.client('same', 'r-dup');
    assert.equal((await told)[0].reason, 'DUPLICATE_IDENTITY');
    assert.equal((await closed)[0].code, 4001);
    await eventually(async () => (await watcher.listParticipants()).filter((x) => x.identity === 'same').length === 1, 3000, 'one "same" in the room');
    const list = await watcher.listParticipants();
    assert.equal(list.find((x) => x.identity === 'same')?.sid, second.me.sid, 'the room holds the second session');
    await second.leave();
    await watcher.leave();
  });

  test('a hidden participant on another node is not listed or announced, yet data and RemoveParticipant reach it', async () => {
    const svc = new RoomServiceClient(n[0]!.http, KEY, SECRET);
    const a = await n[0]!.client('alice', 'r-hid');
    let announced = 0;
    a.on('participantJoined', () => void announced++);
    const rec = await n[1]!.client('recorder', 'r-hid', { grant: { hidden: true } });
    const marker = a.next('participantJoined');
    await n[2]!.client('marker', 'r-hid');
    assert.equal((await marker)[0].identity, 'marker');
    assert.equal(announced, 1, 'alice was told of marker (joined after the recorder) only');
    assert.deepEqual((await svc.listParticipants('r-hid')).map((x) => x.identity).sort(), ['alice', 'marker']);
    const got = nextData(rec);
    await a.sendData(bytes('to the recorder'), { destinationIdentities: ['recorder'] });
    assert.equal(await got, 'to the recorder', 'data by identity reached the hidden participant on node 2');
    const told = rec.next('disconnect');
    await svc.removeParticipant('r-hid', 'recorder');
    assert.equal((await told)[0].reason, 'PARTICIPANT_REMOVED', 'RemoveParticipant on node 1 reached it on node 2');
    await a.leave();
  });

  test('a direct (P2P) call is between two participants of one node only: a third on another node moves it to the SFU', async () => {
    const ann = await n[0]!.client('ann', 'r-p2p', { p2p: true });
    const annRoute = ann.next('route');
    const ben = await n[0]!.client('ben', 'r-p2p', { p2p: true });
    assert.equal((await annRoute)[0].tier, 'p2p', 'two on node 1: a direct call');
    const back = ann.next('route');
    const cid = await n[1]!.client('cid', 'r-p2p', { p2p: true });
    assert.equal((await back)[0].tier, 'sfu', 'cid joined on node 2: ann and ben are moved to the SFU');
    // The other way round: one on node 2 already, two join node 1: no direct call is offered.
    let offered = 0;
    const dee = await n[1]!.client('dee', 'r-p2p2', { p2p: true });
    const eve = await n[0]!.client('eve', 'r-p2p2', { p2p: true });
    eve.on('route', () => void offered++);
    const fay = await n[0]!.client('fay', 'r-p2p2', { p2p: true });
    fay.on('route', () => void offered++);
    await eventually(async () => (await fay.listParticipants()).length === 3, 3000, 'fay sees the room');
    await sleep(300);
    assert.equal(offered, 0, 'no direct call between two of a room that spans nodes');
    for (const x of [ann, ben, cid, dee, eve, fay]) await x.leave();
  });

  test('two nodes given the same room name at the same instant make one room', async () => {
    const [x, y] = await Promise.all([n[0]!.client('race-1', 'r-race'), n[1]!.client('race-2', 'r-race')]);
    await eventually(async () => (await x.listParticipants()).length === 2 && (await y.listParticipants()).length === 2, 3000, 'both see both');
    assert.equal(x.join.room.sid, y.join.room.sid, 'one room session (one sid) on both nodes');
    await x.leave();
    await y.leave();
  });
});

describe('RoomService and webhooks over three nodes', () => {
  const p = `test:cls:${randomUUID().slice(0, 8)}:`;
  const room = `rs-${randomUUID().slice(0, 8)}`;
  const events: string[] = [];
  const verifier = new WebhookReceiver(KEY, SECRET);
  const hook = createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', () => {
      verifier.receive(body, req.headers.authorization).then(
        (ev) => {
          if (ev.room?.name === room) events.push(ev.participant ? `${ev.event}:${ev.participant.identity}` : ev.event);
          res.writeHead(200).end();
        },
        () => res.writeHead(401).end(),
      );
    });
  });
  let n: TestServer[] = [];
  before(async () => {
    await new Promise<void>((r) => hook.listen(0, '127.0.0.1', () => r()));
    const url = `http://127.0.0.1:${(hook.address() as { port: number }).port}/hook`;
    // Node 3 runs the SFU: carol publishes there, node 1 lists her track.
    n = await Promise.all(
      [1, 2, 3].map((i) => startServer(nodeCfg(p, `edge-s${i}`, { webhook: { urls: [url] }, room: { empty_timeout_s: 0.2 }, ...(i === 3 ? { sfu: { enabled: true } } : {}) }))),
    );
  });
  after(async () => {
    await Promise.all(n.map((s) => s.close()));
    await new Promise<void>((r) => hook.close(() => r()));
    assert.deepEqual(await keysUnder(p), []);
  });

  test('node 1 lists the room and its participants on nodes 2 and 3, removes one on node 3, deletes the room; one of each webhook, one calls row', async () => {
    const b = await n[1]!.client('bob', room);
    const c = await n[2]!.client('carol', room, { autoResume: false, grant: { canUpdateOwnMetadata: true } });
    const svc = new RoomServiceClient(n[0]!.http, KEY, SECRET);
    await eventually(async () => (await svc.listRooms([room])).length === 1, 3000, 'room listed on node 1');
    const [listed] = await svc.listRooms([room]);
    assert.equal(listed!.numParticipants, 2, 'node 1 (holding nobody) counts the participants of nodes 2 and 3');
    assert.equal(listed!.sid, b.join.room.sid);
    assert.deepEqual((await svc.listParticipants(room)).map((x) => x.identity).sort(), ['bob', 'carol']);
    assert.equal((await svc.getParticipant(room, 'carol')).sid, c.me.sid);
    // Tracks are in the directory: node 1 lists the track carol publishes on node 3, and
    // an admin mute from node 1 (run on node 3) shows in node 1's list.
    const producerId = await publishAudio(c);
    const carolTracks = async () => (await svc.listParticipants(room)).find((x) => x.identity === 'carol')?.tracks ?? [];
    await eventually(async () => (await carolTracks()).length === 1, 3000, "carol's track listed on node 1");
    assert.equal((await carolTracks())[0]!.sid, producerId);
    assert.equal((await carolTracks())[0]!.muted, false);
    assert.equal((await svc.listRooms([room]))[0]!.numPublishers, 1, 'one publisher in the room, counted on node 1');
    await svc.mutePublishedTrack(room, 'carol', producerId, true);
    await eventually(async () => (await carolTracks())[0]?.muted === true, 3000, 'the mute shows on node 1');
    const upd = b.next('participantUpdated');
    await svc.updateParticipant(room, 'carol', { metadata: 'from-node-1' });
    assert.equal((await upd)[0].metadata, 'from-node-1', 'the update ran on node 3 and reached bob on node 2');
    const data = b.next('data');
    await svc.sendData(room, bytes('server says'), 0 as never, { destinationIdentities: ['bob'] });
    assert.equal(text((await data)[0].payload), 'server says');
    const told = c.next('disconnect');
    const left = b.next('participantLeft');
    await svc.removeParticipant(room, 'carol');
    assert.equal((await told)[0].reason, 'PARTICIPANT_REMOVED', 'carol on node 3 was removed from node 1');
    assert.equal((await left)[0].identity, 'carol');
    await assert.rejects(svc.getParticipant(room, 'carol'), /not/);
    const gone = b.next('disconnect');
    await svc.deleteRoom(room);
    assert.equal((await gone)[0].reason, 'ROOM_DELETED', 'DeleteRoom on node 1 closed the room on node 2');
    await eventually(async () => (await svc.listRooms([room])).length === 0, 3000, 'room gone');
    // Nothing held on any node: no room subscription, no roster, no pending timer.
    for (const node of n) {
      await eventually(async () => (await node.metric('auralink_cluster_rooms_held')) === 0, 3000, 'no room held');
      assert.equal(await node.metric('auralink_cluster_remote_participants'), 0);
      assert.equal(await node.metric('auralink_cluster_pending_timers'), 0);
      assert.equal(await node.metric('auralink_cluster_redis_up'), 1);
    }
    const r = new Redis(REDIS);
    try {
      const [, subs] = (await r.pubsub('NUMSUB', `${p}cluster:ch:${room}`)) as [string, number];
      assert.equal(subs, 0, "nobody subscribed to the room's channel");
    } finally {
      r.disconnect();
    }
    const db = new pg.Client({ connectionString: PG });
    await db.connect();
    try {
      const want = [
        'participant_joined:bob',
        'participant_joined:carol',
        'participant_left:bob',
        'participant_left:carol',
        'room_finished',
        'room_started',
        'track_published:carol',
        'track_unpublished:carol',
      ];
      // Every outbox row of the room delivered (each node writes only what it emitted).
      await eventually(async () => {
        const { rows } = await db.query<{ n: string; pending: string }>(
          'SELECT count(*) AS n, count(*) FILTER (WHERE delivered_at IS NULL) AS pending FROM webhook_outbox WHERE room_name = $1',
          [room],
        );
        return Number(rows[0]!.n) === want.length && Number(rows[0]!.pending) === 0;
      }, 8000, 'one outbox row per event, all delivered');
      assert.deepEqual([...events].sort(), want, 'exactly one of each, delivered once');
      const { rows } = await db.query<{ id: string; status: string }>('SELECT id, status FROM calls WHERE room_name = $1', [room]);
      assert.deepEqual(rows, [{ id: b.join.room.sid, status: 'ended' }], 'one calls row for the session, ended');
    } finally {
      await db.end();
    }
  });
});

describe('room lifetime over nodes (LiveKit #4316, #3317)', () => {
  const p = `test:cll:${randomUUID().slice(0, 8)}:`;
  let n: TestServer[] = [];
  before(async () => {
    n = await Promise.all([1, 2].map((i) => startServer(nodeCfg(p, `edge-l${i}`, { room: { empty_timeout_s: 0.2 } }))));
  });
  after(async () => {
    await Promise.all(n.map((s) => s.close()));
    assert.deepEqual(await keysUnder(p), []);
  });

  test("one node's room emptying (its empty timeout) does not end the room another node still serves", async () => {
    const a = await n[0]!.client('alice', 'r-life');
    const b = await n[1]!.client('bob', 'r-life', { autoResume: false });
    const left = a.next('participantLeft');
    await b.leave();
    await left;
    // Node 2's room is empty: its timeout (0.2 s) closes it there and releases it.
    await eventually(async () => (await n[1]!.metric('auralink_cluster_rooms_held')) === 0, 3000, 'node 2 released the room');
    const svc = new RoomServiceClient(n[1]!.http, KEY, SECRET);
    const [listed] = await svc.listRooms(['r-life']);
    assert.equal(listed?.sid, a.join.room.sid, 'the room session lives on (node 1 serves alice)');
    assert.equal(listed?.numParticipants, 1);
    const c = await n[1]!.client('carol', 'r-life');
    assert.equal(c.join.room.sid, a.join.room.sid, 'a newcomer on node 2 joins the same session');
    assert.deepEqual(c.join.otherParticipants.map((x) => x.identity), ['alice']);
    await c.leave();
    await a.leave();
  });

  test('a room is never pruned for its age while its nodes are alive, and no directory key has a TTL', async () => {
    const a = await n[0]!.client('alice', 'r-old');
    const b = await n[1]!.client('bob', 'r-old');
    const r = new Redis(REDIS);
    try {
      // A session started 25 hours ago (LiveKit #3317 pruned such rooms at 24 h).
      await r.hset(`${p}cluster:r:r-old:meta`, 'created', String(Date.now() - 25 * 3600_000));
      await sleep(1000); // five heartbeats and reaper passes
      for (const k of await keysUnder(p)) assert.equal(await r.pttl(k), -1, `${k} has no expiry`);
      assert.deepEqual((await r.hkeys(`${p}cluster:r:r-old:parts`)).sort(), ['alice', 'bob']);
      const [listed] = await new RoomServiceClient(n[0]!.http, KEY, SECRET).listRooms(['r-old']);
      assert.equal(listed?.numParticipants, 2);
      const got = nextData(b);
      await a.sendData(bytes('still here'));
      assert.equal(await got, 'still here');
    } finally {
      r.disconnect();
    }
    await a.leave();
    await b.leave();
  });
});

describe('nodes each with their own embedded database', () => {
  const p = `test:cldb:${randomUUID().slice(0, 8)}:`;
  test("a participant on the node that did not start the session is recorded there (its call row too), nothing dead-lettered", async () => {
    // No database.url: each node its own PGlite (the default).
    const cfg = (id: string) => ({ ...nodeCfg(p, id), database: {} });
    const [a, b] = await Promise.all([startServer(cfg('edge-d1')), startServer(cfg('edge-d2'))]);
    try {
      const alice = await a.client('alice', 'rdb');
      const bob = await b.client('bob', 'rdb');
      const admin = createToken(KEY, SECRET, { identity: 'dash', video: { roomList: true } });
      const get = async (path: string): Promise<Record<string, unknown[]>> =>
        (await (await fetch(`${b.http}${path}`, { headers: { authorization: `Bearer ${admin}` } })).json()) as Record<string, unknown[]>;
      const sid = alice.join.room.sid;
      await eventually(async () => ((await get(`/api/v1/calls/${sid}/participants`)).participants ?? []).length === 1, 8000, "bob's row on node 2");
      assert.equal(((await get(`/api/v1/calls/${sid}/participants`)).participants![0] as { identity: string }).identity, 'bob');
      assert.deepEqual((await get('/api/v1/dead_letters')).dead_letters ?? [], [], 'no row refused on node 2');
      assert.ok(b.logs.some((l) => l.includes('with embedded PGlite')), 'the operator is told to share one PostgreSQL');
      await bob.leave();
      await alice.leave();
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });
});

describe('max_participants across nodes', () => {
  const p = `test:clm:${randomUUID().slice(0, 8)}:`;
  test('the third join is refused on whichever node it lands; a rejoin of a member is not', async () => {
    const cfg = (id: string) => nodeCfg(p, id, { room: { max_participants: 2 } });
    const [a, b] = await Promise.all([startServer(cfg('edge-m1')), startServer(cfg('edge-m2'))]);
    try {
      const x = await a.client('x', 'rm');
      const y = await b.client('y', 'rm');
      await assert.rejects(a.client('z', 'rm', { autoResume: false }), /403/, 'node 1 refuses (node 2 holds the second place)');
      await assert.rejects(b.client('z', 'rm', { autoResume: false }), /403/);
      const y2 = await a.client('y', 'rm'); // same identity: a replacement, not a third participant
      assert.deepEqual((await x.listParticipants()).map((q) => q.identity).sort(), ['x', 'y']);
      await y2.leave();
      await eventually(async () => (await x.listParticipants()).length === 1, 3000, 'y gone');
      void y;
      // One place left, two joins at once on two nodes: both pass the nodes' pre-checks, the
      // directory's script admits exactly one.
      const tries = await Promise.allSettled([a.client('w1', 'rm', { autoResume: false }), b.client('w2', 'rm', { autoResume: false })]);
      const won = tries.filter((t) => t.status === 'fulfilled');
      assert.equal(won.length, 1, 'exactly one of the two racing joins got the last place');
      const lost = tries.find((t) => t.status === 'rejected') as PromiseRejectedResult;
      assert.match(String(lost.reason), /403|ROOM_FULL/);
      assert.equal((await x.listParticipants()).length, 2);
      await (won[0] as PromiseFulfilledResult<SignalClient>).value.leave();
      await x.leave();
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
    assert.deepEqual(await keysUnder(p), []);
  });
});

describe('a node SIGKILLed mid-room', () => {
  const p = `test:clk:${randomUUID().slice(0, 8)}:`;
  test("its participants leave the room for everyone else and its entries are reaped", async () => {
    const a = await startServer(nodeCfg(p, 'edge-a'));
    const b = await startServer(nodeCfg(p, 'edge-b'));
    try {
      const alice = await a.client('alice', 'rk');
      const joined = alice.next('participantJoined');
      await b.client('bob', 'rk', { autoResume: false });
      await joined;
      const left = alice.next('participantLeft');
      b.proc.kill('SIGKILL');
      assert.equal((await left)[0].identity, 'bob', 'bob (on the killed node) left for alice');
      assert.deepEqual((await alice.listParticipants()).map((x) => x.identity), ['alice']);
      const r = new Redis(REDIS);
      try {
        const parts = await r.hkeys(`${p}cluster:r:rk:parts`);
        assert.deepEqual(parts, ['alice'], 'no ghost of bob in the directory');
        assert.equal(await r.zscore(`${p}cluster:alive`, 'edge-b'), null, "the dead node's lease is gone");
        assert.equal(await r.exists(`${p}cluster:n:edge-b`), 0);
      } finally {
        r.disconnect();
      }
      await alice.leave();
      // The same id restarted inherits nothing.
      const b2 = await startServer(nodeCfg(p, 'edge-b'));
      const carol = await b2.client('carol', 'rk');
      assert.deepEqual(carol.join.otherParticipants ?? [], [], 'nothing stale from the killed process');
      await carol.leave();
      // The CLI takes SIGTERM once its start has finished (the mesh registered after listening).
      await eventually(() => b2.logs.some((l) => l.includes('"meshNode":"edge-b"')), 5000, 'edge-b registered');
      await b2.close();
    } finally {
      await a.close();
      await b.stop().catch(() => undefined);
    }
    await eventually(async () => (await keysUnder(p)).length === 0, 3000, 'no keys left');
  });
});


for (const keep of [false, true]) describe(`Redis stopped and started mid-room (${keep ? 'its data kept, every lease lapsed' : 'empty after'})`, () => {
  const p = `test:clo:${randomUUID().slice(0, 8)}:`;
  test('each node serves its own participants meanwhile; cross-node delivery resumes and the directory is rebuilt from live state', async () => {
    const [a, b] = await Promise.all([startServer(nodeCfg(p, `edge-o1${keep}`)), startServer(nodeCfg(p, `edge-o2${keep}`))]);
    try {
      const alice = await a.client('alice', 'ro');
      const bob = await b.client('bob', 'ro');
      await eventually(async () => (await alice.listParticipants()).length === 2, 3000, 'alice sees bob');
      const flaps: string[] = [];
      bob.on('participantLeft', (x) => flaps.push(`left:${x.identity}`));
      alice.on('participantLeft', (x) => flaps.push(`left:${x.identity}`));
      await stopRedis(keep);
      await sleep(1000); // longer than a lease (600 ms)
      // Node 1 goes on: a newcomer is admitted locally and local data flows.
      const amyJoined = alice.next('participantJoined');
      const amy = await a.client('amy', 'ro');
      assert.equal((await amyJoined)[0].identity, 'amy');
      const got = nextData(amy);
      await alice.sendData(bytes('local while redis is down'));
      assert.equal(await got, 'local while redis is down');
      await startRedis();
      // Node 2 learns of the participant admitted during the outage, and its clients are
      // never told that the ones from before left (whichever node resyncs first).
      await eventually(() => bob.participants.has('amy'), 10_000, 'node 2 learns of the participant admitted during the outage');
      await eventually(() => bob.participants.has('alice'), 10_000, 'and still knows the one from before');
      const r = new Redis(REDIS);
      try {
        await eventually(async () => (await r.hkeys(`${p}cluster:r:ro:parts`)).sort().join() === 'alice,amy,bob', 5000, 'directory rebuilt');
      } finally {
        r.disconnect();
      }
      const atAlice = nextData(alice);
      await bob.sendData(bytes('cross-node again'));
      assert.equal(await atAlice, 'cross-node again');
      await sleep(1000); // past the later verify pass (a lease): it must not remove anyone either
      assert.deepEqual(flaps, [], 'nobody was told that a participant still in the room left');
      assert.equal(bob.participants.size, 2);
      for (const x of [alice, amy, bob]) await x.leave();
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
    await eventually(async () => (await keysUnder(p)).length === 0, 3000, 'no keys left');
  });
});
