import { LRUCache } from 'lru-cache';
import type { Redis } from 'ioredis';
import type { RoutePlan } from './planner.js';

/**
 * Routes cached in two levels: an in-process LRU (microseconds) in front of Redis (shared by
 * the cluster, 5-minute TTL). Every cached plan is indexed by the nodes it uses, so a node
 * going offline or a degraded link drops exactly the plans through it. Nothing is broadcast:
 * every node hears the registry's own events (node offline, link degraded, trust dropped;
 * Redis pub/sub in a cluster) and its MeshService drops its local entries and the shared
 * Redis ones; the TTL bounds what a node that missed an event can still serve.
 */
export class RouteCache {
  private readonly lru: LRUCache<string, RoutePlan>;
  private readonly byNode = new Map<string, Set<string>>();
  hits = 0;
  misses = 0;

  constructor(
    private readonly ttlMs: number,
    max: number,
    private readonly redis?: { client: Redis; prefix: string },
  ) {
    this.lru = new LRUCache<string, RoutePlan>({
      max,
      ttl: ttlMs,
      dispose: (plan, key) => this.unindex(plan, key),
    });
  }

  get size(): number {
    return this.lru.size;
  }

  /** In-process only (the synchronous fast path). */
  getLocal(key: string): RoutePlan | undefined {
    const p = this.lru.get(key);
    if (p) this.hits++;
    return p;
  }

  /** LRU, then Redis; a Redis hit is kept locally too. Redis errors count as misses. */
  async get(key: string): Promise<RoutePlan | undefined> {
    const local = this.getLocal(key);
    if (local) return local;
    if (this.redis) {
      try {
        const json = await this.redis.client.get(this.redis.prefix + 'route:' + key);
        if (json) {
          const plan = JSON.parse(json) as RoutePlan;
          this.setLocal(plan);
          this.hits++;
          return plan;
        }
      } catch {
        /* Redis away: compute instead */
      }
    }
    this.misses++;
    return undefined;
  }

  async set(plan: RoutePlan): Promise<void> {
    this.setLocal(plan);
    if (!this.redis) return;
    const { client, prefix } = this.redis;
    const pipe = client.pipeline().set(prefix + 'route:' + plan.key, JSON.stringify(plan), 'PX', this.ttlMs);
    for (const n of nodesOf(plan)) pipe.sadd(prefix + 'ridx:' + n, plan.key).pexpire(prefix + 'ridx:' + n, this.ttlMs);
    await pipe.exec().catch(() => undefined);
  }

  /** Drops every plan through `nodeId` here and in Redis; returns the keys dropped locally. */
  async invalidateNode(nodeId: string): Promise<string[]> {
    const keys = this.invalidateLocal(nodeId);
    if (this.redis) {
      const { client, prefix } = this.redis;
      try {
        const shared = await client.smembers(prefix + 'ridx:' + nodeId);
        const pipe = client.pipeline().del(prefix + 'ridx:' + nodeId);
        for (const k of shared) pipe.del(prefix + 'route:' + k);
        await pipe.exec();
      } catch {
        /* Redis away: its entries expire with their TTL */
      }
    }
    return keys;
  }

  /** Local part of an invalidation. */
  private invalidateLocal(nodeId: string): string[] {
    const keys = [...(this.byNode.get(nodeId) ?? [])];
    for (const k of keys) this.lru.delete(k);
    this.byNode.delete(nodeId);
    return keys;
  }

  clear(): void {
    this.lru.clear();
    this.byNode.clear();
  }

  private setLocal(plan: RoutePlan): void {
    this.lru.set(plan.key, plan);
    for (const n of nodesOf(plan)) {
      let s = this.byNode.get(n);
      if (!s) this.byNode.set(n, (s = new Set()));
      s.add(plan.key);
    }
  }

  private unindex(plan: RoutePlan, key: string): void {
    for (const n of nodesOf(plan)) {
      const s = this.byNode.get(n);
      s?.delete(key);
      if (s?.size === 0) this.byNode.delete(n);
    }
  }
}

function nodesOf(plan: RoutePlan): Set<string> {
  const s = new Set<string>();
  for (const c of plan.candidates) for (const n of c.path) s.add(n);
  return s;
}
