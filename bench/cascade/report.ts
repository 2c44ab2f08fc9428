// bench/cascade's printing: each scenario's figures as a run ends, and the summary block
// (ranges over runs, baselines of the same runs, targets met or not).
import type { NetMode, Profile } from './cluster.js';
import type { FailoverSample } from './failover.js';
import type { FanoutResult } from './fanout.js';
import type { LatencyResult } from './latency.js';
import type { ReadyResult } from './ready.js';
import type { RelayCpuResult } from './relayCpu.js';
import { f, range } from './stats.js';

export const ok = <T>(x: T | Error | undefined): x is T => x !== undefined && !(x instanceof Error);

/** One run: each scenario's result, or the error that stopped it. */
export interface RunResult {
  latency?: LatencyResult | Error;
  cpu?: RelayCpuResult[] | Error;
  ready?: ReadyResult | Error;
  fanout?: FanoutResult | Error;
  failover: Map<string, FailoverSample[] | Error>;
  leaks: string[];
  load: string[];
}

export interface SummaryContext {
  mode: NetMode;
  runs: number;
  cpuRates: number[];
  far: string[];
  failProfiles: (readonly [string, Profile])[];
  kills: ('kill' | 'silent')[];
  fan: { subscribers: number; publishers: number };
  namespacesLeft: number;
}

export function showLatency(r: LatencyResult): void {
  console.log(`  latency (one-way, ms): same node p50 ${f(r.baseline.p50)} p99 ${f(r.baseline.p99)} (n=${r.baseline.n})`);
  for (const x of r.far) {
    console.log(`    ${x.path.join('→') || x.node} (${x.hops} hop${x.hops > 1 ? 's' : ''}): p50 ${f(x.q.p50)} p99 ${f(x.q.p99)} max ${f(x.q.max)} (n=${x.q.n}) → added per hop p50 ${f(x.perHopP50)} p99 ${f(x.perHopP99)}; per packet (far − same node) / hops p50 ${f(x.perPacket.p50)} p99 ${f(x.perPacket.p99)} (n=${x.perPacket.n})`);
  }
}

export function showCpu(rs: RelayCpuResult[]): void {
  for (const r of rs) {
    const b = r.baseline;
    const x = r.relay;
    console.log(`  relay CPU, ${f(x.expected / x.secs, 0)} pkt/s offered (${r.rate} pkt/s × streams):`);
    console.log(`    baseline, same-node forward on A: ${f(b.usPerPacket)} µs/pkt (${b.packets} pkts of ${f(b.expected, 0)}, worker ${f(b.cpu, 3)} s, /proc ${f(b.cpuProc, 2)} s) = ${f(b.pktPerCoreSec / 1000, 1)}k pkt/s per core`);
    console.log(
      `    relay ${x.node}: ${f(x.usPerPacket)} µs/pkt (${x.packets} pkts at C of ${f(x.expected, 0)} offered, ${f(x.packets / x.secs, 0)} pkt/s forwarded, worker ${f(x.cpu, 3)} s, /proc ${f(x.cpuProc, 2)} s) = ${f(x.pktPerCoreSec / 1000, 1)}k pkt/s per core; ` +
        `pipe bytes in ${x.bytesIn} out ${x.bytesOut} (${f(x.bytesOut / Math.max(1, x.packets), 1)} B/pkt out); idle ${f(x.idleCpuPerSec * 1e3, 2)} ms CPU/s`,
    );
    console.log(
      `    relay ${x.node} UDP (RTP + RTCP): in ${x.udpIn} out ${x.udpOut} datagrams (${f(x.udpOut / x.secs, 0)}/s), receive-buffer drops ${x.rcvbufErrors}; ${f(x.usPerDatagramOut)} µs per datagram out`,
    );
    console.log(`    same window: origin A ${f(r.origin.usPerPacket)} µs/pkt (plain in → pipe out), far C ${f(r.far.usPerPacket)} µs/pkt (pipe in → plain out)`);
  }
}

export function showReady(r: ReadyResult): void {
  console.log(`  media-ready (consume → first RTP, ms): same node p50 ${f(r.baseline.p50, 1)} p99 ${f(r.baseline.p99, 1)} (n=${r.baseline.n})`);
  for (const x of r.far) {
    const q = x.q;
    console.log(
      `    ${x.node} (${x.hops} hop${x.hops > 1 ? 's' : ''}): first pull, new link p50 ${f(q.newLink.p50, 1)} p99 ${f(q.newLink.p99, 1)} (n=${q.newLink.n}); first pull, link up p50 ${f(q.linkUp.p50, 1)} p99 ${f(q.linkUp.p99, 1)} (n=${q.linkUp.n}); ` +
        `already piped p50 ${f(q.piped.p50, 1)} p99 ${f(q.piped.p99, 1)} (n=${q.piped.n})`,
    );
  }
}

export function showFanout(r: FanoutResult): void {
  console.log(`  fan-out: ${r.pairsOk}/${r.pairs} subscriber×publisher pairs receiving, ${f(r.delivered * 100, 1)}% of expected packets in the window, set-up ${f(r.setupS, 1)} s`);
  console.log(`    producers carried: ${r.metrics.map((m) => `${m.node} ${m.direction}${m.peer === '*' ? '' : `→${m.peer}`} ${m.value}/${m.want}`).join(', ')}; origin out ${r.originOut} (P × far nodes = ${r.originWant})`);
  console.log(`    open fds (limit ${r.fdLimit} per process): ${r.fds.map((x) => `${x.proc} ${x.fds}`).join(', ')}`);
}

export function showFailover(cfg: string, s: FailoverSample[]): void {
  for (const x of s) {
    console.log(
      `  failover (${cfg}): ${x.from.join('→')}, ${x.how === 'silent' ? 'links down + SIGKILL of' : 'SIGKILL of'} ${x.from[1]} → RTP at B again after ${f(x.ms, 0)} ms via ${x.to.join('→')} ` +
        `(consumer switched at ${f(x.switchedMs, 0)} ms; closed at ${f(x.closedMs, 0)} ms, producer announced again at ${f(x.announcedMs, 0)} ms)`,
    );
  }
}

/** Prints the summary block; returns the scenario failures. */
export function summary(runs: RunResult[], ctx: SummaryContext): string[] {
  const all = <T, R>(get: (r: RunResult) => T | Error | undefined, map: (x: T) => R[]): R[] => runs.flatMap((r) => (ok(get(r)) ? map(get(r) as T) : []));
  const done = (get: (r: RunResult) => unknown): number => runs.filter((r) => ok(get(r))).length;
  const verdict = (vals: number[], pass: (x: number) => boolean): string => (vals.length === 0 ? 'not measured' : vals.every(pass) ? 'met' : `NOT met (${vals.filter((v) => !pass(v)).length} of ${vals.length} over)`);
  const lines: string[] = [];
  const row = (what: string, figure: string, baseline: string, target: string, v: string): void => void lines.push(`${what.padEnd(44)} ${figure.padEnd(44)} ${baseline.padEnd(30)} ${target.padEnd(22)} ${v}`);
  row('what', 'measured (range over runs)', 'baseline (same run)', 'target', 'verdict');

  for (const hops of [1, 2]) {
    const far = all((r) => r.latency, (l) => l.far.filter((x) => x.hops === hops));
    const base = all((r) => r.latency, (l) => [l.baseline]);
    if (far.length === 0) continue;
    row(`added one-way latency per hop, ${hops} hop${hops > 1 ? 's' : ''} (${far.length} paths, ${done((r) => r.latency)} runs)`, `p50 ${range(far.map((x) => x.perHopP50))} ms, p99 ${range(far.map((x) => x.perHopP99))} ms`, `same node p50 ${range(base.map((x) => x.p50))}, p99 ${range(base.map((x) => x.p99))} ms`, 'p99 < 5 ms per hop', verdict(far.map((x) => x.perHopP99), (v) => v < 5));
    row(`  per packet, (far − same node) / hops`, `p50 ${range(far.map((x) => x.perPacket.p50))} ms, p99 ${range(far.map((x) => x.perPacket.p99))} ms`, '', 'p99 < 5 ms per hop', verdict(far.map((x) => x.perPacket.p99), (v) => v < 5));
  }
  for (const rate of ctx.cpuRates) {
    const rs = all((r) => r.cpu, (c) => c.filter((x) => x.rate === rate));
    if (rs.length === 0) continue;
    const offered = (rs[0]!.relay.expected / rs[0]!.relay.secs).toFixed(0);
    row(`relay forwarding per worker core, ${offered} pkt/s (${rs.length} runs)`, `${range(rs.map((x) => x.relay.pktPerCoreSec / 1000), 1)}k pkt/s/core (${range(rs.map((x) => x.relay.usPerPacket))} µs/pkt)`, `same-node ${range(rs.map((x) => x.baseline.usPerPacket))} µs/pkt`, '≥ 50k pkt/s per core', verdict(rs.map((x) => x.relay.pktPerCoreSec), (v) => v >= 50_000));
    row(`  relay forwarding achieved`, `${range(rs.map((x) => x.relay.packets / x.relay.secs), 0)} pkt/s (${range(rs.map((x) => (100 * x.relay.packets) / x.relay.expected), 1)}% of offered)`, '', '', '');
    row(`  per UDP datagram the relay sent (RTCP too)`, `${range(rs.map((x) => x.relay.usPerDatagramOut))} µs`, `origin ${range(rs.map((x) => x.origin.usPerPacket))}, far ${range(rs.map((x) => x.far.usPerPacket))} µs/pkt`, '', '');
  }
  for (const node of ctx.far) {
    const rs = all((r) => r.ready, (x) => x.far.filter((y) => y.node === node));
    const base = all((r) => r.ready, (x) => [x.baseline]);
    if (rs.length === 0) continue;
    const hops = rs[0]!.hops;
    row(`media-ready at ${node} (${hops} hop${hops > 1 ? 's' : ''}), first pull (${rs.length} runs)`, `p50 ${range(rs.map((x) => x.firstPull.p50), 0)}, p99 ${range(rs.map((x) => x.firstPull.p99), 0)} ms (n=${rs[0]!.firstPull.n}/run)`, `same node p99 ${range(base.map((x) => x.p99), 0)} ms`, 'p99 < 250 ms', verdict(rs.map((x) => x.firstPull.p99), (v) => v < 250));
    row(`  of which new link / link up`, `p99 ${range(rs.map((x) => x.q.newLink.p99), 0)} / ${range(rs.map((x) => x.q.linkUp.p99), 0)} ms`, '', '', '');
    row(`media-ready at ${node}, already piped`, `p50 ${range(rs.map((x) => x.q.piped.p50), 0)}, p99 ${range(rs.map((x) => x.q.piped.p99), 0)} ms (n=${rs[0]!.q.piped.n}/run)`, `same node p50 ${range(base.map((x) => x.p50), 0)} ms`, 'p99 < 250 ms', verdict(rs.map((x) => x.q.piped.p99), (v) => v < 250));
  }
  for (const [name, p] of ctx.failProfiles) {
    for (const how of new Set(ctx.kills)) {
      const s = runs.flatMap((r) => (ok(r.failover.get(name)) ? (r.failover.get(name) as FailoverSample[]) : [])).filter((x) => x.how === how);
      if (s.length === 0) continue;
      row(
        `failover, ${how === 'silent' ? 'host silent' : 'SIGKILL'}, ${name} profile (${s.length} kills, ${done((r) => r.failover.get(name))} runs)`,
        `${range(s.map((x) => x.ms), 0)} ms (switched at ${range(s.map((x) => x.switchedMs), 0)} ms)`,
        `expiry 3×${p.heartbeatMs}, probes ${p.probeIntervalMs} ms, peer watch ${p.peerTimeoutMs ? `${p.peerTimeoutMs} ms` : 'off'}`,
        '< 3 s',
        verdict(s.map((x) => x.ms), (v) => v < 3000),
      );
    }
  }
  {
    const rs = all((r) => r.fanout, (x) => [x]);
    if (rs.length) {
      const allPairs = rs.every((x) => x.pairsOk === x.pairs);
      const once = rs.every((x) => x.metrics.every((m) => m.value === m.want) && x.originOut === x.originWant);
      row(`fan-out ${ctx.fan.subscribers} subs × ${ctx.fan.publishers} pubs (${rs.length} runs)`, `${range(rs.map((x) => x.pairsOk), 0)}/${rs[0]!.pairs} pairs, ${range(rs.map((x) => 100 * x.delivered), 1)}% pkts`, `set-up ${range(rs.map((x) => x.setupS), 1)} s`, 'every pair receives', allPairs ? 'met' : 'NOT met');
      row(`  each producer crosses each link once`, `origin out ${range(rs.map((x) => x.originOut), 0)} (want ${rs[0]!.originWant})`, `max fds/proc ${range(rs.map((x) => Math.max(...x.fds.map((y) => y.fds).filter(Number.isFinite))), 0)} of ${rs[0]!.fdLimit}`, 'equal', once ? 'met' : 'NOT met');
    }
  }
  const failed = runs.flatMap((r, i) => [r.latency, r.cpu, r.ready, r.fanout, ...r.failover.values()].filter((x) => x instanceof Error).map((e) => `run ${i + 1}: ${(e as Error).message}`));
  const leaks = runs.flatMap((r, i) => r.leaks.map((l) => `run ${i + 1}: ${l}`));
  console.log(`\n==== bench/cascade summary: ${ctx.mode}, ${ctx.runs} runs, load average per run ${runs.map((r) => r.load.join(' → ')).join(' | ')} ====`);
  for (const l of lines) console.log(l);
  console.log(`scenario failures: ${failed.length ? failed.join('; ') : 'none'}`);
  console.log(`left behind after each scenario (links / mediasoup objects): ${leaks.length ? leaks.join('; ') : 'nothing'}; namespaces of this run left: ${ctx.namespacesLeft}`);
  return failed;
}
