import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { MemoryRegistry } from '../src/mesh/memoryRegistry.js';
import { learnedKeys, RoutePlanner, TIERS, type Endpoint, type RouteCandidate } from '../src/mesh/planner.js';
import { QualityPredictor, staticQuality, type PathMetrics } from '../src/mesh/quality.js';
import { RouteCache } from '../src/mesh/routeCache.js';
import { trustLevel, TRUST_LEVELS, trustDeltaFromFeedback } from '../src/mesh/trust.js';
import type { Link, MeshNode } from '../src/mesh/types.js';
import { prng } from './helpers.js';

// The mesh's domain logic, without sockets: registry semantics, the four tiers, trust,
// the learned predictor on a seeded network simulator, and cache invalidation.

function node(id: string, o: Partial<MeshNode> = {}): MeshNode {
  return {
    id,
    role: 'relay',
    region: 'eu',
    addresses: { http: `http://${id}.invalid`, turn: [`turn:${id}.invalid:3478`] },
    capacity: 100,
    load: 0,
    trust: 60,
    version: 'test',
    registeredAt: 0,
    lastSeen: 0,
    ...o,
  };
}
const link = (from: string, to: string, latencyMs: number, lossPct = 0): Link => ({
  from, to, latencyMs, lossPct, jitterMs: 1, bandwidthKbps: 0, updatedAt: 0, source: 'probe',
});
const both = (a: string, b: string, lat: number, loss = 0): Link[] => [link(a, b, lat, loss), link(b, a, lat, loss)];

describe('node registry (in-memory implementation of the same contract as Redis)', () => {
  test('a silent node expires after the TTL and nodeOffline fires once; heartbeats keep a node', async () => {
    let now = 1000;
    const r = new MemoryRegistry(3000, () => now);
    const offline: string[] = [];
    r.on('nodeOffline', (id) => offline.push(id));
    await r.register(node('a'));
    await r.register(node('b'));
    await r.reportLinks(both('a', 'b', 10));
    for (let i = 0; i < 4; i++) {
      now += 1000;
      assert.equal(await r.heartbeat('a', 3), true);
      await r.reap();
    }
    assert.deepEqual(offline, ['b'], 'b went silent for 4 s > 3 s TTL; a kept beating');
    assert.equal(r.snapshot().links.size, 0, "b's links went with it");
    assert.equal((await r.get('a'))?.load, 3);
    assert.equal(await r.heartbeat('b', 0), false, 'an expired node is told to register again');
    await r.reap();
    assert.deepEqual(offline, ['b'], 'published once');
  });
});

describe('trust', () => {
  test('six levels over 0-100, suspended below 20', () => {
    assert.equal(TRUST_LEVELS.length, 6);
    assert.deepEqual([0, 19.9, 20, 45, 60, 85, 95, 100].map(trustLevel), [
      'suspended', 'suspended', 'untrusted', 'provisional', 'trusted', 'established', 'verified', 'verified',
    ]);
  });

  test('feedback and abuse reports move trust, clamped, and crossing a level is announced', async () => {
    const r = new MemoryRegistry(3000);
    await r.register(node('x', { trust: 21 }));
    const changes: [string, number][] = [];
    r.on('trustChanged', (id, t) => changes.push([id, t]));
    await r.adjustTrust('x', trustDeltaFromFeedback(90, true));
    assert.equal((await r.get('x'))?.trust, 21.5);
    await r.adjustTrust('x', trustDeltaFromFeedback(0, false));
    assert.equal((await r.get('x'))?.trust, 16.5);
    assert.deepEqual(changes, [['x', 16.5]], 'dropping into suspended is announced');
    await r.adjustTrust('x', -500);
    assert.equal((await r.get('x'))?.trust, 0);
  });
});

describe('route planner: four tiers', () => {
  async function mesh(): Promise<{ r: MemoryRegistry; p: RoutePlanner }> {
    const r = new MemoryRegistry(3000);
    await r.register(node('edge', { role: 'edge' }));
    for (const id of ['r1', 'r2', 'r3', 'r4']) await r.register(node(id));
    await r.reportLinks([...both('r1', 'r2', 20), ...both('r2', 'r4', 20), ...both('r1', 'r3', 5), ...both('r3', 'r4', 5)]);
    return { r, p: new RoutePlanner(() => r.snapshot(), new QualityPredictor(), 'auto') };
  }
  const alice: Endpoint = { identity: 'alice', rtts: { r1: 10, edge: 40 } };
  const bob: Endpoint = { identity: 'bob', rtts: { r4: 12, edge: 50 } };

  test('a two-party call: P2P first, then its fallbacks (TURN, multi-hop, SFU), each with predicted quality', async () => {
    const { p } = await mesh();
    const plan = p.plan({ from: alice, to: bob, participants: 2, edgeId: 'edge' });
    assert.equal(plan.candidates[0]!.tier, 'p2p');
    assert.deepEqual(new Set(plan.candidates.map((c) => c.tier)), new Set(TIERS));
    const multi = plan.candidates.find((c) => c.tier === 'multihop')!;
    assert.deepEqual(multi.path, ['r1', 'r3', 'r4'], 'the cheaper of the two relay paths (5+5 ms, not 20+20)');
    for (const c of plan.candidates) assert.ok(c.predictedQuality > 0 && c.predictedQuality <= 100);
    const rest = plan.candidates.slice(1).map((c) => c.predictedQuality);
    assert.deepEqual(rest, [...rest].sort((a, b) => b - a), 'fallbacks ordered by predicted quality');
  });

  test('rooms above two participants go to the SFU first; policy sfu does too', async () => {
    const { p } = await mesh();
    assert.equal(p.plan({ from: alice, to: bob, participants: 5, edgeId: 'edge' }).candidates[0]!.tier, 'sfu');
    assert.equal(p.plan({ from: alice, to: bob, participants: 2, edgeId: 'edge', policy: 'sfu' }).candidates[0]!.tier, 'sfu');
  });

  test('no P2P candidate when both ends are behind symmetric NAT', async () => {
    const { p } = await mesh();
    const plan = p.plan({ from: { ...alice, nat: 'symmetric' }, to: { ...bob, nat: 'symmetric' }, participants: 2, edgeId: 'edge' });
    assert.ok(!plan.candidates.some((c) => c.tier === 'p2p'));
  });

  test('nodes under trust 20 are never used; relay choice is trust-weighted', async () => {
    const { r, p } = await mesh();
    await r.adjustTrust('r3', -50); // 60 -> 10: suspended
    const plan = p.plan({ from: alice, to: bob, participants: 2, edgeId: 'edge' });
    const multi = plan.candidates.find((c) => c.tier === 'multihop')!;
    assert.deepEqual(multi.path, ['r1', 'r2', 'r4'], 'the longer path, because r3 is suspended');
    for (const c of plan.candidates) assert.ok(!c.path.includes('r3'));

    // Two TURN relays both can reach: the trusted one wins over a slightly nearer untrusted one.
    const r2 = new MemoryRegistry(3000);
    await r2.register(node('near', { trust: 25 }));
    await r2.register(node('trusted', { trust: 98 }));
    const p2 = new RoutePlanner(() => r2.snapshot(), new QualityPredictor(), 'auto');
    const q = (nearRtt: number) =>
      p2.plan({ from: { identity: 'a', rtts: { near: nearRtt, trusted: 40 } }, to: { identity: 'b', rtts: { near: nearRtt, trusted: 40 } }, participants: 2, edgeId: 'x' })
        .candidates.find((c) => c.tier === 'turn')!.path[0];
    assert.equal(q(35), 'trusted', '35 ms at trust 25 loses to 40 ms at trust 98');
    assert.equal(q(10), 'near', 'but a much nearer relay still wins');
  });
});

describe('quality prediction learns from route feedback (seeded network simulator)', () => {
  test('after feedback its error is clearly lower than the static formula, and route choice improves', async () => {
    const rnd = prng(42);
    const N = 40;
    const r = new MemoryRegistry(3000);
    const pos = new Map<string, [number, number]>();
    const hiddenNode = new Map<string, number>(); // quality points a node costs that no probe sees
    const hiddenLoss = new Map<string, number>(); // loss % on some links that probes miss
    for (let i = 0; i < N; i++) {
      const id = `n${i}`;
      pos.set(id, [rnd() * 100, rnd() * 100]);
      hiddenNode.set(id, rnd() < 0.25 ? 8 + rnd() * 12 : 0);
      await r.register(node(id, { load: Math.floor(rnd() * 95), capacity: 100 }));
    }
    const dist = (a: [number, number], b: [number, number]): number => Math.hypot(a[0] - b[0], a[1] - b[1]);
    const links: Link[] = [];
    for (const [a, pa] of pos) {
      const near = [...pos].filter(([b]) => b !== a).sort((x, y) => dist(pa, x[1]) - dist(pa, y[1])).slice(0, 6);
      for (const [b, pb] of near) {
        links.push(link(a, b, 2 + dist(pa, pb) * 0.6));
        if (rnd() < 0.2) hiddenLoss.set(`${a}>${b}`, 2 + rnd() * 4);
      }
    }
    await r.reportLinks(links);
    const snap = r.snapshot();

    // The truth the simulator knows: what the static formula sees plus hidden per-node and
    // per-link effects, relay overhead per hop, load past 60%, and noise.
    const truth = (c: RouteCandidate): number => {
      let lossExtra = 0;
      let nodePenalty = 0;
      for (const k of learnedKeys(c.path)) {
        if (k.startsWith('n:')) nodePenalty += hiddenNode.get(k.slice(2)) ?? 0;
        else lossExtra += hiddenLoss.get(k) ?? 0;
      }
      const m: PathMetrics = { ...c.metrics, lossPct: c.metrics.lossPct + lossExtra };
      const loadPenalty = Math.max(0, c.metrics.maxLoad - 0.6) * 40;
      return Math.max(0, Math.min(100, staticQuality(m) - nodePenalty - 3 * c.metrics.hops - loadPenalty + (rnd() - 0.5) * 4));
    };
    const client = (): Endpoint => {
      const p: [number, number] = [rnd() * 100, rnd() * 100];
      const rtts: Record<string, number> = {};
      for (const [id, q] of pos) if (dist(p, q) < 35) rtts[id] = 4 + dist(p, q) * 1.2;
      return { identity: `c${Math.floor(rnd() * 1e9)}`, rtts };
    };
    const predictor = new QualityPredictor();
    const planner = new RoutePlanner(() => snap, predictor, 'quality');
    const sample = (): RouteCandidate[] =>
      planner.plan({ from: client(), to: client(), participants: 2, edgeId: `n${Math.floor(rnd() * N)}` }).candidates.filter((c) => c.tier !== 'p2p');

    const evaluate = (): { staticMae: number; learnedMae: number; chosenTruth: number } => {
      let s = 0;
      let l = 0;
      let n = 0;
      let chosen = 0;
      let calls = 0;
      for (let i = 0; i < 600; i++) {
        const cands = sample();
        if (cands.length === 0) continue;
        calls++;
        chosen += truth([...cands].sort((a, b) => b.predictedQuality - a.predictedQuality)[0]!);
        for (const c of cands) {
          const t = truth(c);
          s += Math.abs(c.staticQuality - t);
          l += Math.abs(c.predictedQuality - t);
          n++;
        }
      }
      return { staticMae: s / n, learnedMae: l / n, chosenTruth: chosen / calls };
    };

    const before = evaluate();
    assert.ok(Math.abs(before.learnedMae - before.staticMae) < 1e-9, 'untrained, the model is the static formula');
    // Feedback: calls placed on candidates (explored at random), reporting the quality they got.
    for (let i = 0; i < 4000; i++) {
      const cands = sample();
      const c = cands[Math.floor(rnd() * cands.length)];
      if (c) predictor.learn(c.metrics, TIERS.indexOf(c.tier), learnedKeys(c.path), truth(c));
    }
    const after = evaluate();
    console.log(`static MAE ${after.staticMae.toFixed(2)}, learned MAE ${after.learnedMae.toFixed(2)}; chosen route true quality ${before.chosenTruth.toFixed(1)} -> ${after.chosenTruth.toFixed(1)}`);
    assert.ok(after.learnedMae < after.staticMae * 0.5, `learned error ${after.learnedMae.toFixed(2)} is under half the static ${after.staticMae.toFixed(2)}`);
    assert.ok(after.chosenTruth > before.chosenTruth + 2, 'routes picked on the learned prediction are really better');
  });
});

describe('route cache', () => {
  test('a plan is served from cache until a node on it goes offline or a link of it degrades', async () => {
    const r = new MemoryRegistry(3000);
    await r.register(node('edge', { role: 'edge' }));
    for (const id of ['r1', 'r2']) await r.register(node(id));
    await r.reportLinks(both('r1', 'r2', 10));
    const planner = new RoutePlanner(() => r.snapshot(), new QualityPredictor(), 'auto');
    const cache = new RouteCache(300_000, 100);
    r.on('nodeOffline', (id) => void cache.invalidateNode(id));
    r.on('linkDegraded', (l) => {
      void cache.invalidateNode(l.from);
      void cache.invalidateNode(l.to);
    });
    const q = { from: { identity: 'a', rtts: { r1: 10 } }, to: { identity: 'b', rtts: { r2: 10 } }, participants: 2, edgeId: 'edge' };
    const get = async (): Promise<boolean> => {
      const prepared = planner.prepare(q);
      if (await cache.get(prepared.key)) return true;
      await cache.set(planner.plan(q, prepared));
      return false;
    };
    assert.equal(await get(), false);
    assert.equal(await get(), true, 'second query hits');
    await r.reportLinks([link('r1', 'r2', 80)]); // 10 -> 80 ms: degraded
    assert.equal(await get(), false, 'invalidated by the degraded link');
    assert.equal(await get(), true);
    await r.deregister('r2');
    assert.equal(cache.size, 0, 'invalidated at once when r2 left');
    const plan = planner.plan(q);
    assert.ok(!plan.candidates.some((c) => c.path.includes('r2')), 'and r2 is gone from new plans');
  });
});

describe('media paths between nodes (the cascade)', () => {
  async function mesh(links: ReturnType<typeof both>, relayTrust = 50): Promise<RoutePlanner> {
    const r = new MemoryRegistry(3000);
    for (const id of ['A', 'B']) await r.register(node(id, { role: 'edge' }));
    await r.register(node('R1', { role: 'relay', trust: relayTrust }));
    await r.register(node('R2', { role: 'relay' }));
    await r.register(node('E3', { role: 'edge' }));
    await r.reportLinks(links);
    return new RoutePlanner(() => r.snapshot(), new QualityPredictor(), 'auto');
  }

  test('through relays when A and B have no link; the cheaper relay; nothing measured: none', async () => {
    const p = await mesh([...both('A', 'R1', 3), ...both('R1', 'B', 3), ...both('A', 'R2', 10), ...both('R2', 'B', 10)]);
    assert.deepEqual(p.mediaPath('A', 'B')?.path, ['A', 'R1', 'B']);
    assert.equal(p.mediaPath('A', 'E3'), undefined, 'no measured link to E3');
  });

  test('a direct link wins a near tie (a hop costs forwarding the probes do not see), and loses when lossy', async () => {
    const near = await mesh([...both('A', 'B', 2), ...both('A', 'R1', 0.5), ...both('R1', 'B', 0.5)]);
    assert.deepEqual(near.mediaPath('A', 'B')?.path, ['A', 'B']);
    const lossy = await mesh([...both('A', 'B', 2, 30), ...both('A', 'R1', 0.5), ...both('R1', 'B', 0.5)]);
    assert.deepEqual(lossy.mediaPath('A', 'B')?.path, ['A', 'R1', 'B']);
    const current = lossy.mediaPath('A', 'B', ['A', 'B'])!;
    assert.ok(current.currentCost! > current.cost, 'the current (lossy) path costs more than the best');
  });

  test('edges are never hops, and a relay under trust 20 is never used', async () => {
    const viaEdge = await mesh([...both('A', 'E3', 1), ...both('E3', 'B', 1)]);
    assert.equal(viaEdge.mediaPath('A', 'B'), undefined);
    const untrusted = await mesh([...both('A', 'R1', 1), ...both('R1', 'B', 1), ...both('A', 'R2', 20), ...both('R2', 'B', 20)], 10);
    assert.deepEqual(untrusted.mediaPath('A', 'B')?.path, ['A', 'R2', 'B']);
  });
});
