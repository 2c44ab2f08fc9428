// bench/cascade (issue 13): media across nodes through pipe transports, on real hosts made of
// network namespaces (test/netns.ts; falls back to loopback with different ports when `ip
// netns` is not available, and says so). Our server per node, plain-RTP agents per edge
// (bench/cascade/rtpAgent.ts) sending RTP that carries its send time; every process reads the
// same clock. Each figure is printed next to a baseline from the same run:
//   1. added one-way latency per hop: subscriber on A itself (baseline) vs on B (A→B) and on
//      C (A→R→C); p50/p99 of (far - baseline) / hops
//   2. relay CPU per forwarded packet and forwarding rate: N small streams A→R→C, R's worker
//      CPU against the packets C received; baseline: A's worker forwarding them on one node
//   3. cross-node media-ready: consume request on B or C → first RTP packet there, first pull
//      (new link / link up) and already piped; baseline: consume on A itself
//   4. failover: A, B, R1, R2 (no A–B link); SIGKILL of the relay in use → RTP at B again
//   5. the issue's room over three edges: P publishers on A, S subscribers over B and C; every
//      subscriber receives every publisher; each producer crosses each link once
// Topology for 1, 2, 3, 5 (netns): links A–B, A–R, R–C; for 4: A–R1, A–R2, B–R1, B–R2.
// Usage: npm run bench:cascade [-- --runs 3 --only latency,cpu,ready,failover,fanout --net auto|netns|loopback]
//   (all options: --help). Needs root for netns. Cleans up every namespace and process it
//   made, on Ctrl-C too.
import { cpus, loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { listNetns, sweepNetns } from '../test/netns.js';
import { closeAll, Cluster, netnsAvailable, PROFILES, type NetMode, type Profile, type Topology } from './cascade/cluster.js';
import { failover } from './cascade/failover.js';
import { fanout } from './cascade/fanout.js';
import { latency } from './cascade/latency.js';
import { ready } from './cascade/ready.js';
import { relayCpu } from './cascade/relayCpu.js';
import { ok, showCpu, showFailover, showFanout, showLatency, showReady, summary, type RunResult } from './cascade/report.js';
import { eventually } from './cascade/stats.js';

const { values: a } = parseArgs({
  options: {
    runs: { type: 'string', default: '3' },
    net: { type: 'string', default: 'auto' },
    only: { type: 'string', default: 'latency,cpu,ready,failover,fanout' },
    size: { type: 'string', default: '64' },
    // Mesh/cascade timings (bench/cascade/cluster.ts PROFILES): test = the cascade tests'
    // (heartbeat 200 ms, probes 300 ms, re-route check 300 ms), defaults = config/default.yaml's.
    profile: { type: 'string', default: 'test' },
    'lat-pps': { type: 'string', default: '100' },
    'lat-seconds': { type: 'string', default: '10' },
    'cpu-streams': { type: 'string', default: '100' },
    'cpu-rates': { type: 'string', default: '50,200' },
    'cpu-seconds': { type: 'string', default: '8' },
    'ready-producers': { type: 'string', default: '20' },
    'ready-pps': { type: 'string', default: '100' },
    // kill: SIGKILL of the relay's processes; silent: its links down first (nothing answers).
    'fail-kills': { type: 'string', default: 'kill,silent' },
    // defaults-expiry: the defaults without the cascade's peer watch (the baseline).
    'fail-profiles': { type: 'string', default: 'test,defaults-expiry,defaults' },
    'fail-pps': { type: 'string', default: '100' },
    'fan-publishers': { type: 'string', default: '3' },
    'fan-subscribers': { type: 'string', default: '300' },
    'fan-pps': { type: 'string', default: '20' },
    'fan-timeout': { type: 'string', default: '300' },
    timeout: { type: 'string', default: '3600' },
    help: { type: 'boolean', default: false },
  },
});
if (a.help) {
  console.log('options (defaults):');
  for (const [k, v] of Object.entries(a)) if (k !== 'help') console.log(`  --${k} ${String(v)}`);
  process.exit(0);
}
const num = (k: keyof typeof a): number => Number(a[k]);
const list = (k: keyof typeof a): number[] => String(a[k]).split(',').filter(Boolean).map(Number);
const RUNS = num('runs');
const KILLS = String(a['fail-kills']).split(',') as ('kill' | 'silent')[];
const profile = (name: string): Profile => {
  const p = PROFILES[name];
  if (!p) throw new Error(`unknown profile ${name} (${Object.keys(PROFILES).join(', ')})`);
  return p;
};
const PROFILE = profile(String(a.profile));
const FAIL_PROFILES = String(a['fail-profiles']).split(',').filter(Boolean);
FAIL_PROFILES.forEach(profile);
const describe = (p: Profile): string =>
  `heartbeat ${p.heartbeatMs} ms, probes every ${p.probeIntervalMs} ms, re-route check ${p.rerouteCheckMs} ms, peer watch ${p.peerTimeoutMs ? `${p.peerTimeoutMs} ms` : 'off'}`;
const ONLY = new Set(String(a.only).split(','));
const SIZE = num('size');

// ---------- cleanup: every way out ----------

let stopping = false;
const bail = (why: string, code: number): void => {
  if (stopping) return;
  stopping = true;
  console.error(`\nbench/cascade: ${why}: closing every server, agent and namespace`);
  void closeAll().finally(() => process.exit(code));
};
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(sig, () => bail(sig, 130));
for (const ev of ['uncaughtException', 'unhandledRejection'] as const) {
  process.on(ev, (e) => {
    if (!stopping) console.error(e);
    bail(ev, 1);
  });
}
setTimeout(() => bail(`over its ${a.timeout} s bound`, 2), num('timeout') * 1000).unref();

// ---------- helpers ----------

/** Every node: no pipe link and no mediasoup transport, producer or consumer left (or what is). */
async function leftovers(c: Cluster, timeoutMs = 15_000): Promise<string[]> {
  const out: string[] = [];
  for (const n of Object.keys(c.servers)) {
    const state = async (): Promise<string> => {
      const parts = [`links ${await c.metric(n, 'auralink_cascade_links')}`];
      for (const type of ['transport', 'producer', 'consumer']) parts.push(`${type}s ${await c.metric(n, 'auralink_sfu_objects', { type })}`);
      return parts.join(', ');
    };
    try {
      await eventually(async () => /^links 0, transports 0, producers 0, consumers 0$/.test(await state()), timeoutMs, `${n} clean`);
    } catch {
      out.push(`${n}: ${await state()}`);
    }
  }
  return out;
}

async function attempt<T>(label: string, fn: () => Promise<T>): Promise<T | Error> {
  try {
    return await fn();
  } catch (e) {
    if (!stopping) console.log(`  ${label}: FAILED: ${(e as Error).message}`);
    return e as Error;
  }
}

const load = (): string => loadavg().map((x) => x.toFixed(1)).join(' ');

// ---------- one run ----------

const MAIN: Record<NetMode, Topology> = {
  netns: { nodes: ['A', 'B', 'C', 'R'], links: [['A', 'B'], ['A', 'R'], ['R', 'C']] },
  loopback: { nodes: ['A', 'B', 'C'], links: [] },
};
const FAIL: Topology = { nodes: ['A', 'B', 'R1', 'R2'], links: [['A', 'R1'], ['A', 'R2'], ['B', 'R1'], ['B', 'R2']] };
const FAR = ['B', 'C'];

async function oneRun(mode: NetMode, run: number): Promise<RunResult> {
  const res: RunResult = { failover: new Map(), leaks: [], load: [load()] };
  const opts = { ...PROFILE, rtcPorts: 2000 };
  if (['latency', 'cpu', 'ready', 'fanout'].some((x) => ONLY.has(x))) {
    const c = await Cluster.start(mode, MAIN[mode], opts);
    try {
      if (ONLY.has('latency')) {
        res.latency = await attempt('latency', () => latency(c, run, { pps: num('lat-pps'), seconds: num('lat-seconds'), size: SIZE }, FAR));
        if (ok(res.latency)) showLatency(res.latency);
        res.leaks.push(...(await leftovers(c)));
      }
      if (ONLY.has('ready')) {
        res.ready = await attempt('media-ready', () => ready(c, run, { producers: num('ready-producers'), pps: num('ready-pps'), size: SIZE }, FAR));
        if (ok(res.ready)) showReady(res.ready);
        res.leaks.push(...(await leftovers(c)));
      }
      if (ONLY.has('cpu')) {
        if (mode === 'netns') {
          res.cpu = await attempt('relay CPU', () => relayCpu(c, run, { streams: num('cpu-streams'), rates: list('cpu-rates'), size: SIZE, seconds: num('cpu-seconds') }, 'R', 'C'));
          if (ok(res.cpu)) showCpu(res.cpu);
          res.leaks.push(...(await leftovers(c)));
        } else console.log('  relay CPU: not measured on loopback (no path can be forced through a relay)');
      }
      if (ONLY.has('fanout')) {
        res.fanout = await attempt('fan-out', () =>
          fanout(c, run, { publishers: num('fan-publishers'), subscribers: num('fan-subscribers'), pps: num('fan-pps'), size: SIZE, timeoutS: num('fan-timeout'), concurrency: 10 }, FAR),
        );
        if (ok(res.fanout)) showFanout(res.fanout);
        res.leaks.push(...(await leftovers(c, 30_000)));
      }
    } finally {
      await c.close();
    }
  }
  if (ONLY.has('failover')) {
    if (mode !== 'netns') console.log('  failover: not measured on loopback (no relay path, nothing to kill but a whole server)');
    else {
      for (const name of FAIL_PROFILES) {
        const c = await Cluster.start(mode, FAIL, { ...profile(name), rtcPorts: 2000 });
        try {
          const s = await attempt(`failover (profile ${name})`, () => failover(c, run, { kills: KILLS, pps: num('fail-pps'), size: SIZE }));
          res.failover.set(name, s);
          if (ok(s)) showFailover(`profile ${name}`, s);
          res.leaks.push(...(await leftovers(c)));
        } finally {
          await c.close();
        }
      }
    }
  }
  res.load.push(load());
  return res;
}

// ---------- main ----------

async function main(): Promise<void> {
  await sweepNetns();
  let mode: NetMode;
  if (a.net === 'netns' || a.net === 'loopback') mode = a.net;
  else mode = (await netnsAvailable()) ? 'netns' : 'loopback';
  if (mode === 'netns' && !(await netnsAvailable())) throw new Error('--net netns: cannot make network namespaces here (root and iproute2 needed)');
  console.log(
    `bench/cascade: ${mode === 'netns' ? 'network namespaces (a host per node, media only over veth links)' : 'LOOPBACK (no network namespaces here: every node reaches every other; no relay path, no relay CPU, no failover)'}; ` +
      `${RUNS} runs; ${cpus().length} cores, load average ${load()} at start; profile ${a.profile} (${describe(PROFILE)}), failover with ${FAIL_PROFILES.map((n) => `${n} (${describe(profile(n))})`).join(' and ')}; RTP packets of ${SIZE} bytes`,
  );
  const runs: RunResult[] = [];
  for (let run = 1; run <= RUNS; run++) {
    console.log(`\nrun ${run}/${RUNS} (load average ${load()})`);
    runs.push(await oneRun(mode, run));
    if (runs.at(-1)!.leaks.length) console.log(`  LEFT BEHIND: ${runs.at(-1)!.leaks.join('; ')}`);
  }

  const namespacesLeft = (await listNetns()).filter((n) => n.startsWith(`aln-${process.pid}-`)).length;
  const failed = summary(runs, {
    mode,
    runs: RUNS,
    cpuRates: list('cpu-rates'),
    far: FAR,
    failProfiles: FAIL_PROFILES.map((n) => [n, profile(n)] as const),
    kills: KILLS,
    fan: { subscribers: num('fan-subscribers'), publishers: num('fan-publishers') },
    namespacesLeft,
  });
  process.exit(failed.length ? 1 : 0);
}

// A failure or Ctrl-C mid-run: bail() closes everything and exits (the run's own errors then are noise).
main().catch((e: Error) => {
  if (!stopping) console.error(e);
  bail('fatal error', 1);
});
