// Scenario 4, failover: A and B have no direct link, both reach relays R1 and R2. A
// publishes (timestamped RTP), a subscriber on B consumes; a re-route switches its consumer
// (consumerSwitched: the new one sends to the same address); it consumes again only if the
// producer is announced again (the fallback when the new path ends on the same last hop).
// The relay on B's path is SIGKILLed (every process of its host; or, 'silent', its links
// taken down first, a host that lost power); measured: kill → the first
// packet at B that was sent after the kill; with the moments B's client was told its
// consumer was switched (or closed, and the producer back). The killed relay is started again and, once the
// mesh has measured it, the next kill takes whichever relay is in use then.
import type { Cluster } from './cluster.js';
import { consume, dispose, hr, knows, msSince, publish, subscriber } from './media.js';
import { eventually, sleep } from './stats.js';

export interface FailoverOptions {
  /** Kills in turn: 'kill' = SIGKILL of the relay's processes (its host still answers TCP with resets); 'silent' = its links down first (a host that lost power: nothing answers). */
  kills: ('kill' | 'silent')[];
  pps: number;
  size: number;
}

export interface FailoverSample {
  how: 'kill' | 'silent';
  from: string[];
  to: string[];
  /** Kill → first packet at B sent after the kill (ms). */
  ms: number;
  /** Kill → consumerSwitched / consumerClosed / producerAdded at B's client (ms; NaN if not seen). */
  switchedMs: number;
  closedMs: number;
  announcedMs: number;
}

export async function failover(c: Cluster, run: number, o: FailoverOptions): Promise<FailoverSample[]> {
  const room = `fail-${run}`;
  const pub = await publish(c.servers.A!, c.agents.A!, 'fail-pub', room, 1, o.pps, o.size);
  const { producerId, stream } = pub.producers[0]!;
  const sub = await subscriber(c.servers.B!, 'B', c.agents.B!, 'fail-sub', room);
  const samples: FailoverSample[] = [];
  let switchedAt: bigint | undefined;
  let closedAt: bigint | undefined;
  let announcedAt: bigint | undefined;
  sub.client.on('consumerSwitched', (e) => {
    if (e.consumerId !== sub.consumers.get(producerId)) return;
    switchedAt ??= hr();
    sub.consumers.set(producerId, e.consumer.id);
  });
  sub.client.on('consumerClosed', (e) => {
    if (e.consumerId === sub.consumers.get(producerId)) closedAt ??= hr();
  });
  sub.client.on('producerAdded', (p) => {
    if (p.producerId !== producerId) return;
    announcedAt ??= hr();
    void consume(sub, producerId).catch(() => undefined);
  });
  try {
    await knows(sub, producerId);
    await consume(sub, producerId);
    await sub.agent.firstPacket(sub.sock, stream, 10_000);
    for (const [k, how] of o.kills.entries()) {
      await sleep(1000);
      const from = (await c.routes('B')).find((r) => r.producerId === producerId)?.path ?? [];
      const relay = from[1];
      if (from.length !== 3 || !relay?.startsWith('R')) throw new Error(`B's path is not through a relay: ${from.join('→')}`);
      switchedAt = closedAt = announcedAt = undefined;
      // Taken before the kill: includes listing the namespace's pids (a few ms).
      const killed = hr();
      await c.kill(relay, how === 'silent');
      const back = await sub.agent.firstSentAfter(sub.sock, killed, 15_000);
      const to = (await c.routes('B')).find((r) => r.producerId === producerId)?.path ?? [];
      samples.push({
        how,
        from,
        to,
        ms: msSince(killed, back),
        switchedMs: switchedAt === undefined ? Number.NaN : msSince(killed, switchedAt),
        closedMs: closedAt === undefined ? Number.NaN : msSince(killed, closedAt),
        announcedMs: announcedAt === undefined ? Number.NaN : msSince(killed, announcedAt),
      });
      if (k + 1 < o.kills.length) {
        await c.revive(relay);
        await c.meshReady();
        // The relay is back in the mesh: B may route through either; both are measured.
        await eventually(async () => (await c.routes('B')).some((r) => r.producerId === producerId && r.path.length === 3), 10_000, 'B routed through a relay');
      }
    }
    return samples;
  } finally {
    await pub.stop();
    await Promise.all([dispose(sub), pub.client.leave().catch(() => undefined)]);
  }
}
