// Scenario 5, the room over three edge nodes: P publishers on A, S plain-RTP
// subscribers spread over the far edges (B direct, C behind the relay in netns), each
// consuming every publisher. Checked: every subscriber receives every publisher (in a
// window after all are set up, not only once), and each producer crosses each link once
// (auralink_cascade_producers on every node: A's 'out' = P × its links, each far node's 'in'
// = P, the relay's in and out = P). Bounded in time; file descriptors counted per process.
import { readdirSync, readFileSync } from 'node:fs';
import type { Cluster } from './cluster.js';
import { consume, dispose, knows, publish, subscriber, type Publisher, type Subscriber } from './media.js';
import { pool, sleep } from './stats.js';

export interface FanoutOptions {
  publishers: number;
  subscribers: number;
  pps: number;
  size: number;
  /** The whole scenario's bound. */
  timeoutS: number;
  concurrency: number;
}

export interface FanoutResult {
  setupS: number;
  pairs: number;
  /** Subscriber × publisher pairs with packets in the check window. */
  pairsOk: number;
  /** Packets in the window / expected. */
  delivered: number;
  metrics: { node: string; direction: 'in' | 'out'; peer: string; value: number; want: number }[];
  /** Sum of A's 'out' against P × far links (the "producers × far nodes"). */
  originOut: number;
  originWant: number;
  fds: { proc: string; fds: number }[];
  /** This process's soft limit on open files (the servers get the same). */
  fdLimit: number;
}

const fdCount = (pid: number | undefined): number => {
  try {
    return pid ? readdirSync(`/proc/${pid}/fd`).length : Number.NaN;
  } catch {
    return Number.NaN;
  }
};

export async function fanout(c: Cluster, run: number, o: FanoutOptions, farNodes: string[]): Promise<FanoutResult> {
  const room = `fan-${run}`;
  const deadline = Date.now() + o.timeoutS * 1000;
  const left = (): number => {
    const ms = deadline - Date.now();
    if (ms <= 0) throw new Error(`fan-out scenario over its ${o.timeoutS} s bound`);
    return ms;
  };
  const pubs: Publisher[] = [];
  const subs: Subscriber[] = [];
  try {
    for (let i = 0; i < o.publishers; i++) pubs.push(await publish(c.servers.A!, c.agents.A!, `fan-pub-${i}`, room, 1, o.pps, o.size));
    const producers = pubs.map((p) => p.producers[0]!);
    const t0 = performance.now();
    await pool(
      Array.from({ length: o.subscribers }, (_, i) => i),
      o.concurrency,
      async (i) => {
        left();
        const n = farNodes[i % farNodes.length]!;
        const s = await subscriber(c.servers[n]!, n, c.agents[n]!, `fan-sub-${i}`, room);
        subs.push(s);
        for (const p of producers) await knows(s, p.producerId, Math.min(left(), 30_000));
        for (const p of producers) await consume(s, p.producerId);
      },
    );
    // Every (subscriber, publisher) pair has had its first packet.
    await Promise.all(subs.flatMap((s) => producers.map((p) => s.agent.firstPacket(s.sock, p.stream, Math.min(left(), 30_000)))));
    const setupS = (performance.now() - t0) / 1000;
    // Then a window: each pair must be receiving now.
    const snapshot = async (): Promise<Map<string, number>> => {
      const m = new Map<string, number>();
      for (const n of farNodes) {
        const counts = await c.agents[n]!.counts(subs.filter((s) => s.node === n).map((s) => s.sock));
        for (const [sock, byStream] of Object.entries(counts)) for (const [stream, k] of Object.entries(byStream)) m.set(`${n}:${sock}:${stream}`, k);
      }
      return m;
    };
    const c0 = await snapshot();
    const w0 = performance.now();
    await sleep(Math.min(3000, left()));
    const c1 = await snapshot();
    const secs = (performance.now() - w0) / 1000;
    let pairsOk = 0;
    let got = 0;
    for (const s of subs) {
      for (const p of producers) {
        const k = `${s.node}:${s.sock}:${p.stream}`;
        const d = (c1.get(k) ?? 0) - (c0.get(k) ?? 0);
        got += d;
        if (d > 0) pairsOk++;
      }
    }
    // Each producer crosses each link once: on every hop u→v of the paths the far nodes
    // report, u's 'out' to v and v's 'in' from u count each producer once, however many
    // subscribers sit behind v.
    const P = producers.length;
    const want = new Map<string, Set<string>>(); // "node|direction|peer" -> producer ids
    const add = (k: string, id: string): void => void (want.get(k) ?? want.set(k, new Set()).get(k)!).add(id);
    for (const n of farNodes) {
      for (const r of await c.routes(n)) {
        if (r.room !== room) continue;
        for (let h = 1; h < r.path.length; h++) {
          add(`${r.path[h - 1]}|out|${r.path[h]}`, r.producerId);
          add(`${r.path[h]}|in|${r.path[h - 1]}`, r.producerId);
        }
      }
    }
    const metrics: FanoutResult['metrics'] = [];
    for (const [k, ids] of [...want].sort()) {
      const [node, direction, peer] = k.split('|') as [string, 'in' | 'out', string];
      metrics.push({ node, direction, peer, value: await c.metric(node, 'auralink_cascade_producers', { direction, peer }), want: ids.size });
    }
    const originOut = await c.metric('A', 'auralink_cascade_producers', { direction: 'out' });
    const originWant = P * farNodes.length;
    const fds: FanoutResult['fds'] = [{ proc: 'bench', fds: fdCount(process.pid) }];
    for (const [n, s] of Object.entries(c.servers)) {
      fds.push({ proc: `server ${n}`, fds: fdCount(s.proc.pid) });
      for (const pid of await c.workerPids(n)) fds.push({ proc: `worker ${n}`, fds: fdCount(pid) });
    }
    for (const [n, a] of Object.entries(c.agents)) fds.push({ proc: `agent ${n}`, fds: fdCount(a.proc.pid) });
    return {
      setupS,
      pairs: subs.length * P,
      pairsOk,
      delivered: got / (subs.length * P * o.pps * secs),
      metrics,
      originOut,
      originWant,
      fds,
      fdLimit: Number(/Max open files\s+(\d+)/.exec(readFileSync('/proc/self/limits', 'utf8'))?.[1] ?? Number.NaN),
    };
  } finally {
    await Promise.all(pubs.map((p) => p.stop()));
    await pool(subs, 25, dispose);
    await Promise.all(pubs.map((p) => p.client.leave().catch(() => undefined)));
  }
}
