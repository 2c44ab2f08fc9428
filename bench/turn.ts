// bench/turn: relayed packets/s and loss of the embedded TURN server (node-turn + our layer)
// side by side with coturn (Debian's turnserver) in the same run, both driven by coturn's own
// load client (turnutils_uclient: N clients, each allocating, binding a channel to a UDP echo
// peer and sending M messages that come back through the relay). Each load runs at 1x and 2x
// the client count; every run records where packets were dropped (the kernel's UDP counters,
// the servers' own sockets' drop counters) and the event-loop lag of the server's threads.
// Then the join storm (bench/common's, as bench/signal runs it) alone and during a TURN load.
// Usage: npm run bench:turn   (CLIENTS, MESSAGES, INTERVAL_MS, SIZE, ROUNDS, LOADS=1,2, JOINS, JOIN_RATE, ONLY=relay,join)
import { spawn, type ChildProcess } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { BENCH_SIGNAL_LIMITS, cpuSeconds, joinStormOn, metricSum, metricsText, sleep, socketDropSampler, startAura, udpCounters } from './common.js';

const CLIENTS = Number(process.env.CLIENTS ?? 40);
const MESSAGES = Number(process.env.MESSAGES ?? 2000);
const INTERVAL_MS = Number(process.env.INTERVAL_MS ?? 1);
const SIZE = Number(process.env.SIZE ?? 160);
const ROUNDS = Number(process.env.ROUNDS ?? 3);
const LOADS = (process.env.LOADS ?? '1,2').split(',').map(Number);
const JOINS = Number(process.env.JOINS ?? 2000);
const JOIN_RATE = Number(process.env.JOIN_RATE ?? 500);
const ONLY = new Set((process.env.ONLY ?? 'relay,join').split(','));
const SECRET = 'bench-turn-secret';
// Relay ranges wide enough for every round's allocations: uclient abandons one allocation per
// client, which lives out its lifetime (10 min) on both servers. Below the tests' port blocks.
const AURA = { port: 10478, min: 10500, max: 11999, peer: 10100 };
const COTURN = { port: 12478, min: 12500, max: 13999, peer: 12100 };

const creds = (): { u: string; p: string } => {
  const u = `${Math.floor(Date.now() / 1000) + 3600}:bench`;
  return { u, p: createHmac('sha1', SECRET).update(u).digest('base64') };
};

function run(cmd: string, args: string[]): Promise<string> {
  return new Promise((resolve) => {
    const p = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.stderr.on('data', (d: Buffer) => (out += d.toString()));
    p.on('exit', () => resolve(out));
  });
}

interface Result {
  pps: number;
  lossPct: number;
  cpuPct: number;
  /** Kernel, this network namespace (clients, peers and server alike). */
  rcvbufErrors: number;
  sndbufErrors: number;
  /** Receive drops on the server's own sockets: its listening socket, its relay sockets. */
  listenDrops: number;
  relayDrops: number;
  /** uclient ended without totals (node-turn answered a ChannelBind with 400 under loss). */
  failed: boolean;
  /** Max event-loop lag over the run, ms: the server's main thread, and its TURN thread. */
  mainLagMs: number;
  turnLagMs: number;
}

type Srv = typeof AURA;

async function load(s: Srv, clients: number, serverPid: number, auraHttp?: number): Promise<Result> {
  const { u, p } = creds();
  // prom-client resets its event-loop histograms at each scrape: this one starts the window.
  if (auraHttp) await metricsText(auraHttp);
  const listenDrops = socketDropSampler((port) => port === s.port);
  const relayDrops = socketDropSampler((port) => port >= s.min && port <= s.max);
  const k0 = udpCounters();
  const cpu0 = cpuSeconds(serverPid);
  const t0 = performance.now();
  const out = await run('turnutils_uclient', ['-c', '-u', u, '-w', p, '-p', String(s.port), '-e', '127.0.0.1', '-r', String(s.peer), '-n', String(MESSAGES), '-m', String(clients), '-l', String(SIZE), '-z', String(INTERVAL_MS), '127.0.0.1']);
  const seconds = (performance.now() - t0) / 1000;
  const cpu = cpuSeconds(serverPid) - cpu0;
  const k1 = udpCounters();
  const drops = { listen: listenDrops.stop(), relay: relayDrops.stop() };
  const m = [...out.matchAll(/start_mclient: tot_send_msgs=(\d+), tot_recv_msgs=(\d+)/g)].at(-1);
  if (!m) console.log(`  (a uclient run gave no totals: ${out.trim().split('\n').slice(-2).join(' | ').slice(0, 200)})`);
  const sent = Number(m?.[1] ?? 0);
  const recv = Number(m?.[2] ?? 0);
  let mainLagMs = Number.NaN;
  let turnLagMs = Number.NaN;
  if (auraHttp) {
    const text = await metricsText(auraHttp);
    mainLagMs = metricSum(text, 'auralink_nodejs_eventloop_lag_max_seconds') * 1000;
    turnLagMs = metricSum(text, 'auralink_turn_eventloop_lag_seconds', { quantile: 'max' }) * 1000;
  }
  return {
    // Every message crosses the relay twice (client -> peer, peer -> client).
    pps: (sent + recv) / seconds,
    lossPct: sent ? ((sent - recv) / sent) * 100 : 100,
    cpuPct: (cpu / seconds) * 100,
    rcvbufErrors: k1.RcvbufErrors - k0.RcvbufErrors,
    sndbufErrors: k1.SndbufErrors - k0.SndbufErrors,
    listenDrops: drops.listen,
    relayDrops: drops.relay,
    failed: !m,
    mainLagMs,
    turnLagMs,
  };
}

const peers: ChildProcess[] = [];
const peer = (port: number): void => {
  peers.push(spawn('turnutils_peer', ['-L', '127.0.0.1', '-p', String(port)], { stdio: 'ignore' }));
};

const range = (xs: number[], digits = 0): string => {
  if (xs.length === 0) return '-';
  const s = [...xs].sort((a, b) => a - b);
  const f = (x: number): string => (Number.isNaN(x) ? '-' : x.toLocaleString('en', { maximumFractionDigits: digits, minimumFractionDigits: digits }));
  const med = s[Math.floor(s.length / 2)]!;
  return s.length === 1 ? f(med) : `${f(med)} [${f(s[0]!)}-${f(s.at(-1)!)}]`;
};

console.log(`bench/turn: ${MESSAGES} messages of ${SIZE} B every ${INTERVAL_MS} ms per client, echoed by a UDP peer; loads ${LOADS.map((l) => `${l}x = ${l * CLIENTS} clients`).join(', ')}; ${ROUNDS} rounds, embedded and coturn alternating`);
console.log(`  figures: median [min-max] over the rounds; the machine's 2 cores are shared with other work`);
const aura = await startAura({
  sfu: { enabled: false },
  signal: BENCH_SIGNAL_LIMITS,
  turn: { secret: SECRET, host: '127.0.0.1', port: AURA.port, relay_min_port: AURA.min, relay_max_port: AURA.max, allowed_peer_cidrs: ['127.0.0.0/8'], max_allocations_per_user: 100000 },
});
const coturn = spawn('turnserver', [
  '-n', '--no-tls', '--no-dtls', '--no-cli', '-L', '127.0.0.1', '-E', '127.0.0.1', '-p', String(COTURN.port), '--min-port', String(COTURN.min), '--max-port', String(COTURN.max),
  '--use-auth-secret', '--static-auth-secret', SECRET, '--realm', 'auralink', '--allow-loopback-peers', '--no-stdout-log', '--log-file', '/dev/null',
], { stdio: 'ignore' });
peer(AURA.peer);
peer(COTURN.peer);
await sleep(1500);
try {
  if (ONLY.has('relay')) {
    for (const factor of LOADS) {
      const clients = factor * CLIENTS;
      const ours: Result[] = [];
      const theirs: Result[] = [];
      // Alternate which goes first to spread machine noise over both.
      for (let round = 0; round < ROUNDS; round++) {
        if (round % 2 === 0) {
          ours.push(await load(AURA, clients, aura.proc.pid!, aura.port));
          theirs.push(await load(COTURN, clients, coturn.pid!));
        } else {
          theirs.push(await load(COTURN, clients, coturn.pid!));
          ours.push(await load(AURA, clients, aura.proc.pid!, aura.port));
        }
      }
      const line = (name: string, all: Result[]): void => {
        const rs = all.filter((r) => !r.failed);
        if (rs.length < all.length) console.log(`  ${name}: ${all.length - rs.length} of ${all.length} runs failed (no totals), left out below`);
        if (rs.length === 0) return;
        console.log(`  ${name.padEnd(9)} ${range(rs.map((r) => r.pps)).padStart(24)} pkt/s  loss ${range(rs.map((r) => r.lossPct), 2)} %  CPU ${range(rs.map((r) => r.cpuPct))} % of a core`);
        console.log(`  ${''.padEnd(9)} kernel RcvbufErrors ${range(rs.map((r) => r.rcvbufErrors))}, SndbufErrors ${range(rs.map((r) => r.sndbufErrors))}, server-socket drops listen ${range(rs.map((r) => r.listenDrops))} / relay ${range(rs.map((r) => r.relayDrops))}` +
          (name === 'embedded' ? `, max lag main ${range(rs.map((r) => r.mainLagMs), 1)} ms / TURN thread ${range(rs.map((r) => r.turnLagMs), 1)} ms` : ''));
      };
      console.log(`load ${factor}x (${clients} clients, ${ROUNDS} runs each):`);
      line('embedded', ours);
      line('coturn', theirs);
      const ratios = ours.flatMap((r, i) => (r.failed || theirs[i]!.failed ? [] : [r.pps / theirs[i]!.pps]));
      console.log(`  ratio embedded/coturn pkt/s per round: ${range(ratios, 2)} (target >= 0.9 at < 0.5 % loss, at 1x)`);
    }
  }
  if (ONLY.has('join')) {
    const alone: { p50: number; p99: number }[] = [];
    const loaded: { p50: number; p99: number }[] = [];
    // The same TURN load carried by coturn (another process) during our join storm: what the
    // load generator and its echo peer alone take from the signalling on these 2 cores.
    const control: { p50: number; p99: number }[] = [];
    const loss: number[] = [];
    const controlLoss: number[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      alone.push(await joinStormOn(aura.port, JOINS, JOIN_RATE, `a${round}-`));
      await sleep(500);
      const [storm, relay] = await Promise.all([joinStormOn(aura.port, JOINS, JOIN_RATE, `b${round}-`), load(AURA, CLIENTS, aura.proc.pid!, aura.port)]);
      loaded.push(storm);
      if (!relay.failed) loss.push(relay.lossPct);
      await sleep(500);
      const [other, theirs] = await Promise.all([joinStormOn(aura.port, JOINS, JOIN_RATE, `c${round}-`), load(COTURN, CLIENTS, coturn.pid!)]);
      control.push(other);
      if (!theirs.failed) controlLoss.push(theirs.lossPct);
      await sleep(500);
    }
    console.log(`join storm, ${JOINS} joins at ${JOIN_RATE}/s (100 rooms), ${ROUNDS} runs each, client-measured join response:`);
    console.log(`  alone           : p50 ${range(alone.map((r) => r.p50), 2)} ms, p99 ${range(alone.map((r) => r.p99), 2)} ms`);
    console.log(`  with TURN load 1x: p50 ${range(loaded.map((r) => r.p50), 2)} ms, p99 ${range(loaded.map((r) => r.p99), 2)} ms (TURN loss during it ${range(loss, 2)} %)`);
    console.log(`  with the load on coturn: p50 ${range(control.map((r) => r.p50), 2)} ms, p99 ${range(control.map((r) => r.p99), 2)} ms (coturn's loss during it ${range(controlLoss, 2)} %: the load generator's share of the 2 cores)`);
    const ratios = loaded.map((r, i) => r.p99 / alone[i]!.p99);
    console.log(`  p99 with / without, per round: ${range(ratios, 2)} (target <= 1.2)`);
    const vsControl = loaded.map((r, i) => r.p99 / control[i]!.p99);
    console.log(`  p99 with embedded TURN / with the load on coturn, per round: ${range(vsControl, 2)}`);
  }
} finally {
  for (const p of peers) p.kill('SIGKILL');
  coturn.kill('SIGKILL');
  await aura.kill();
}
process.exit(0);
