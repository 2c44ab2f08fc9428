// Scenario 2, relay CPU per forwarded packet and forwarding rate: N plain-RTP streams
// (small packets) published on A. Phase "same node" (the baseline): a subscriber on A
// consumes them all, so A's worker forwards plain in → plain out. Phase "relayed": a
// subscriber on the far edge behind the relay consumes them all (A→R→C); R's worker CPU
// (auralink_sfu_worker_cpu_seconds in its /metrics; /proc as a cross-check) over a window,
// against the packets C received in it and R's pipe byte counters.
import { readFileSync } from 'node:fs';
import type { Cluster } from './cluster.js';
import { consume, dispose, knows, publish, subscriber, type Subscriber } from './media.js';
import { sleep } from './stats.js';

export interface RelayCpuOptions {
  streams: number;
  /** Packets/s per stream; one measurement per rate. */
  rates: number[];
  size: number;
  seconds: number;
}

export interface CpuWindow {
  node: string;
  packets: number;
  expected: number;
  secs: number;
  /** Worker CPU seconds over the window, from the metric and from /proc. */
  cpu: number;
  cpuProc: number;
  usPerPacket: number;
  pktPerCoreSec: number;
}

export interface RelayCpuResult {
  rate: number;
  /** Same node: A's worker forwarding to a subscriber on A. */
  baseline: CpuWindow;
  /** The relay's worker, and the relay's idle CPU rate (s/s) measured during the baseline. */
  relay: CpuWindow & {
    bytesIn: number;
    bytesOut: number;
    idleCpuPerSec: number;
    /** The relay namespace's UDP datagrams over the window (RTP and RTCP: all its UDP is pipes), and receive-buffer drops. */
    udpIn: number;
    udpOut: number;
    rcvbufErrors: number;
    usPerDatagramOut: number;
  };
  origin: { cpu: number; usPerPacket: number };
  far: { cpu: number; usPerPacket: number };
}

const procCpu = (pid: number): number => {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(f[11]) + Number(f[12])) / 100;
};

async function workerCpu(c: Cluster, node: string): Promise<{ m: number; p: number }> {
  const [m, pids] = await Promise.all([c.metric(node, 'auralink_sfu_worker_cpu_seconds'), c.workerPids(node)]);
  return { m, p: pids.reduce((n, pid) => n + procCpu(pid), 0) };
}

const received = async (s: Subscriber): Promise<number> => Object.values((await s.agent.counts([s.sock]))[s.sock] ?? {}).reduce((n, x) => n + x, 0);

/** Worker CPU of `nodes` and packets at `sub` over `seconds`. */
async function measure(c: Cluster, nodes: string[], sub: Subscriber, seconds: number): Promise<{ secs: number; packets: number; cpu: Record<string, { m: number; p: number }> }> {
  const before = await Promise.all(nodes.map((n) => workerCpu(c, n)));
  const n0 = await received(sub);
  const t0 = performance.now();
  await sleep(seconds * 1000);
  const n1 = await received(sub);
  const secs = (performance.now() - t0) / 1000;
  const after = await Promise.all(nodes.map((n) => workerCpu(c, n)));
  return { secs, packets: n1 - n0, cpu: Object.fromEntries(nodes.map((n, i) => [n, { m: after[i]!.m - before[i]!.m, p: after[i]!.p - before[i]!.p }])) };
}

const window = (node: string, m: Awaited<ReturnType<typeof measure>>, expected: number): CpuWindow => {
  const cpu = m.cpu[node]!;
  return { node, packets: m.packets, expected, secs: m.secs, cpu: cpu.m, cpuProc: cpu.p, usPerPacket: (cpu.m / m.packets) * 1e6, pktPerCoreSec: m.packets / cpu.m };
};

export async function relayCpu(c: Cluster, run: number, o: RelayCpuOptions, relay: string, farNode: string): Promise<RelayCpuResult[]> {
  const out: RelayCpuResult[] = [];
  for (const rate of o.rates) {
    const room = `cpu-${run}-${rate}`;
    const pub = await publish(c.servers.A!, c.agents.A!, 'cpu-pub', room, o.streams, rate, o.size);
    const subs: Subscriber[] = [];
    try {
      const ready = async (s: Subscriber): Promise<void> => {
        for (const p of pub.producers) await knows(s, p.producerId);
        for (const p of pub.producers) await consume(s, p.producerId);
        await Promise.all(pub.producers.map((p) => s.agent.firstPacket(s.sock, p.stream, 15_000)));
        await sleep(1000);
      };
      // Same node.
      const local = await subscriber(c.servers.A!, 'A', c.agents.A!, 'cpu-local', room);
      subs.push(local);
      await ready(local);
      const m0 = await measure(c, ['A', relay], local, o.seconds);
      const expected = o.streams * rate * m0.secs;
      const baseline = window('A', m0, expected);
      const idleCpuPerSec = m0.cpu[relay]!.m / m0.secs;
      await dispose(local);
      subs.pop();
      // Through the relay.
      const far = await subscriber(c.servers[farNode]!, farNode, c.agents[farNode]!, 'cpu-far', room);
      subs.push(far);
      await ready(far);
      const bytes = async (): Promise<[number, number]> => [
        await c.metric(relay, 'auralink_cascade_bytes', { direction: 'received', peer: 'A' }),
        await c.metric(relay, 'auralink_cascade_bytes', { direction: 'sent', peer: farNode }),
      ];
      const b0 = await bytes();
      const u0 = await c.udp(relay);
      const m1 = await measure(c, ['A', relay, farNode], far, o.seconds);
      const u1 = await c.udp(relay);
      const b1 = await bytes();
      const udpOut = u1.OutDatagrams - u0.OutDatagrams;
      out.push({
        rate,
        baseline,
        relay: {
          ...window(relay, m1, o.streams * rate * m1.secs),
          bytesIn: b1[0] - b0[0],
          bytesOut: b1[1] - b0[1],
          idleCpuPerSec,
          udpIn: u1.InDatagrams - u0.InDatagrams,
          udpOut,
          rcvbufErrors: u1.RcvbufErrors - u0.RcvbufErrors,
          usPerDatagramOut: (m1.cpu[relay]!.m / udpOut) * 1e6,
        },
        origin: { cpu: m1.cpu.A!.m, usPerPacket: (m1.cpu.A!.m / m1.packets) * 1e6 },
        far: { cpu: m1.cpu[farNode]!.m, usPerPacket: (m1.cpu[farNode]!.m / m1.packets) * 1e6 },
      });
    } finally {
      await pub.stop();
      await Promise.all([...subs.map(dispose), pub.client.leave().catch(() => undefined)]);
    }
  }
  return out;
}
