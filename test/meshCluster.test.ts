import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { Redis } from 'ioredis';
import pgPkg from 'pg';
import pino from 'pino';
import { createToken } from '../src/auth/token.js';
import { RedisRegistry } from '../src/mesh/redisRegistry.js';
import type { MeshNode } from '../src/mesh/types.js';
import { eventually, KEY, SECRET, sleep, startServer, upgradeStatus, type TestServer } from './helpers.js';

// The mesh across real processes and the real Redis on 127.0.0.1:6379. Each suite uses its own
// key prefix, so runs never see each other's nodes.

const REDIS = 'redis://127.0.0.1:6379';
const pgClient = pgPkg.Client;
const quiet = pino({ level: 'silent' });
const prefix = (): string => `test:${randomBytes(4).toString('hex')}:`;
const meshToken = createToken(KEY, SECRET, { identity: 'test-tool', video: {}, mesh: true });

function node(id: string): MeshNode {
  return { id, role: 'relay', region: 'eu', addresses: {}, capacity: 10, load: 0, trust: 50, version: 't', registeredAt: 0, lastSeen: 0 };
}

async function cleanup(p: string): Promise<void> {
  const r = new Redis(REDIS);
  const keys = await r.keys(`${p}*`);
  if (keys.length) await r.del(...keys);
  r.disconnect();
}

describe('Redis node registry', () => {
  const p = prefix();
  let a: RedisRegistry;
  let b: RedisRegistry;
  before(async () => {
    a = new RedisRegistry(REDIS, p, 600, quiet);
    b = new RedisRegistry(REDIS, p, 600, quiet);
    await a.start();
    await b.start();
  });
  after(async () => {
    await a?.close();
    await b?.close();
    await cleanup(p);
  });

  test('a node registered on one is seen by the other; silence expires it within the TTL, announced once', async () => {
    const online: string[] = [];
    const offlineA: string[] = [];
    const offlineB: string[] = [];
    b.on('nodeOnline', (n) => online.push(n.id));
    a.on('nodeOffline', (id) => offlineA.push(id));
    b.on('nodeOffline', (id) => offlineB.push(id));
    await a.register(node('x'));
    await a.register(node('y'));
    await a.reportLinks([
      { from: 'x', to: 'y', latencyMs: 5, lossPct: 0, jitterMs: 0, bandwidthKbps: 0, updatedAt: Date.now(), source: 'probe' },
      { from: 'y', to: 'x', latencyMs: 5, lossPct: 0, jitterMs: 0, bandwidthKbps: 0, updatedAt: Date.now(), source: 'probe' },
    ]);
    await eventually(() => online.includes('x') && online.includes('y'), 2000, 'b sees x and y');
    const t0 = Date.now();
    // y keeps beating, x goes silent; both registries reap every 200 ms (only one wins each removal).
    while (Date.now() - t0 < 1500) {
      await a.heartbeat('y', 1);
      await Promise.all([a.reap(), b.reap()]);
      await sleep(200);
    }
    assert.deepEqual(offlineA, ['x']);
    assert.deepEqual(offlineB, ['x']);
    assert.deepEqual([...b.snapshot().nodes.keys()].sort(), ['y']);
    assert.equal(await a.heartbeat('x', 0), false, 'the expired node is told to register again');
    const redis = new Redis(REDIS);
    assert.equal(await redis.hlen(`${p}links`), 0, "x's links were removed from Redis with it");
    assert.equal(await redis.exists(`${p}linkidx:x`), 0);
    redis.disconnect();
  });

  test('trust survives re-registration (a node cannot reset its own trust)', async () => {
    await a.register(node('z'));
    assert.equal(await a.adjustTrust('z', -40), 10);
    await a.deregister('z');
    await a.register(node('z')); // claims trust 50 again
    await eventually(async () => (await b.get('z'))?.trust === 10, 2000, 'b sees z at trust 10');
    assert.equal((await a.get('z'))?.trust, 10);
  });

  test('heartbeats are batched: one round trip for many nodes', async () => {
    for (let i = 0; i < 50; i++) await a.register(node(`h${i}`));
    const ok = await a.heartbeatMany([...Array.from({ length: 50 }, (_, i) => ({ id: `h${i}`, load: i })), { id: 'nobody', load: 0 }]);
    assert.equal(ok.filter(Boolean).length, 50);
    assert.equal(ok.at(-1), false);
  });
});

describe('edge and relay nodes over Redis', () => {
  const p = prefix();
  const pg = `postgres://postgres@127.0.0.1:5432/test`;
  let edge: TestServer;
  let relay: TestServer;
  const mesh = (hb = 200) => ({ redis: { url: REDIS }, mesh: { redis_prefix: p, heartbeat_ms: hb, probe_interval_ms: 200 } });
  const api = async (s: TestServer, path: string, body?: unknown, token = meshToken): Promise<{ status: number; body: any }> => {
    const res = await fetch(`${s.http}${path}`, {
      method: body === undefined ? 'GET' : 'POST',
      headers: token ? { authorization: `Bearer ${token}` } : {},
      ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
    });
    return { status: res.status, body: await res.json() };
  };

  before(async () => {
    edge = await startServer({ node_id: 'edge-a', sfu: { enabled: false }, ...mesh(), database: { url: pg } });
    relay = await startServer({ node_id: 'relay-a', sfu: { enabled: false }, ...mesh(), mesh: { ...mesh().mesh, role: 'relay' } });
  });
  after(async () => {
    await edge?.close();
    await relay?.close().catch(() => undefined);
    await cleanup(p);
    const db = new pgClient({ connectionString: pg });
    await db.connect();
    await db.query(`DELETE FROM mesh_nodes WHERE id IN ('edge-a', 'relay-a', 'ext-1')`);
    await db.end();
  });

  test('both nodes register, see each other, and probe their links', async () => {
    for (const s of [edge, relay]) {
      await eventually(async () => (await api(s, '/internal/mesh/nodes')).body.nodes.length === 2, 3000, 'two nodes');
    }
    const { body } = await api(edge, '/internal/mesh/nodes');
    const r = body.nodes.find((n: MeshNode) => n.id === 'relay-a');
    assert.equal(r.role, 'relay');
    assert.match(r.addresses.turn[0], /^turn:127\.0\.0\.1:\d+\?transport=udp$/);
    assert.equal(r.trustLevel, 'provisional');
    const redis = new Redis(REDIS);
    await eventually(async () => (await redis.hexists(`${p}links`, 'edge-a>relay-a')) === 1 && (await redis.hexists(`${p}links`, 'relay-a>edge-a')) === 1, 3000, 'probed links');
    const l = JSON.parse((await redis.hget(`${p}links`, 'edge-a>relay-a'))!);
    redis.disconnect();
    assert.ok(l.latencyMs > 0 && l.latencyMs < 50 && l.lossPct === 0, JSON.stringify(l));
  });

  test('clients get nearby nodes to measure at join; their RTTs are kept in Redis with ages', async () => {
    const c = await edge.client('alice', 'rtt-room');
    const targets = (c.join.probeTargets ?? []).map((t) => t.nodeId).sort();
    assert.deepEqual(targets, ['edge-a', 'relay-a']);
    const measured = await c.measureMesh(2);
    assert.equal(measured.length, 2);
    for (const m of measured) assert.ok(m.rttMs > 0 && m.rttMs < 500 && m.lossPct === 0, JSON.stringify(m));
    const redis = new Redis(REDIS);
    await eventually(async () => (await redis.hlen(`${p}clink:alice`)) === 2, 2000, 'client links stored');
    const l = JSON.parse((await redis.hget(`${p}clink:alice`, 'relay-a'))!);
    assert.ok(l.latencyMs > 0 && Math.abs(Date.now() - l.updatedAt) < 5000);
    assert.ok((await redis.pttl(`${p}clink:alice`)) > 0, 'client links expire');
    redis.disconnect();
    c.close();
  });

  test('a relay node hosts no rooms: joins get 421 RELAY_NODE', async () => {
    const res = await upgradeStatus(`${relay.url}/rtc?access_token=${relay.token('u', 'room1')}`);
    assert.equal(res.status, 421);
    assert.equal(res.body.code, 'RELAY_NODE');
  });

  test('route query over the internal API: two-party P2P first, with the relay as TURN fallback', async () => {
    const res = await api(edge, '/internal/mesh/route/query', {
      from: { identity: 'alice', rtts: { 'relay-a': 10, 'edge-a': 20 } },
      to: { identity: 'bob', rtts: { 'relay-a': 15, 'edge-a': 25 } },
      participants: 2,
    });
    assert.equal(res.status, 200);
    assert.deepEqual(res.body.candidates.map((c: { tier: string }) => c.tier), ['p2p', 'turn', 'sfu']);
    assert.deepEqual(res.body.candidates[1].path, ['relay-a']);
    assert.equal(res.body.cached, false);
    const again = await api(edge, '/internal/mesh/route/query', {
      from: { identity: 'carol', rtts: { 'relay-a': 11, 'edge-a': 21 } },
      to: { identity: 'dan', rtts: { 'relay-a': 14, 'edge-a': 26 } },
      participants: 2,
    });
    assert.equal(again.body.cached, true, 'same nearest nodes, same plan: cached');
  });

  test('internal endpoints: no token 401, a room token 403, bad fields 400 naming the field, oversized 413', async () => {
    assert.equal((await api(edge, '/internal/mesh/nodes', undefined, '')).status, 401);
    assert.equal((await api(edge, '/internal/mesh/nodes', undefined, edge.token('x'))).status, 403);
    const bad = await api(edge, '/internal/mesh/register_node', { id: 'n1', role: 'boss', region: 'eu', addresses: {}, capacity: 1 });
    assert.equal(bad.status, 400);
    assert.equal(bad.body.field, 'role');
    assert.equal((await api(edge, '/internal/mesh/route/query', '{not json')).status, 400);
    assert.equal((await api(edge, '/internal/mesh/nodes/ghost/heartbeat', { load: 1 })).status, 404);
    assert.equal((await api(edge, '/internal/mesh/links', 'x'.repeat(300_000))).status, 413);
    // Registration + heartbeat over HTTP, as an external relay would.
    const reg = await api(edge, '/internal/mesh/register_node', { id: 'ext-1', role: 'relay', region: 'us', addresses: { http: 'http://127.0.0.1:9' }, capacity: 5 });
    assert.equal(reg.status, 200);
    assert.equal((await api(edge, '/internal/mesh/nodes/ext-1/heartbeat', { load: 2 })).status, 200);
    assert.equal((await edge.health()).connections, 0, 'still serving');
  });

  test('a relay that dies is removed within three heartbeats and routes through it are dropped', async () => {
    const q = {
      from: { identity: 'alice', rtts: { 'relay-a': 10, 'edge-a': 20 } },
      to: { identity: 'bob', rtts: { 'relay-a': 15, 'edge-a': 25 } },
      participants: 2,
    };
    assert.ok((await api(edge, '/internal/mesh/route/query', q)).body.candidates.some((c: { path: string[] }) => c.path.includes('relay-a')));
    relay.proc.kill('SIGKILL');
    const t0 = Date.now();
    await eventually(async () => !(await api(edge, '/internal/mesh/nodes')).body.nodes.some((n: MeshNode) => n.id === 'relay-a'), 3000, 'relay-a removed');
    const took = Date.now() - t0;
    assert.ok(took <= 200 * 3 + 400, `removed after ${took} ms (TTL 600 ms + one reap interval)`);
    const plan = (await api(edge, '/internal/mesh/route/query', q)).body;
    assert.equal(plan.cached, false, 'the cached plan through relay-a was invalidated');
    assert.ok(!plan.candidates.some((c: { path: string[] }) => c.path.includes('relay-a')));
    // The edge recorded the relay's life in PostgreSQL (mesh_nodes).
    const db = new pgClient({ connectionString: pg });
    await db.connect();
    try {
      await eventually(async () => {
        const r = await db.query(`SELECT role, first_seen, last_seen FROM mesh_nodes WHERE id = 'relay-a'`);
        return r.rows.length === 1 && r.rows[0].role === 'relay' && r.rows[0].last_seen > r.rows[0].first_seen;
      }, 5000, 'relay-a in mesh_nodes with its last_seen');
    } finally {
      await db.end();
    }
  });
});

const REDIS_START = ['--daemonize', 'yes', '--bind', '127.0.0.1', '-::1', '--port', '6379', '--save', '', '--appendonly', 'no', '--dir', '/var/lib/redis', '--logfile', '/var/log/redis/ci.log'];
const redisUp = async (): Promise<boolean> => {
  const r = new Redis(REDIS, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  try {
    await r.connect();
    return (await r.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    r.disconnect();
  }
};

describe('Redis outage (the real redis-server stopped and started)', () => {
  const p = prefix();
  let s: TestServer;
  before(async () => {
    s = await startServer({ node_id: 'edge-outage', sfu: { enabled: false }, redis: { url: REDIS }, mesh: { redis_prefix: p, heartbeat_ms: 200, probe_interval_ms: 0 } });
  });
  after(async () => {
    if (!(await redisUp())) execFileSync('redis-server', REDIS_START);
    await eventually(redisUp, 5000, 'redis back');
    await s?.close();
    await cleanup(p);
  });

  test('the node keeps serving while Redis is down and re-registers when it returns', async () => {
    const redis = new Redis(REDIS);
    await eventually(async () => (await redis.zscore(`${p}alive`, 'edge-outage')) !== null, 3000, 'registered');
    redis.disconnect();
    execFileSync('redis-cli', ['-p', '6379', 'shutdown', 'nosave']);
    await eventually(async () => !(await redisUp()), 3000, 'redis down');
    await sleep(1000); // several failed heartbeats
    const h = await s.health();
    assert.equal(h.participants, 0);
    const c = await s.client('during-outage', 'room-outage');
    assert.equal(c.join.room.name, 'room-outage', 'joins work without Redis');
    c.close();
    assert.ok((await s.metric('auralink_mesh_registry_errors_total')) > 0, 'the failures are counted');
    // The outage outlasted the TTL: when Redis returns (empty: it keeps nothing), the node is back.
    execFileSync('redis-server', REDIS_START);
    await eventually(redisUp, 5000, 'redis up');
    const again = new Redis(REDIS);
    await eventually(async () => (await again.zscore(`${p}alive`, 'edge-outage')) !== null && (await again.hexists(`${p}nodes`, 'edge-outage')) === 1, 10_000, 're-registered');
    again.disconnect();
  });

  test('a node started while Redis is down serves, then registers and hears events once Redis is up', async () => {
    execFileSync('redis-cli', ['-p', '6379', 'shutdown', 'nosave']);
    await eventually(async () => !(await redisUp()), 3000, 'redis down');
    const late = await startServer({ node_id: 'edge-late', sfu: { enabled: false }, redis: { url: REDIS }, mesh: { redis_prefix: p, heartbeat_ms: 200, probe_interval_ms: 0 } });
    try {
      const c = await late.client('early-bird', 'room-late');
      assert.equal(c.join.room.name, 'room-late');
      c.close();
      execFileSync('redis-server', REDIS_START);
      await eventually(redisUp, 5000, 'redis up');
      const r = new Redis(REDIS);
      await eventually(async () => (await r.zscore(`${p}alive`, 'edge-late')) !== null, 10_000, 'edge-late registered');
      r.disconnect();
      // Its event subscription works: a node registered elsewhere shows up in its mesh.
      const other = new RedisRegistry(REDIS, p, 600, quiet);
      await other.start();
      await other.register(node('someone-else'));
      await eventually(async () => {
        const { body } = await (await fetch(`${late.http}/internal/mesh/nodes`, { headers: { authorization: `Bearer ${meshToken}` } })).json().then((b) => ({ body: b as { nodes: MeshNode[] } }));
        return body.nodes.some((n) => n.id === 'someone-else');
      }, 5000, 'edge-late heard the online event');
      await other.close();
    } finally {
      await late.close();
    }
  });
});
