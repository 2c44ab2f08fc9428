// bench/mesh: route queries on a synthetic 10k-node / 100k-link mesh (uncached and cached), and
// heartbeat ingestion into the real Redis, each next to a baseline measured in the same run.
// Usage: npm run bench:mesh   (REDIS_URL, default redis://127.0.0.1:6379)
import { Redis } from 'ioredis';
import pino from 'pino';
import { MemoryRegistry } from '../src/mesh/memoryRegistry.js';
import { RoutePlanner, type Endpoint } from '../src/mesh/planner.js';
import { QualityPredictor } from '../src/mesh/quality.js';
import { RedisRegistry } from '../src/mesh/redisRegistry.js';
import { RouteCache } from '../src/mesh/routeCache.js';
import { RelayGraph } from '../src/mesh/graph.js';
import type { Link, MeshNode } from '../src/mesh/types.js';
import { pct } from './common.js';

const NODES = Number(process.env.NODES ?? 10_000);
const LINKS_PER_NODE = Number(process.env.LINKS_PER_NODE ?? 10);
const QUERIES = Number(process.env.QUERIES ?? 5_000);
const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

let seed = 7;
const rnd = (): number => {
  seed = (seed * 1103515245 + 12345) & 0x7fffffff;
  return seed / 0x7fffffff;
};

console.log(`bench/mesh: ${NODES} nodes, ${NODES * LINKS_PER_NODE} links, ${QUERIES} queries`);
const reg = new MemoryRegistry(3_600_000);
const pos: [number, number][] = [];
for (let i = 0; i < NODES; i++) {
  pos.push([rnd() * 1000, rnd() * 1000]);
  const n: MeshNode = {
    id: `n${i}`, role: i % 10 === 0 ? 'edge' : 'relay', region: `r${Math.floor(pos[i]![0] / 100)}`,
    addresses: { turn: [`turn:n${i}.example:3478`] }, capacity: 1000, load: Math.floor(rnd() * 900),
    trust: 10 + rnd() * 90, version: 'bench', registeredAt: 0, lastSeen: 0,
  };
  await reg.register(n);
}
// Links to random nodes in a neighbourhood (a grid bucket) plus a few long ones: a connected,
// geographic-ish mesh.
const links: Link[] = [];
for (let i = 0; i < NODES; i++) {
  for (let k = 0; k < LINKS_PER_NODE; k++) {
    const j = k < LINKS_PER_NODE - 2 ? (i + 1 + Math.floor(rnd() * 200)) % NODES : Math.floor(rnd() * NODES);
    if (j === i) continue;
    const d = Math.hypot(pos[i]![0] - pos[j]![0], pos[i]![1] - pos[j]![1]);
    links.push({ from: `n${i}`, to: `n${j}`, latencyMs: 1 + d * 0.05, lossPct: rnd() < 0.05 ? rnd() * 5 : 0, jitterMs: rnd() * 3, bandwidthKbps: 0, updatedAt: 0, source: 'probe' });
  }
}
await reg.reportLinks(links);
const snap = reg.snapshot();

let t = performance.now();
const graph = new RelayGraph(snap);
console.log(`  graph build (once per mesh change): ${(performance.now() - t).toFixed(1)} ms for ${graph.ids.length} usable nodes, ${graph.edgeCount} edges`);

const planner = new RoutePlanner(() => snap, new QualityPredictor(), 'auto');
const cache = new RouteCache(300_000, 100_000);
const endpoint = (): Endpoint => {
  const rtts: Record<string, number> = {};
  for (let k = 0; k < 5; k++) rtts[`n${Math.floor(rnd() * NODES)}`] = 5 + rnd() * 60;
  return { identity: `c${Math.floor(rnd() * 1e9)}`, rtts };
};
const queries = Array.from({ length: QUERIES }, () => ({ from: endpoint(), to: endpoint(), participants: 2, edgeId: `n${Math.floor(rnd() * NODES / 10) * 10}` }));
// Warm the JIT and the graph.
for (const q of queries.slice(0, 200)) planner.plan(q);

const uncached: number[] = [];
let multihop = 0;
for (const q of queries) {
  t = performance.now();
  const plan = planner.plan(q);
  uncached.push(performance.now() - t);
  if (plan.candidates.some((c) => c.tier === 'multihop')) multihop++;
  await cache.set(plan);
}
const cached: number[] = [];
for (const q of queries) {
  t = performance.now();
  const hit = cache.getLocal(planner.keyFor(q));
  cached.push(performance.now() - t);
  if (!hit) throw new Error('cache miss in the cached run');
}
// Baseline: a Map lookup of a precomputed key (what a cache hit cannot beat).
const keys = queries.map((q) => planner.keyFor(q));
const m = new Map(keys.map((k) => [k, 1]));
const base: number[] = [];
for (const k of keys) {
  t = performance.now();
  m.get(k);
  base.push(performance.now() - t);
}
const us = (ms: number): string => `${(ms * 1000).toFixed(1)} µs`;
console.log(`  uncached route query: p50 ${us(pct(uncached, 50))}, p99 ${us(pct(uncached, 99))} (target p99 < 1 ms; ${multihop} of ${QUERIES} plans have a multi-hop path)`);
console.log(`  cached route query:   p50 ${us(pct(cached, 50))}, p99 ${us(pct(cached, 99))} (target p99 < 50 µs; key computation + LRU)`);
console.log(`  baseline Map.get:     p50 ${us(pct(base, 50))}, p99 ${us(pct(base, 99))}`);

// ---- heartbeats into the real Redis ----
const prefix = `bench:${process.pid}:`;
const r = new RedisRegistry(REDIS_URL, prefix, 3_600_000, pino({ level: 'silent' }));
try {
  await r.start();
} catch (err) {
  console.log(`  heartbeats: skipped, Redis at ${REDIS_URL} unavailable (${(err as Error).message})`);
  process.exit(0);
}
const HB_NODES = 10_000;
const BATCH = 1000;
for (let i = 0; i < HB_NODES; i += BATCH) {
  await Promise.all(Array.from({ length: Math.min(BATCH, HB_NODES - i) }, (_, k) => r.register({ ...snap.nodes.get(`n${i + k}`)! })));
}
const DURATION = 3000;
let beats = 0;
t = performance.now();
let off = 0;
while (performance.now() - t < DURATION) {
  const batch = Array.from({ length: BATCH }, (_, k) => ({ id: `n${(off + k) % HB_NODES}`, load: k }));
  off += BATCH;
  // Two pipelines in flight, as several nodes/HTTP handlers would have.
  const [a, b] = await Promise.all([r.heartbeatMany(batch), r.heartbeatMany(batch.map((x) => ({ ...x, load: x.load + 1 })))]);
  beats += a.length + b.length;
}
const hbRate = beats / ((performance.now() - t) / 1000);
// Baseline: the same writes without the script's existence check (plain ZADD + HSET pipeline).
const raw = new Redis(REDIS_URL);
let rawOps = 0;
t = performance.now();
off = 0;
while (performance.now() - t < DURATION) {
  const send = (): Promise<unknown> => {
    const p = raw.pipeline();
    const now = Date.now();
    for (let k = 0; k < BATCH; k++) p.zadd(`${prefix}alive`, now, `n${(off + k) % HB_NODES}`).hset(`${prefix}load`, `n${(off + k) % HB_NODES}`, k);
    off += BATCH;
    return p.exec();
  };
  await Promise.all([send(), send()]);
  rawOps += 2 * BATCH;
}
const rawRate = rawOps / ((performance.now() - t) / 1000);
console.log(`  heartbeats (Lua, atomic, pipelined): ${Math.round(hbRate).toLocaleString('en')}/s (target >= 50,000/s)`);
console.log(`  baseline raw ZADD+HSET pipeline:     ${Math.round(rawRate).toLocaleString('en')}/s  -> ratio ${(hbRate / rawRate).toFixed(2)}`);
const keysLeft = await raw.keys(`${prefix}*`);
if (keysLeft.length) await raw.del(...keysLeft);
raw.disconnect();
await r.close();
