import { EventEmitter } from 'node:events';
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { Logger } from '../obs/logger.js';
import { MemoryRegistry } from './memoryRegistry.js';
import { learnedKeys, RoutePlanner, TIERS, type RouteCandidate, type RoutePlan, type RoutePolicy, type RouteQuery } from './planner.js';
import { Prober } from './prober.js';
import { MediaLinks } from './mediaLinks.js';
import { QualityPredictor } from './quality.js';
import { RedisRegistry } from './redisRegistry.js';
import { RouteCache } from './routeCache.js';
import { ABUSE_REPORT_DELTA, INITIAL_TRUST, MIN_ROUTABLE_TRUST, trustDeltaFromFeedback } from './trust.js';
import { type Link, type MeshNode, type NodeRegistry, type NodeRole } from './types.js';

export interface MeshOptions {
  nodeId: string;
  role: NodeRole;
  region: string;
  version: string;
  capacity: number;
  publicUrl: string;
  turnUrls: string[];
  heartbeatMs: number;
  probeIntervalMs: number;
  probeFanout: number;
  policy: RoutePolicy;
  routeCacheTtlMs: number;
  routeCacheMax: number;
  redisUrl: string;
  redisPrefix: string;
  /** Wall-clock time nodes compare (util/clusterClock.ts); Date.now without Redis. */
  now?: () => number;
}

export interface RouteFeedback {
  tier: RouteCandidate['tier'];
  path: string[];
  metrics: RouteCandidate['metrics'];
  /** The quality the call actually got (0-100), e.g. from its MOS or the SFU's scores. */
  observedQuality: number;
  connected: boolean;
}

/**
 * Owns this node's place in the mesh: its registration and heartbeat, the reaper that expires
 * silent nodes, the prober, the route planner with its learned predictor, and the route cache
 * (invalidated whenever a node leaves, a link degrades or a node's trust drops out of use).
 */
export class MeshService {
  /** Nodes leaving the mesh (expired or deregistered): media links through them are dead. */
  readonly nodes = new EventEmitter<{ nodeOffline: [string] }>();
  readonly registry: NodeRegistry;
  readonly planner: RoutePlanner;
  readonly cache: RouteCache;
  readonly predictor = new QualityPredictor();
  private readonly prober: Prober;
  /** What media sees on this node's links (the cascade records it; the prober reports it). */
  readonly mediaLinks = new MediaLinks(300_000);
  /** Nodes left out of media paths, until (ms epoch): see markMediaDown. */
  private readonly mediaDown = new Map<string, number>();
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private beating = false;
  private ticks = 0;
  private readonly m: { errors: Counter<'op'>; queries: Counter<'cache'>; latency: Histogram<'cache'>; nodes: Gauge };

  constructor(
    private readonly opts: MeshOptions,
    private readonly currentLoad: () => number,
    metrics: Registry,
    private readonly log: Logger,
  ) {
    const ttl = opts.heartbeatMs * 3;
    // With Redis, the route cache is shared through the registry's connection too.
    const redis = opts.redisUrl ? new RedisRegistry(opts.redisUrl, opts.redisPrefix, ttl, log, opts.now) : undefined;
    const registry = (this.registry = redis ?? new MemoryRegistry(ttl));
    this.planner = new RoutePlanner(() => this.registry.snapshot(), this.predictor, opts.policy);
    this.cache = new RouteCache(opts.routeCacheTtlMs, opts.routeCacheMax, redis ? { client: redis.client, prefix: opts.redisPrefix } : undefined);
    this.prober = new Prober(opts.nodeId, this.registry, { intervalMs: opts.probeIntervalMs, fanout: opts.probeFanout, timeoutMs: 1000 }, log, this.mediaLinks);
    this.registry.on('nodeOffline', (id) => {
      this.log.info({ meshNode: id }, 'mesh node offline');
      void this.cache.invalidateNode(id);
      this.mediaDown.delete(id);
      this.nodes.emit('nodeOffline', id);
    });
    this.registry.on('nodeOnline', (n) => {
      this.mediaDown.delete(n.id); // restarted
      this.log.info({ meshNode: n.id, role: n.role, region: n.region }, 'mesh node online');
    });
    this.registry.on('linkDegraded', (l) => {
      void this.cache.invalidateNode(l.from);
      void this.cache.invalidateNode(l.to);
    });
    this.registry.on('trustChanged', (id, trust) => {
      if (trust < MIN_ROUTABLE_TRUST) void this.cache.invalidateNode(id);
    });
    this.registry.on('reconnected', () => void this.registerSelf());
    this.m = {
      errors: new Counter({ name: 'auralink_mesh_registry_errors_total', help: 'Mesh registry operations that failed (Redis away)', labelNames: ['op'], registers: [metrics] }),
      queries: new Counter({ name: 'auralink_mesh_route_queries_total', help: 'Route queries by cache outcome', labelNames: ['cache'], registers: [metrics] }),
      latency: new Histogram({
        name: 'auralink_mesh_route_query_seconds',
        help: 'Route query time',
        labelNames: ['cache'],
        buckets: [0.00001, 0.00005, 0.0001, 0.0005, 0.001, 0.005, 0.02, 0.1],
        registers: [metrics],
      }),
      nodes: new Gauge({
        name: 'auralink_mesh_nodes',
        help: 'Mesh nodes known to this node (itself included)',
        registers: [metrics],
        collect() {
          this.set(registry.snapshot().nodes.size);
        },
      }),
    };
  }

  /** Where peers reach this node (known once it listens). */
  setPublicUrl(url: string): void {
    this.opts.publicUrl = url;
  }

  get heartbeatMs(): number {
    return this.opts.heartbeatMs;
  }

  self(): MeshNode {
    const o = this.opts;
    return {
      id: o.nodeId,
      role: o.role,
      region: o.region,
      addresses: { http: o.publicUrl, ...(o.turnUrls.length ? { turn: o.turnUrls } : {}) },
      capacity: o.capacity,
      load: this.currentLoad(),
      trust: INITIAL_TRUST,
      version: o.version,
      registeredAt: Date.now(),
      lastSeen: Date.now(),
    };
  }

  async start(): Promise<void> {
    try {
      await this.registry.start();
    } catch (err) {
      // Keep serving; ioredis keeps retrying and 'reconnected' registers us.
      this.m.errors.inc({ op: 'start' });
      this.log.warn({ err: (err as Error).message }, 'mesh registry: Redis unavailable at start; retrying in the background');
    }
    await this.registerSelf();
    this.heartbeatTimer = setInterval(() => void this.tick(), this.opts.heartbeatMs);
    this.heartbeatTimer.unref();
    if (this.opts.probeIntervalMs > 0) this.prober.start();
  }

  private async registerSelf(): Promise<void> {
    try {
      await this.registry.register(this.self());
    } catch (err) {
      this.m.errors.inc({ op: 'register' });
      this.log.debug({ err: (err as Error).message }, 'mesh register failed');
    }
  }

  /** Heartbeat (re-registering if we were expired) and expire silent nodes. */
  private async tick(): Promise<void> {
    if (this.beating) return;
    this.beating = true;
    try {
      if (!(await this.registry.heartbeat(this.opts.nodeId, this.currentLoad()))) await this.registerSelf();
      await this.registry.reap();
      // Every 5th beat: catch up on others' loads and trust (heartbeats are not broadcast).
      if (++this.ticks % 5 === 0) await this.registry.refresh();
    } catch (err) {
      this.m.errors.inc({ op: 'heartbeat' });
      this.log.debug({ err: (err as Error).message }, 'mesh heartbeat failed');
    } finally {
      this.beating = false;
    }
  }

  /** How media should travel between two nodes (planner.mediaPath), from the live mesh view. */
  mediaPath(from: string, to: string, current?: readonly string[], alsoAvoid: Iterable<string> = []): ReturnType<RoutePlanner['mediaPath']> {
    const now = Date.now();
    for (const [id, until] of this.mediaDown) if (until <= now) this.mediaDown.delete(id);
    // Only hops are routed around: the origin and this node are the path's ends. (An origin the
    // watch found silent over a starved direct link is still reachable through a relay.)
    const avoid = new Set([...this.mediaDown.keys(), ...alsoAvoid].filter((id) => id !== from && id !== to));
    return this.planner.mediaPath(from, to, current, avoid);
  }

  /**
   * A node this one found unreachable for media (the cascade's peer watch) is left out of
   * media paths until the mesh expires it, it registers again, or `forMs` passes (it may
   * only have been slow: then the mesh's view counts again).
   */
  markMediaDown(id: string, forMs: number): void {
    this.mediaDown.set(id, Date.now() + forMs);
  }

  /** Ordered candidates for a call; cached (LRU, then Redis) by what decides the plan. */
  async query(q: RouteQuery): Promise<RoutePlan & { cached: boolean }> {
    const start = performance.now();
    const prepared = this.planner.prepare(q);
    const hit = await this.cache.get(prepared.key);
    if (hit) {
      this.observe('hit', start);
      return { ...hit, cached: true };
    }
    const plan = this.planner.plan(q, prepared);
    await this.cache.set(plan);
    this.observe('miss', start);
    return { ...plan, cached: false };
  }

  private observe(cache: 'hit' | 'miss', start: number): void {
    this.m.queries.inc({ cache });
    this.m.latency.observe({ cache }, (performance.now() - start) / 1000);
  }

  /** What a call got: trains the predictor and moves the trust of the nodes it used. */
  async feedback(f: RouteFeedback): Promise<void> {
    this.predictor.learn(f.metrics, TIERS.indexOf(f.tier), learnedKeys(f.path), f.connected ? f.observedQuality : 0);
    const delta = trustDeltaFromFeedback(f.observedQuality, f.connected);
    if (delta !== 0) for (const id of new Set(f.path)) await this.registry.adjustTrust(id, delta).catch(() => this.m.errors.inc({ op: 'trust' }));
  }

  /** Up to `max` nodes of this node's region (itself first) for clients to measure RTT to. */
  probeTargets(max = 5): { nodeId: string; url: string }[] {
    const out: { nodeId: string; url: string }[] = [];
    if (this.opts.publicUrl) out.push({ nodeId: this.opts.nodeId, url: `${this.opts.publicUrl}/internal/mesh/probe` });
    for (const n of this.registry.snapshot().nodes.values()) {
      if (out.length >= max) break;
      if (n.id === this.opts.nodeId || n.region !== this.opts.region || !n.addresses.http || n.trust < MIN_ROUTABLE_TRUST) continue;
      out.push({ nodeId: n.id, url: `${n.addresses.http}/internal/mesh/probe` });
    }
    return out;
  }

  /**
   * Other edge nodes a client can rejoin a room on (their signalling WebSocket URLs): routable
   * trust, reachable over HTTP; this node's region first, then the least loaded. Relays take
   * no clients. A node that is draining refuses (503 DRAINING) and the client tries the next.
   */
  reconnectTargets(max = 5): { nodeId: string; url: string }[] {
    const nodes = [...this.registry.snapshot().nodes.values()].filter(
      (n) => n.id !== this.opts.nodeId && n.role === 'edge' && !!n.addresses.http && n.trust >= MIN_ROUTABLE_TRUST,
    );
    const loadOf = (n: MeshNode): number => (n.capacity > 0 ? n.load / n.capacity : 0);
    nodes.sort((a, b) => Number(b.region === this.opts.region) - Number(a.region === this.opts.region) || loadOf(a) - loadOf(b) || a.id.localeCompare(b.id));
    return nodes.slice(0, max).map((n) => ({ nodeId: n.id, url: signallingUrl(n.addresses.http!) }));
  }

  async reportClientRtts(identity: string, rtts: { nodeId: string; rttMs: number; lossPct?: number }[]): Promise<void> {
    await this.registry.reportClientRtts(identity, rtts);
  }

  async reportAbuse(nodeId: string): Promise<number | undefined> {
    return this.registry.adjustTrust(nodeId, ABUSE_REPORT_DELTA);
  }

  async reportLinks(links: Link[]): Promise<void> {
    await this.registry.reportLinks(links);
  }

  async close(): Promise<void> {
    clearInterval(this.heartbeatTimer);
    this.prober.stop();
    await this.registry.deregister(this.opts.nodeId).catch(() => undefined);
    await this.registry.close();
    this.cache.clear();
  }
}

/** A node's signalling WebSocket URL from its HTTP base URL (same listener, path /rtc). */
export function signallingUrl(http: string): string {
  const u = new URL(http);
  u.protocol = u.protocol === 'https:' ? 'wss:' : 'ws:';
  u.pathname = '/rtc';
  u.search = '';
  return u.toString();
}
