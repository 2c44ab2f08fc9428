import { EventEmitter } from 'node:events';
import { Redis } from 'ioredis';
import type { Logger } from '../obs/logger.js';
import { linkKey, type Link, type MeshNode, type MeshSnapshot, type NodeRegistry, type RegistryEvents } from './types.js';
import { MeshView } from './view.js';

// Each script is one atomic step; all keys of a cluster share one prefix (one hash slot family).
const REGISTER = `
redis.call('HSETNX', KEYS[4], ARGV[1], ARGV[5])
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
local added = redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
redis.call('HSET', KEYS[3], ARGV[1], ARGV[4])
if added == 1 then redis.call('PUBLISH', ARGV[6], cjson.encode({t='online', id=ARGV[1]})) end
return added`;
const HEARTBEAT = `
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
return 1`;
const DEREGISTER = `
local removed = redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[3], ARGV[1])
local idx = ARGV[3] .. ARGV[1]
local fields = redis.call('SMEMBERS', idx)
if #fields > 0 then redis.call('HDEL', KEYS[4], unpack(fields)) end
redis.call('DEL', idx)
if removed == 1 then redis.call('PUBLISH', ARGV[2], cjson.encode({t='offline', id=ARGV[1]})) end
return removed`;
// KEYS[4] = links hash; ARGV[3] = prefix of the per-node link index sets (linkidx:<id>).
const REAP = `
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, 1000)
for _, id in ipairs(ids) do
  redis.call('ZREM', KEYS[1], id)
  redis.call('HDEL', KEYS[2], id)
  redis.call('HDEL', KEYS[3], id)
  local idx = ARGV[3] .. id
  local fields = redis.call('SMEMBERS', idx)
  if #fields > 0 then redis.call('HDEL', KEYS[4], unpack(fields)) end
  redis.call('DEL', idx)
  redis.call('PUBLISH', ARGV[2], cjson.encode({t='offline', id=id}))
end
return ids`;
const ADJUST_TRUST = `
local cur = tonumber(redis.call('HGET', KEYS[1], ARGV[1]))
if not cur then return false end
local v = math.max(0, math.min(100, cur + tonumber(ARGV[2])))
v = math.floor(v * 100 + 0.5) / 100
redis.call('HSET', KEYS[1], ARGV[1], tostring(v))
redis.call('PUBLISH', ARGV[3], cjson.encode({t='trust', id=ARGV[1], trust=v}))
return tostring(v)`;

type StaticNode = Omit<MeshNode, 'load' | 'trust' | 'lastSeen'>;
type Event =
  | { t: 'online'; id: string }
  | { t: 'offline'; id: string }
  | { t: 'trust'; id: string; trust: number }
  | { t: 'links'; links: Link[] };

/**
 * Cluster-wide registry in Redis. Nodes: hash `nodes` (static JSON), zset `alive` (last
 * heartbeat, ms), hashes `load` and `trust`; links: hash `links` (`from>to` -> JSON), indexed
 * per node in sets `linkidx:<id>` so an expiring node takes its links with it. A node is
 * expired by whoever runs reap() first after `now - ttl` passes its score (atomic: published
 * once). Trust outlives registration, so re-registering cannot reset it.
 * Every node mirrors the mesh in memory from the `events` channel (plus a periodic resync for
 * loads) so route planning never waits on Redis.
 * Redis outages: commands fail fast (no offline queue), ioredis reconnects with backoff, and
 * 'reconnected' tells the owner to re-register and resync.
 */
export class RedisRegistry extends EventEmitter<RegistryEvents> implements NodeRegistry {
  readonly kind = 'redis';
  readonly client: Redis;
  private readonly sub: Redis;
  private readonly k: { nodes: string; alive: string; load: string; trust: string; links: string; linkIdx: string; clientLinks: string; events: string };
  private readonly view = new MeshView(this);
  private wasDown = false;
  private closed = false;
  /** Checks of nodes missing after an outage (resync grace), closed with the registry. */
  private readonly graceTimers = new Set<NodeJS.Timeout>();

  constructor(
    url: string,
    prefix: string,
    private readonly ttlMs: number,
    private readonly log: Logger,
    private readonly now: () => number = Date.now,
  ) {
    super();
    const p = prefix;
    this.k = { nodes: `${p}nodes`, alive: `${p}alive`, load: `${p}load`, trust: `${p}trust`, links: `${p}links`, linkIdx: `${p}linkidx:`, clientLinks: `${p}clink:`, events: `${p}events` };
    const opts = {
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
      lazyConnect: true,
      retryStrategy: (times: number) => Math.min(100 * 2 ** Math.min(times, 6), 5000),
    };
    this.client = new Redis(url, opts);
    this.sub = new Redis(url, { ...opts, enableOfflineQueue: true });
    for (const [name, c] of [['command', this.client], ['subscriber', this.sub]] as const) {
      c.on('error', (err: Error) => this.log.debug({ err: err.message, conn: name }, 'redis error'));
    }
    this.client.on('close', () => {
      if (!this.closed && !this.wasDown) {
        this.wasDown = true;
        this.log.warn('mesh registry: Redis connection lost; serving from the last known mesh, retrying');
      }
    });
    this.client.on('ready', () => {
      if (!this.wasDown) return;
      this.wasDown = false;
      this.log.info('mesh registry: Redis is back');
      // A Redis that lost its data has no node yet: each live one re-registers within a
      // heartbeat of 'reconnected'. Dropping them now would tell the node's owners (media
      // pipes above all) that every peer went away.
      void this.resync(this.ttlMs)
        .then(() => this.emit('reconnected'))
        .catch((err: Error) => this.log.warn({ err: err.message }, 'mesh resync failed'));
    });
    this.client.defineCommand('meshRegister', { numberOfKeys: 4, lua: REGISTER });
    this.client.defineCommand('meshHeartbeat', { numberOfKeys: 2, lua: HEARTBEAT });
    this.client.defineCommand('meshDeregister', { numberOfKeys: 4, lua: DEREGISTER });
    this.client.defineCommand('meshReap', { numberOfKeys: 4, lua: REAP });
    this.client.defineCommand('meshTrust', { numberOfKeys: 1, lua: ADJUST_TRUST });
    this.sub.on('message', (_ch: string, msg: string) => this.onEvent(msg));
  }

  /**
   * Connects, subscribes and loads the mesh. When Redis is away it throws, but keeps trying in
   * the background: the subscription is queued on its connection, and the first 'ready'
   * resyncs and emits 'reconnected' (the owner registers then).
   */
  async start(): Promise<void> {
    this.sub.connect().catch(() => undefined);
    this.sub.subscribe(this.k.events).catch((err: Error) => this.log.warn({ err: err.message }, 'mesh events subscription failed'));
    try {
      await this.client.connect();
      await this.resync();
    } catch (err) {
      this.wasDown = true;
      throw err;
    }
  }

  private cmd(): Redis & Record<string, (...a: unknown[]) => Promise<unknown>> {
    return this.client as Redis & Record<string, (...a: unknown[]) => Promise<unknown>>;
  }

  async register(node: MeshNode): Promise<void> {
    const { load, trust, lastSeen: _l, ...rest } = node;
    const now = this.now();
    await this.cmd().meshRegister!(this.k.nodes, this.k.alive, this.k.load, this.k.trust, node.id, JSON.stringify(rest), now, load, trust, this.k.events);
    // Our own view of ourselves is immediate (the event arrives too, harmlessly).
    const t = Number(await this.client.hget(this.k.trust, node.id));
    this.view.upsert({ ...node, trust: Number.isFinite(t) ? t : trust, lastSeen: now });
  }

  async heartbeat(id: string, load: number): Promise<boolean> {
    const now = this.now();
    const ok = (await this.cmd().meshHeartbeat!(this.k.alive, this.k.load, id, now, load)) === 1;
    this.view.touch(id, load, now);
    return ok;
  }

  /** Many heartbeats in one round trip (the internal HTTP endpoint and bench/mesh use it). */
  async heartbeatMany(beats: { id: string; load: number }[]): Promise<boolean[]> {
    const pipe = this.client.pipeline() as unknown as { meshHeartbeat(...a: unknown[]): void; exec(): Promise<[Error | null, unknown][] | null> };
    const now = this.now();
    for (const b of beats) pipe.meshHeartbeat(this.k.alive, this.k.load, b.id, now, b.load);
    const res = (await pipe.exec()) ?? [];
    return res.map(([err, v]) => !err && v === 1);
  }

  async deregister(id: string): Promise<void> {
    await this.cmd().meshDeregister!(this.k.alive, this.k.nodes, this.k.load, this.k.links, id, this.k.events, this.k.linkIdx);
    this.view.drop(id);
  }

  async get(id: string): Promise<MeshNode | undefined> {
    return this.view.nodes.get(id);
  }

  async reportLinks(links: Link[]): Promise<void> {
    if (links.length === 0) return;
    const fields: string[] = [];
    const pipe = this.client.pipeline();
    for (const l of links) {
      const k = linkKey(l.from, l.to);
      fields.push(k, JSON.stringify(l));
      // Indexed under both ends, so a node's links go when it does.
      pipe.sadd(this.k.linkIdx + l.from, k).sadd(this.k.linkIdx + l.to, k);
    }
    await pipe.hset(this.k.links, ...fields).publish(this.k.events, JSON.stringify({ t: 'links', links })).exec();
  }

  async adjustTrust(id: string, delta: number): Promise<number | undefined> {
    const v = (await this.cmd().meshTrust!(this.k.trust, id, delta, this.k.events)) as string | null;
    if (v === null) return undefined;
    this.view.setTrust(id, Number(v));
    return Number(v);
  }

  async reap(): Promise<string[]> {
    const ids = (await this.cmd().meshReap!(this.k.alive, this.k.nodes, this.k.load, this.k.links, this.now() - this.ttlMs, this.k.events, this.k.linkIdx)) as string[];
    for (const id of ids) this.view.drop(id);
    return ids;
  }

  async reportClientRtts(identity: string, rtts: { nodeId: string; rttMs: number; lossPct?: number }[]): Promise<void> {
    const now = this.now();
    const fields: string[] = [];
    for (const r of rtts) fields.push(r.nodeId, JSON.stringify({ latencyMs: r.rttMs / 2, lossPct: r.lossPct ?? 0, updatedAt: now }));
    const key = `${this.k.clientLinks}${identity}`;
    await this.client.pipeline().hset(key, ...fields).pexpire(key, 600_000).exec();
  }

  snapshot(): MeshSnapshot {
    return this.view.snapshot();
  }

  /**
   * Reloads everything from Redis (at start, after an outage, and periodically for loads).
   * `graceMs`: nodes known here but missing from Redis are dropped only if still missing then.
   */
  async resync(graceMs = 0): Promise<void> {
    const [nodes, alive, load, trust, links] = (await this.client
      .pipeline()
      .hgetall(this.k.nodes)
      .zrange(this.k.alive, 0, -1, 'WITHSCORES')
      .hgetall(this.k.load)
      .hgetall(this.k.trust)
      .hgetall(this.k.links)
      .exec())!.map(([err, v]) => {
      if (err) throw err;
      return v;
    }) as [Record<string, string>, string[], Record<string, string>, Record<string, string>, Record<string, string>];
    const seen = new Map<string, number>();
    for (let i = 0; i < alive.length; i += 2) seen.set(alive[i]!, Number(alive[i + 1]));
    const gone = new Set(this.view.nodes.keys());
    for (const [id, json] of Object.entries(nodes)) {
      const lastSeen = seen.get(id);
      if (lastSeen === undefined) continue;
      this.view.upsert({ ...(JSON.parse(json) as StaticNode), load: Number(load[id] ?? 0), trust: Number(trust[id] ?? 0), lastSeen });
      gone.delete(id);
    }
    if (graceMs > 0 && gone.size > 0) this.dropLater(gone, graceMs);
    else for (const id of gone) this.view.drop(id);
    this.view.links.clear();
    const known = (l: Link): boolean => this.view.nodes.has(l.from) || this.view.nodes.has(l.to);
    this.view.applyLinks(Object.values(links).map((json) => JSON.parse(json) as Link).filter(known));
  }

  private dropLater(ids: Set<string>, afterMs: number): void {
    const t = setTimeout(() => {
      this.graceTimers.delete(t);
      if (this.closed) return;
      void (async () => {
        for (const id of ids) {
          if (!this.view.nodes.has(id)) continue;
          const seen = await this.client.zscore(this.k.alive, id).catch(() => 'unknown');
          if (seen === null) this.view.drop(id);
        }
      })();
    }, afterMs);
    t.unref();
    this.graceTimers.add(t);
  }

  /** Loads, trust and last-seen of known nodes (heartbeats are not broadcast; this catches up). */
  async refresh(): Promise<void> {
    const [load, trust, alive] = (await this.client.pipeline().hgetall(this.k.load).hgetall(this.k.trust).zrange(this.k.alive, 0, -1, 'WITHSCORES').exec())!.map(
      ([err, v]) => {
        if (err) throw err;
        return v;
      },
    ) as [Record<string, string>, Record<string, string>, string[]];
    for (let i = 0; i < alive.length; i += 2) {
      const id = alive[i]!;
      const n = this.view.nodes.get(id);
      if (!n) continue;
      this.view.touch(id, load[id] !== undefined ? Number(load[id]) : n.load, Number(alive[i + 1]));
      if (trust[id] !== undefined) this.view.setTrust(id, Number(trust[id]));
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const t of this.graceTimers) clearTimeout(t);
    this.graceTimers.clear();
    this.removeAllListeners();
    // QUIT when connected, so a resubscribe ioredis sent on reconnecting gets its answer: a
    // disconnect would reject it, unhandled (ioredis sends it itself), and end the process.
    for (const c of [this.sub, this.client]) {
      if (c.status === 'ready') await c.quit().catch(() => c.disconnect());
      else c.disconnect();
    }
  }

  private onEvent(msg: string): void {
    let e: Event;
    try {
      e = JSON.parse(msg) as Event;
    } catch {
      return;
    }
    switch (e.t) {
      case 'online':
        if (!this.view.nodes.has(e.id)) void this.fetchNode(e.id);
        break;
      case 'offline':
        this.view.drop(e.id);
        break;
      case 'trust':
        this.view.setTrust(e.id, e.trust);
        break;
      case 'links':
        this.view.applyLinks(e.links);
        break;
    }
  }

  private async fetchNode(id: string): Promise<void> {
    try {
      const [json, load, trust, seen] = await Promise.all([
        this.client.hget(this.k.nodes, id),
        this.client.hget(this.k.load, id),
        this.client.hget(this.k.trust, id),
        this.client.zscore(this.k.alive, id),
      ]);
      if (!json || seen === null) return;
      this.view.upsert({ ...(JSON.parse(json) as StaticNode), load: Number(load ?? 0), trust: Number(trust ?? 0), lastSeen: Number(seen) });
    } catch (err) {
      this.log.debug({ err: (err as Error).message, id }, 'mesh: could not fetch a new node');
    }
  }
}
