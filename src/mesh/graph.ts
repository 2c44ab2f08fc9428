import { MIN_ROUTABLE_TRUST, trustWeight } from './trust.js';
import type { MeshSnapshot } from './types.js';

/**
 * The relay graph in compressed sparse rows, rebuilt only when the snapshot's version moves:
 * a query is then one early-exit Dijkstra over typed arrays (no allocation per edge).
 * Edge cost = (latency + 2 jitter + 25 x loss%) of the link, times the trust weight of the
 * node it enters, plus a penalty when that node is past 70% of its capacity.
 * Nodes under trust 20 or at capacity are left out entirely.
 */
export class RelayGraph {
  readonly version: number;
  readonly ids: string[] = [];
  readonly index = new Map<string, number>();
  private readonly offsets: Int32Array;
  private readonly targets: Int32Array;
  private readonly costs: Float64Array;
  private readonly lat: Float32Array;
  private readonly jit: Float32Array;
  private readonly loss: Float32Array;
  private readonly load: Float32Array;
  // Reused per search.
  private readonly dist: Float64Array;
  private readonly prev: Int32Array;
  private readonly seen: Int32Array;
  private epoch = 0;
  private readonly heap: MinHeap;
  // Reverse graph (incoming edges, as indexes into the forward arrays) for the backward search.
  private readonly rOffsets: Int32Array;
  private readonly rEdges: Int32Array;
  private readonly sources: Int32Array; // source node of each forward edge
  private readonly distB: Float64Array;
  private readonly nextB: Int32Array;
  private readonly seenB: Int32Array;
  private readonly heapB: MinHeap;

  constructor(snap: MeshSnapshot) {
    this.version = snap.version;
    for (const n of snap.nodes.values()) {
      if (n.trust < MIN_ROUTABLE_TRUST || (n.capacity > 0 && n.load >= n.capacity)) continue;
      this.index.set(n.id, this.ids.length);
      this.ids.push(n.id);
    }
    const N = this.ids.length;
    this.load = new Float32Array(N);
    const weight = new Float64Array(N);
    for (let i = 0; i < N; i++) {
      const n = snap.nodes.get(this.ids[i]!)!;
      this.load[i] = n.capacity > 0 ? n.load / n.capacity : 0;
      weight[i] = trustWeight(n.trust);
    }
    const degree = new Int32Array(N + 1);
    const edges: [number, number, number, number, number][] = [];
    for (const l of snap.links.values()) {
      const a = this.index.get(l.from);
      const b = this.index.get(l.to);
      if (a === undefined || b === undefined) continue;
      edges.push([a, b, l.latencyMs, l.jitterMs, l.lossPct]);
      degree[a + 1]!++;
    }
    for (let i = 0; i < N; i++) degree[i + 1]! += degree[i]!;
    this.offsets = degree;
    const E = edges.length;
    this.targets = new Int32Array(E);
    this.costs = new Float64Array(E);
    this.lat = new Float32Array(E);
    this.jit = new Float32Array(E);
    this.loss = new Float32Array(E);
    const fill = this.offsets.slice(0, N);
    for (const [a, b, lat, jit, loss] of edges) {
      const at = fill[a]!++;
      this.targets[at] = b;
      this.lat[at] = lat;
      this.jit[at] = jit;
      this.loss[at] = loss;
      const overload = Math.max(0, this.load[b]! - 0.7) * 100;
      this.costs[at] = (lat + 2 * jit + 25 * loss) * weight[b]! + overload;
    }
    this.sources = new Int32Array(E);
    const indeg = new Int32Array(N + 1);
    for (let u = 0; u < N; u++) {
      for (let e = this.offsets[u]!; e < this.offsets[u + 1]!; e++) {
        this.sources[e] = u;
        indeg[this.targets[e]! + 1]!++;
      }
    }
    for (let i = 0; i < N; i++) indeg[i + 1]! += indeg[i]!;
    this.rOffsets = indeg;
    this.rEdges = new Int32Array(E);
    const rfill = indeg.slice(0, N);
    for (let e = 0; e < E; e++) this.rEdges[rfill[this.targets[e]!]!++] = e;
    this.distB = new Float64Array(N);
    this.nextB = new Int32Array(N);
    this.seenB = new Int32Array(N);
    this.heapB = new MinHeap(Math.max(16, E + 1));
    this.dist = new Float64Array(N);
    this.prev = new Int32Array(N);
    this.seen = new Int32Array(N);
    this.heap = new MinHeap(Math.max(16, E + 1));
  }

  get edgeCount(): number {
    return this.targets.length;
  }

  /**
   * Cheapest path from `from` to `to`, or undefined: bidirectional Dijkstra (forward from
   * `from` over outgoing links, backward from `to` over incoming ones, stopping once the two
   * frontiers cannot improve the best meeting point), which on a mesh explores about the
   * square root of what one-sided search does. Paths over `maxHops` links are refused.
   * Returns the node ids and the summed link metrics.
   */
  shortestPath(
    from: string,
    to: string,
    maxHops = 8,
  ): { path: string[]; cost: number; latencyMs: number; jitterMs: number; lossPct: number; maxLoad: number } | undefined {
    const s = this.index.get(from);
    const t = this.index.get(to);
    if (s === undefined || t === undefined) return undefined;
    const epoch = ++this.epoch;
    const { dist, prev, seen, heap, distB, nextB, seenB, heapB } = this;
    heap.clear();
    heapB.clear();
    dist[s] = 0;
    prev[s] = -1;
    seen[s] = epoch;
    heap.push(s, 0);
    distB[t] = 0;
    nextB[t] = -1;
    seenB[t] = epoch;
    heapB.push(t, 0);
    let best = s === t ? 0 : Infinity;
    let meet = s === t ? s : -1;
    while (heap.size > 0 && heapB.size > 0) {
      if (heap.peekKey() + heapB.peekKey() >= best) break;
      // Expand the smaller frontier.
      if (heap.size <= heapB.size) {
        const u = heap.pop();
        const du = heap.lastKey;
        if (du > dist[u]!) continue;
        for (let e = this.offsets[u]!; e < this.offsets[u + 1]!; e++) {
          const v = this.targets[e]!;
          const dv = du + this.costs[e]!;
          if (seen[v] !== epoch || dv < dist[v]!) {
            seen[v] = epoch;
            dist[v] = dv;
            prev[v] = e;
            heap.push(v, dv);
            if (seenB[v] === epoch && dv + distB[v]! < best) {
              best = dv + distB[v]!;
              meet = v;
            }
          }
        }
      } else {
        const v = heapB.pop();
        const dv = heapB.lastKey;
        if (dv > distB[v]!) continue;
        for (let i = this.rOffsets[v]!; i < this.rOffsets[v + 1]!; i++) {
          const e = this.rEdges[i]!;
          const u = this.sources[e]!;
          const du = dv + this.costs[e]!;
          if (seenB[u] !== epoch || du < distB[u]!) {
            seenB[u] = epoch;
            distB[u] = du;
            nextB[u] = e;
            heapB.push(u, du);
            if (seen[u] === epoch && du + dist[u]! < best) {
              best = du + dist[u]!;
              meet = u;
            }
          }
        }
      }
    }
    if (meet < 0) return undefined;
    // Forward half: meet back to s; backward half: meet on to t.
    const edges: number[] = [];
    for (let v = meet; v !== s; ) {
      const e = prev[v]!;
      edges.push(e);
      v = this.sources[e]!;
    }
    edges.reverse();
    for (let u = meet; u !== t; ) {
      const e = nextB[u]!;
      edges.push(e);
      u = this.targets[e]!;
    }
    if (edges.length > maxHops) return undefined;
    const path: number[] = [s];
    let latencyMs = 0;
    let jitterMs = 0;
    let delivered = 1;
    let maxLoad = this.load[s]!;
    for (const e of edges) {
      latencyMs += this.lat[e]!;
      jitterMs += this.jit[e]!;
      delivered *= 1 - this.loss[e]! / 100;
      const v = this.targets[e]!;
      path.push(v);
      maxLoad = Math.max(maxLoad, this.load[v]!);
    }
    return { path: path.map((i) => this.ids[i]!), cost: best, latencyMs, jitterMs, lossPct: (1 - delivered) * 100, maxLoad };
  }

  /** The cost of a given path now (undefined: one of its links or nodes is no longer usable). */
  pathCost(path: readonly string[]): number | undefined {
    let cost = 0;
    for (let i = 1; i < path.length; i++) {
      const a = this.index.get(path[i - 1]!);
      const b = this.index.get(path[i]!);
      if (a === undefined || b === undefined) return undefined;
      let found = -1;
      for (let e = this.offsets[a]!; e < this.offsets[a + 1]!; e++) if (this.targets[e] === b) found = e;
      if (found < 0) return undefined;
      cost += this.costs[found]!;
    }
    return cost;
  }
}

/** Binary min-heap of (node, key) in typed arrays; duplicates allowed (lazy deletion). */
class MinHeap {
  private nodes: Int32Array;
  private keys: Float64Array;
  size = 0;
  lastKey = 0;

  constructor(capacity: number) {
    this.nodes = new Int32Array(capacity);
    this.keys = new Float64Array(capacity);
  }

  clear(): void {
    this.size = 0;
  }

  peekKey(): number {
    return this.keys[0]!;
  }

  push(node: number, key: number): void {
    if (this.size === this.nodes.length) {
      const n = new Int32Array(this.size * 2);
      n.set(this.nodes);
      const k = new Float64Array(this.size * 2);
      k.set(this.keys);
      this.nodes = n;
      this.keys = k;
    }
    let i = this.size++;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (this.keys[p]! <= key) break;
      this.nodes[i] = this.nodes[p]!;
      this.keys[i] = this.keys[p]!;
      i = p;
    }
    this.nodes[i] = node;
    this.keys[i] = key;
  }

  pop(): number {
    const top = this.nodes[0]!;
    this.lastKey = this.keys[0]!;
    const n = --this.size;
    const node = this.nodes[n]!;
    const key = this.keys[n]!;
    let i = 0;
    for (;;) {
      let c = 2 * i + 1;
      if (c >= n) break;
      if (c + 1 < n && this.keys[c + 1]! < this.keys[c]!) c++;
      if (this.keys[c]! >= key) break;
      this.nodes[i] = this.nodes[c]!;
      this.keys[i] = this.keys[c]!;
      i = c;
    }
    this.nodes[i] = node;
    this.keys[i] = key;
    return top;
  }
}
