// Scenario 1, added one-way latency per hop: one publisher on A sends timestamped RTP; a
// subscriber on A itself (same node: the baseline), one on each far edge (B: A→B, C: A→R→C
// in netns) measure arrival - send on the shared clock. Added per hop, two ways: percentile
// by percentile, (p(far) - p(baseline)) / hops; and per packet (every packet reaches all
// subscribers: its far latency minus its same-node latency, / hops), then percentiles.
import type { Cluster } from './cluster.js';
import { consume, dispose, knows, publish, subscriber, type Subscriber } from './media.js';
import { quantiles, sleep, type Quantiles } from './stats.js';

export interface LatencyOptions {
  pps: number;
  seconds: number;
  size: number;
}

export interface LatencyResult {
  baseline: Quantiles;
  far: {
    node: string;
    path: string[];
    hops: number;
    q: Quantiles;
    /** (percentile of far - same percentile of the baseline) / hops. */
    perHopP50: number;
    perHopP99: number;
    /** Percentiles of the per-packet (far - baseline) / hops. */
    perPacket: Quantiles;
  }[];
}

export async function latency(c: Cluster, run: number, o: LatencyOptions, farNodes: string[]): Promise<LatencyResult> {
  const room = `lat-${run}`;
  const pub = await publish(c.servers.A!, c.agents.A!, 'lat-pub', room, 1, o.pps, o.size);
  const { producerId, stream } = pub.producers[0]!;
  const subs: Subscriber[] = [];
  try {
    for (const n of ['A', ...farNodes]) subs.push(await subscriber(c.servers[n]!, n, c.agents[n]!, `lat-sub-${n}`, room));
    for (const s of subs) {
      await knows(s, producerId);
      await consume(s, producerId);
      await s.agent.firstPacket(s.sock, stream, 10_000);
    }
    await sleep(1000); // past the start (first packets, RTCP set-up)
    await Promise.all(subs.map((s) => s.agent.request('sample', { sock: s.sock, on: true })));
    await sleep(o.seconds * 1000);
    const got = await Promise.all(subs.map(async (s) => (await s.agent.request('sample', { sock: s.sock, on: false })) as { lat: number[]; sent: number[] }));
    const lat = got.map((g) => g.lat.map((us) => us / 1000));
    const baseline = quantiles(lat[0]!);
    const baseBySent = new Map(got[0]!.sent.map((t, i) => [t, lat[0]![i]!]));
    const far: LatencyResult['far'] = [];
    for (let i = 1; i < subs.length; i++) {
      const node = subs[i]!.node;
      const path = (await c.routes(node)).find((r) => r.producerId === producerId)?.path ?? [];
      const hops = Math.max(1, path.length - 1);
      const q = quantiles(lat[i]!);
      const diffs: number[] = [];
      got[i]!.sent.forEach((t, j) => {
        const b = baseBySent.get(t);
        if (b !== undefined) diffs.push((lat[i]![j]! - b) / hops);
      });
      far.push({ node, path, hops, q, perHopP50: (q.p50 - baseline.p50) / hops, perHopP99: (q.p99 - baseline.p99) / hops, perPacket: quantiles(diffs) });
    }
    return { baseline, far };
  } finally {
    await pub.stop();
    await Promise.all([...subs.map(dispose), pub.client.leave().catch(() => undefined)]);
  }
}
