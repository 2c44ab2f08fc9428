import { RelayGraph } from './graph.js';
import { combine, QualityPredictor, staticQuality, type PathMetrics } from './quality.js';
import { MIN_ROUTABLE_TRUST, trustWeight } from './trust.js';
import { linkKey, type MeshNode, type MeshSnapshot } from './types.js';

export const TIERS = ['p2p', 'turn', 'multihop', 'sfu'] as const;
export type Tier = (typeof TIERS)[number];
/**
 * auto: two-party calls try direct P2P first, bigger rooms go to the SFU;
 * sfu: always the SFU first; p2p: P2P first whenever there are two parties;
 * quality: every tier ordered by predicted quality.
 */
export type RoutePolicy = 'auto' | 'sfu' | 'p2p' | 'quality';

export interface Endpoint {
  identity: string;
  region?: string;
  /** RTT (ms) this client measured to mesh nodes, by node id. */
  rtts?: Record<string, number>;
  /** 'symmetric' behind both ends makes direct P2P fail; the planner then skips it. */
  nat?: 'open' | 'cone' | 'symmetric' | 'unknown';
}

export interface RouteQuery {
  from: Endpoint;
  to?: Endpoint;
  participants: number;
  /** The node hosting the room's SFU (the SFU tier's node). */
  edgeId: string;
  policy?: RoutePolicy;
}

export interface RouteCandidate {
  tier: Tier;
  /** Nodes media passes through, in order (empty for P2P). */
  path: string[];
  metrics: PathMetrics;
  /** Quality 0-100 the learned model expects, and what the static formula alone says. */
  predictedQuality: number;
  staticQuality: number;
}

type Near = { id: string; rtt: number };
export interface PreparedQuery {
  key: string;
  nearA: Near[];
  nearB: Near[];
}

export interface RoutePlan {
  key: string;
  candidates: RouteCandidate[];
  computedAt: number;
}

// Without a measurement: a node in the client's region is assumed near, others far.
const DEFAULT_RTT_SAME_REGION = 30;
const DEFAULT_RTT_OTHER_REGION = 150;

/**
 * What one more hop costs media, in the link cost's unit (ms of latency): the packet is
 * received, routed and sent again by a relay's worker, which HTTP probes between nodes do not
 * measure. Keeps media on the direct link when a relayed path is only as good by probe.
 */
const MEDIA_HOP_COST = 2;

export class RoutePlanner {
  private graph: RelayGraph | undefined;

  constructor(
    private readonly snapshot: () => MeshSnapshot,
    readonly predictor: QualityPredictor,
    private readonly defaultPolicy: RoutePolicy,
  ) {}

  /**
   * What a plan starts from: each side's nearest usable nodes, and the cache key (queries with
   * the same policy, size class, edge, nearest nodes and P2P feasibility share a plan).
   * MeshService looks the key up and hands the same preparation to plan() on a miss.
   */
  prepare(q: RouteQuery): PreparedQuery {
    const snap = this.snapshot();
    const nearA = this.nearest(snap, q.from);
    const nearB = q.to ? this.nearest(snap, q.to) : [];
    const p2pOk = q.to ? p2pPossible(q.from, q.to) : false;
    const key = `${q.policy ?? this.defaultPolicy}|${Math.min(q.participants, 3)}|${q.edgeId}|${nearA[0]?.id ?? '-'}|${nearB[0]?.id ?? '-'}|${p2pOk ? 1 : 0}`;
    return { key, nearA, nearB };
  }

  keyFor(q: RouteQuery): string {
    return this.prepare(q).key;
  }

  plan(q: RouteQuery, prepared: PreparedQuery = this.prepare(q)): RoutePlan {
    const snap = this.snapshot();
    const policy = q.policy ?? this.defaultPolicy;
    const out: RouteCandidate[] = [];
    const twoParty = q.to !== undefined && q.participants <= 2;
    const to = q.to;
    const { key, nearA, nearB } = prepared;

    if (twoParty && to) {
      // Direct: estimated from the best shared node (a direct path is rarely longer than via it).
      if (p2pPossible(q.from, to)) {
        let best = Infinity;
        for (const a of nearA) {
          const b = nearB.find((x) => x.id === a.id);
          if (b) best = Math.min(best, (a.rtt + b.rtt) / 2);
        }
        if (!Number.isFinite(best)) best = (nearA[0]?.rtt ?? DEFAULT_RTT_OTHER_REGION) / 2 + (nearB[0]?.rtt ?? DEFAULT_RTT_OTHER_REGION) / 2;
        out.push(this.candidate('p2p', [], combine([{ latencyMs: best * 0.8, lossPct: 0, jitterMs: 0 }], 0, 0)));
      }
      // One relay (TURN on a node both can reach), trust-weighted.
      let bestTurn: { node: MeshNode; cost: number; lat: number } | undefined;
      for (const a of nearA) {
        const node = snap.nodes.get(a.id);
        if (!node || !node.addresses.turn?.length || !usable(node)) continue;
        const b = nearB.find((x) => x.id === a.id) ?? { rtt: defaultRtt(node, to) };
        const lat = a.rtt / 2 + b.rtt / 2;
        const cost = lat * trustWeight(node.trust) + overload(node);
        if (!bestTurn || cost < bestTurn.cost) bestTurn = { node, cost, lat };
      }
      if (bestTurn) {
        out.push(this.candidate('turn', [bestTurn.node.id], combine([{ latencyMs: bestTurn.lat, lossPct: 0, jitterMs: 0 }], 1, loadOf(bestTurn.node))));
      }
      // Several relays: nearest usable node to each side, cheapest path between them.
      const ingress = nearA.find((x) => routable(snap.nodes.get(x.id)));
      const egress = nearB.find((x) => routable(snap.nodes.get(x.id)));
      if (ingress && egress && ingress.id !== egress.id) {
        const r = this.relayGraph(snap).shortestPath(ingress.id, egress.id);
        if (r) {
          const m = combine(
            [
              { latencyMs: ingress.rtt / 2, lossPct: 0, jitterMs: 0 },
              { latencyMs: r.latencyMs, lossPct: r.lossPct, jitterMs: r.jitterMs },
              { latencyMs: egress.rtt / 2, lossPct: 0, jitterMs: 0 },
            ],
            r.path.length,
            r.maxLoad,
          );
          out.push(this.candidate('multihop', r.path, m));
        }
      }
    }
    // The SFU on the room's edge node.
    const edge = snap.nodes.get(q.edgeId);
    const ra = nearA.find((x) => x.id === q.edgeId)?.rtt ?? (edge ? defaultRtt(edge, q.from) : DEFAULT_RTT_SAME_REGION);
    const rb = to ? (nearB.find((x) => x.id === q.edgeId)?.rtt ?? (edge ? defaultRtt(edge, to) : DEFAULT_RTT_SAME_REGION)) : ra;
    out.push(this.candidate('sfu', [q.edgeId], combine([{ latencyMs: ra / 2 + rb / 2, lossPct: 0, jitterMs: 0 }], 1, edge ? loadOf(edge) : 0)));

    return { key, candidates: order(out, policy, twoParty), computedAt: Date.now() };
  }

  private candidate(tier: Tier, path: string[], metrics: PathMetrics): RouteCandidate {
    const t = TIERS.indexOf(tier);
    return { tier, path, metrics, predictedQuality: round(this.predictor.predict(metrics, t, learnedKeys(path))), staticQuality: round(staticQuality(metrics)) };
  }

  /**
   * The path media should take from node `from` to node `to` over measured links (trust-
   * weighted; nodes under trust 20 left out), through relay nodes only, with its cost; and
   * the cost of `current` now, to compare against (undefined when it is no longer usable).
   * No measured path: undefined (the caller goes direct).
   */
  mediaPath(
    from: string,
    to: string,
    current?: readonly string[],
    /** Nodes to leave out (this node found them unreachable before the mesh expired them). */
    avoid?: ReadonlySet<string>,
  ): { path: string[]; cost: number; currentCost: number | undefined } | undefined {
    const snap = this.snapshot();
    // Rare and short-lived (a relay just died): a graph of its own, not the cached one.
    const g = avoid?.size ? new RelayGraph({ ...snap, nodes: new Map([...snap.nodes].filter(([id]) => !avoid.has(id))) }) : this.relayGraph(snap);
    const r = g.shortestPath(from, to);
    const withHops = (cost: number | undefined, path: readonly string[]): number | undefined => (cost === undefined ? undefined : cost + (path.length - 1) * MEDIA_HOP_COST);
    const currentCost = current ? withHops(g.pathCost(current), current) : undefined;
    if (!r) return undefined;
    const relaysOnly = r.path.slice(1, -1).every((id) => snap.nodes.get(id)?.role === 'relay');
    if (!relaysOnly) return undefined;
    // Each hop costs forwarding time the probes do not see: the direct link wins a near tie.
    const direct = withHops(g.pathCost([from, to]), [from, to]);
    const best = withHops(r.cost, r.path)!;
    if (direct !== undefined && direct <= best) return { path: [from, to], cost: direct, currentCost };
    return { path: r.path, cost: best, currentCost };
  }

  private relayGraph(snap: MeshSnapshot): RelayGraph {
    if (!this.graph || this.graph.version !== snap.version) this.graph = new RelayGraph(snap);
    return this.graph;
  }

  /** Usable nodes by this client's RTT to them (measured, else by region), nearest first, top 8. */
  private nearest(snap: MeshSnapshot, e: Endpoint): Near[] {
    const out: Near[] = [];
    if (e.rtts) {
      for (const [id, rtt] of Object.entries(e.rtts)) {
        const n = snap.nodes.get(id);
        if (n && usable(n) && Number.isFinite(rtt) && rtt >= 0) out.push({ id, rtt });
      }
    }
    if (out.length === 0 && e.region) {
      for (const n of snap.nodes.values()) {
        if (n.region === e.region && usable(n)) out.push({ id: n.id, rtt: DEFAULT_RTT_SAME_REGION });
        if (out.length >= 8) break;
      }
    }
    out.sort((x, y) => x.rtt - y.rtt || (x.id < y.id ? -1 : 1));
    return out.slice(0, 8);
  }
}

function order(c: RouteCandidate[], policy: RoutePolicy, twoParty: boolean): RouteCandidate[] {
  const byQuality = (a: RouteCandidate, b: RouteCandidate): number => b.predictedQuality - a.predictedQuality;
  if (policy === 'quality') return c.sort(byQuality);
  const first: Tier = policy === 'sfu' || !twoParty ? 'sfu' : 'p2p';
  // The preferred tier first (when it exists), then P2P's fallbacks in order of expected quality.
  const head = c.filter((x) => x.tier === first);
  const rest = c.filter((x) => x.tier !== first).sort(byQuality);
  return [...head, ...rest];
}

/** What the predictor learns a bias for on a path: each node (`n:id`) and each link (`a>b`). */
export function learnedKeys(path: readonly string[]): string[] {
  const keys = path.map((id) => `n:${id}`);
  for (let i = 1; i < path.length; i++) keys.push(linkKey(path[i - 1]!, path[i]!));
  return keys;
}

const usable = (n: MeshNode): boolean => n.trust >= MIN_ROUTABLE_TRUST && (n.capacity <= 0 || n.load < n.capacity);
const routable = (n: MeshNode | undefined): boolean => !!n && usable(n);
const loadOf = (n: MeshNode): number => (n.capacity > 0 ? n.load / n.capacity : 0);
const overload = (n: MeshNode): number => Math.max(0, loadOf(n) - 0.7) * 100;
const defaultRtt = (n: MeshNode, e: Endpoint): number => (e.region && n.region === e.region ? DEFAULT_RTT_SAME_REGION : DEFAULT_RTT_OTHER_REGION);
const p2pPossible = (a: Endpoint, b: Endpoint): boolean => !(a.nat === 'symmetric' && b.nat === 'symmetric');
const round = (q: number): number => Math.round(q * 10) / 10;
