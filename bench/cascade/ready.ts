// Scenario 3, cross-node media-ready time: from the consume request of a subscriber on a far
// node to the first RTP packet at its socket (consume + resumeConsumer + whatever piping the
// node does first). Rooms of two producers on A: per room, the far node's first pull of the
// first producer makes the room's links (and the relay's router) on the way; its second
// producer is a first pull over links already up; a second subscriber on the same node takes
// both already piped. Baseline: a subscriber on A itself (same node, nothing to pipe).
import type { Cluster } from './cluster.js';
import { consume, dispose, hr, knows, msSince, publish, subscriber, type Publisher, type Subscriber } from './media.js';
import { quantiles, sleep, type Quantiles } from './stats.js';

export interface ReadyOptions {
  /** Producers in all; two per room. */
  producers: number;
  pps: number;
  size: number;
}

export type ReadyKind = 'newLink' | 'linkUp' | 'piped';

export interface ReadyResult {
  baseline: Quantiles;
  /** Per far node: hops, and the samples by kind. */
  far: { node: string; hops: number; q: Record<ReadyKind, Quantiles>; firstPull: Quantiles }[];
}

/** Consume request → first packet at the subscriber's socket (ms), from a random phase of the stream. */
async function timed(s: Subscriber, producerId: string, stream: number, pps: number): Promise<number> {
  // Each timed step starts where the one before saw a packet: without this the next stream's
  // packet (phases spread over the interval) would always be due at the same offset.
  await sleep(Math.random() * (1000 / pps));
  const t0 = hr();
  await consume(s, producerId);
  return msSince(t0, await s.agent.firstPacket(s.sock, stream, 10_000));
}

export async function ready(c: Cluster, run: number, o: ReadyOptions, farNodes: string[]): Promise<ReadyResult> {
  const base: number[] = [];
  const far = new Map(farNodes.map((n) => [n, { hops: 0, newLink: [] as number[], linkUp: [] as number[], piped: [] as number[] }]));
  for (let r = 0; r < Math.ceil(o.producers / 2); r++) {
    const room = `ready-${run}-${r}`;
    let pub: Publisher | undefined;
    const subs: Subscriber[] = [];
    try {
      pub = await publish(c.servers.A!, c.agents.A!, `ready-pub-${r}`, room, 2, o.pps, o.size);
      const local = await subscriber(c.servers.A!, 'A', c.agents.A!, `ready-a-${r}`, room);
      subs.push(local);
      const pairs = await Promise.all(
        farNodes.map(async (n) => [await subscriber(c.servers[n]!, n, c.agents[n]!, `ready-${n}1-${r}`, room), await subscriber(c.servers[n]!, n, c.agents[n]!, `ready-${n}2-${r}`, room)] as const),
      );
      subs.push(...pairs.flat());
      // Announced everywhere first: what is timed is the media path, not the roster.
      for (const s of subs) for (const p of pub.producers) await knows(s, p.producerId);
      await sleep(300); // the joins' own work done
      // The baseline before the far nodes in even rooms, after them in odd ones (same load).
      const baseline = async (): Promise<void> => {
        for (const p of pub!.producers) base.push(await timed(local, p.producerId, p.stream, o.pps));
      };
      if (r % 2 === 0) await baseline();
      for (const [i, n] of farNodes.entries()) {
        const [s1, s2] = pairs[i]!;
        const acc = far.get(n)!;
        const [p0, p1] = pub.producers as [Publisher['producers'][0], Publisher['producers'][0]];
        acc.newLink.push(await timed(s1, p0.producerId, p0.stream, o.pps));
        acc.linkUp.push(await timed(s1, p1.producerId, p1.stream, o.pps));
        acc.piped.push(await timed(s2, p0.producerId, p0.stream, o.pps));
        acc.piped.push(await timed(s2, p1.producerId, p1.stream, o.pps));
        acc.hops = Math.max(1, ((await c.routes(n)).find((x) => x.producerId === p0.producerId)?.path.length ?? 2) - 1);
      }
      if (r % 2 === 1) await baseline();
    } finally {
      await pub?.stop();
      await Promise.all([...subs.map(dispose), pub?.client.leave().catch(() => undefined)]);
    }
  }
  return {
    baseline: quantiles(base),
    far: [...far].map(([node, a]) => ({
      node,
      hops: a.hops,
      q: { newLink: quantiles(a.newLink), linkUp: quantiles(a.linkUp), piped: quantiles(a.piped) },
      firstPull: quantiles([...a.newLink, ...a.linkUp]),
    })),
  };
}
