// bench/peers: our signalling next to two hand-written peers, in one run, loopback:
//   - a plain `ws` room server, protoo style (bench/peers/wsRoomServer.ts), the baseline;
//   - a socket.io 4 rooms server (bench/peers/socketioRoomServer.ts).
// Every client is a bare `ws` socket (socket.io's engine.io v4 / socket.io v5 frames spoken
// by hand: `40` connect, `42[...]` events, `3` for its `2` pings), so the client side costs
// the same for all three and does not decide the result. The servers are pinned to one core
// and this process (the clients) to the other (taskset).
//   fan-out:    N receivers + 1 sender in one room; delivered msgs/s, server CPU per delivery
//   join storm: joins at a fixed rate over R rooms; server CPU per join (/proc utime+stime,
//               all threads: PGlite's worker included), client time connect -> join answer
//   idle:       RSS growth per connected idle participant / socket, full GC at both ends
// Usage: node dist/bench/peers.js [--servers pglite,pg,ws,sio] [--only fanout,join,idle]
//   [--rates 500,1000] [--joins 2000] [--rooms 100] [--receivers 50] [--messages 20000]
//   [--idle 5000] [--sfu on|off] [--pin 0,1|none] [--pg postgres://...] [--timeout 1200]
import { execFileSync } from 'node:child_process';
import { cpus, loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type WebSocket from 'ws';
import { auraUrl, connect, cpuSeconds, pct, pumpFanout, rssBytes, serverJoinQuantiles, sleep, startAuraSignal, startProc, storm, type ProcOptions, type Server } from './common.js';
import { codecs, SUBPROTOCOL } from '../src/signal/codec.js';

const { values: args } = parseArgs({
  options: {
    servers: { type: 'string', default: 'pglite,pg,ws,sio' },
    only: { type: 'string', default: 'fanout,join,idle' },
    rates: { type: 'string', default: '500,1000' },
    joins: { type: 'string', default: '2000' },
    rooms: { type: 'string', default: '100' },
    receivers: { type: 'string', default: '50' },
    messages: { type: 'string', default: '20000' },
    payload: { type: 'string', default: '100' },
    idle: { type: 'string', default: '5000' },
    sfu: { type: 'string', default: 'on' },
    pin: { type: 'string', default: '0,1' },
    pg: { type: 'string', default: process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test' },
    timeout: { type: 'string', default: '1200' },
  },
});

// Bounded in time whatever happens: the servers die with this process (common.ts).
const deadline = setTimeout(() => {
  console.error(`bench/peers: over --timeout ${args.timeout} s, stopping`);
  process.exit(2);
}, Number(args.timeout) * 1000);
deadline.unref();

const [serverCpu, clientCpu] = args.pin === 'none' ? [undefined, undefined] : args.pin!.split(',');
if (clientCpu !== undefined) execFileSync('taskset', ['-a', '-pc', clientCpu, String(process.pid)], { stdio: 'ignore' });
const procOpts: ProcOptions = serverCpu !== undefined ? { cpus: serverCpu } : {};

type Kind = 'pglite' | 'pg' | 'ws' | 'sio';
interface Target {
  kind: Kind;
  label: string;
  start(o: ProcOptions): Promise<Server>;
  url(port: number, peer: string, room: string): string;
  protocol?: string;
  /** True at the message that answers the join (the first one, or socket.io's `joined`). */
  ready(ws: WebSocket, data: Buffer, isBinary: boolean): boolean;
  /** After the join: what the connection needs to stay up (socket.io's pongs). */
  keepAlive?(ws: WebSocket): void;
  /** One data message of `payload` bytes to the room. */
  frame(payload: number): Uint8Array | string;
  isData(data: Buffer, isBinary: boolean): boolean;
}

const peer = (file: string) => (o: ProcOptions) => startProc([fileURLToPath(new URL(`./peers/${file}`, import.meta.url))], o);
const sfuOverrides = args.sfu === 'off' ? { sfu: { enabled: false } } : { sfu: { workers: 1 } };
const aura = (kind: 'pglite' | 'pg', label: string, databaseUrl?: string): Target => ({
  kind,
  label,
  start: (o) => startAuraSignal({ ...o, ...(databaseUrl ? { databaseUrl } : {}), overrides: sfuOverrides }),
  url: (port, id, room) => auraUrl(port, id, room),
  protocol: SUBPROTOCOL.proto,
  ready: () => true,
  frame: (n) => codecs.proto.encodeRequest({ sendData: { payload: new Uint8Array(n).fill(7) } }) as Uint8Array,
  isData: () => true,
});
const TARGETS: Record<Kind, Target> = {
  pglite: aura('pglite', 'auralink, embedded PGlite'),
  pg: aura('pg', 'auralink, PostgreSQL by URL', args.pg),
  ws: {
    kind: 'ws',
    label: 'plain ws room server',
    start: peer('wsRoomServer.js'),
    url: (port, id, room) => `ws://127.0.0.1:${port}/?room=${room}&peer=${id}`,
    ready: () => true,
    frame: (n) => JSON.stringify({ notification: true, method: 'data', data: 'x'.repeat(n) }),
    isData: () => true,
  },
  sio: {
    kind: 'sio',
    label: 'socket.io 4 rooms',
    start: peer('socketioRoomServer.js'),
    url: (port, id, room) => `ws://127.0.0.1:${port}/socket.io/?EIO=4&transport=websocket&room=${room}&peer=${id}`,
    ready: (ws, data) => {
      const s = data.toString();
      if (s.startsWith('0{')) ws.send('40'); // engine.io open -> socket.io CONNECT to "/"
      else if (s === '2') ws.send('3');
      return s.startsWith('42["joined"');
    },
    keepAlive: (ws) => ws.on('message', (d: Buffer) => d.length === 1 && d[0] === 0x32 && ws.send('3')),
    frame: (n) => `42${JSON.stringify(['data', 'x'.repeat(n)])}`,
    isData: (d) => d.length > 9 && d.toString('latin1', 0, 9) === '42["data"',
  },
};
const kinds = args.servers!.split(',') as Kind[];
for (const k of kinds) if (!TARGETS[k]) throw new Error(`unknown server ${k} (pglite, pg, ws, sio)`);
const only = new Set(args.only!.split(','));

async function join(t: Target, port: number, id: string, room: string, url?: string): Promise<{ ws: WebSocket; t: number }> {
  const r = await connect(url ?? t.url(port, id, room), t.protocol, t.ready);
  t.keepAlive?.(r.ws);
  return r;
}

async function metricsText(port: number): Promise<string> {
  return (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
}
const metric = (text: string, name: string): number => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1] ?? NaN);

// ---------- fan-out ----------

interface FanoutResult {
  rate: number;
  cpuPerDeliveryUs: number;
}

async function fanout(t: Target): Promise<FanoutResult> {
  const N = Number(args.receivers);
  const M = Number(args.messages);
  const srv = await t.start(procOpts);
  try {
    const receivers: { ws: WebSocket; got: number }[] = [];
    for (let i = 0; i < N; i++) {
      const { ws } = await join(t, srv.port, `r${i}`, 'fan');
      const r = { ws, got: 0 };
      ws.on('message', (d: Buffer, bin: boolean) => t.isData(d, bin) && r.got++);
      receivers.push(r);
    }
    const { ws: sender } = await join(t, srv.port, 'sender', 'fan');
    await sleep(300); // presence events settle
    for (const r of receivers) r.got = 0;
    const frame = t.frame(Number(args.payload));
    const r = await pumpFanout(sender, frame, receivers, M, srv.proc.pid!);
    for (const x of receivers) x.ws.terminate();
    sender.terminate();
    return r;
  } finally {
    await srv.kill();
  }
}

// ---------- join storm ----------

interface JoinResult {
  rate: number;
  achieved: number;
  cpuPerJoinMs: number;
  /** Share of one core the server used over the storm and its tail. */
  coreUse: number;
  p50: number;
  p99: number;
  /** Ours only: the server's join histogram (bucket edges), its event-loop delay, queued writes. */
  server?: { p50: number; p99: number; handlerP50: number; handlerP99: number; lagP50: number; lagP99: number; lagMax: number };
}

async function joinStorm(t: Target, count: number, rate: number): Promise<JoinResult> {
  const rooms = Number(args.rooms);
  const srv = await t.start(procOpts);
  const sockets: WebSocket[] = [];
  try {
    const isAura = t.kind === 'pglite' || t.kind === 'pg';
    // Tokens are signed before the storm (signing during it took CPU from both processes).
    const urls = Array.from({ length: count }, (_, i) => t.url(srv.port, `j${i}`, `room${i % rooms}`));
    // Warm-up (JIT, first-use compilation) in a room of its own, left connected.
    for (let i = 0; i < 50; i++) sockets.push((await join(t, srv.port, `w${i}`, 'warmup')).ws);
    await sleep(1000);
    if (isAura) await metricsText(srv.port); // resets prom-client's event-loop delay histogram
    const pid = srv.proc.pid!;
    const cpu0 = cpuSeconds(pid);
    const t0 = performance.now();
    const { lat, joined, secs } = await storm(count, rate, (i) => join(t, srv.port, '', '', urls[i]));
    for (const r of joined) sockets.push(r.ws);
    // The tail: what a join leaves for later (ours: the write-behind batches) is its cost too.
    await sleep(1000);
    let text = isAura ? await metricsText(srv.port) : '';
    for (let i = 0; isAura && metric(text, 'auralink_db_write_queue') > 0 && i < 20; i++) {
      await sleep(500);
      text = await metricsText(srv.port);
    }
    const cpu = cpuSeconds(pid) - cpu0;
    const wall = (performance.now() - t0) / 1000;
    const r: JoinResult = { rate, achieved: count / secs, cpuPerJoinMs: (cpu / count) * 1000, coreUse: cpu / wall, p50: pct(lat, 50), p99: pct(lat, 99) };
    if (isAura) {
      const q = await serverJoinQuantiles(srv.port);
      r.server = {
        ...q,
        // prom-client's monitorEventLoopDelay runs a 10 ms timer: its samples are 10 ms + the delay.
        lagP50: metric(text, 'auralink_nodejs_eventloop_lag_p50_seconds') * 1000 - 10,
        lagP99: metric(text, 'auralink_nodejs_eventloop_lag_p99_seconds') * 1000 - 10,
        lagMax: metric(text, 'auralink_nodejs_eventloop_lag_max_seconds') * 1000 - 10,
      };
    }
    return r;
  } finally {
    for (const ws of sockets) ws.terminate();
    await srv.kill();
  }
}

// ---------- idle ----------

interface IdleResult {
  n: number;
  /** RSS growth / n, full GC at start and at n. */
  perConn: number;
  /** The same without forcing a GC. */
  perConnNoGc: number;
}

async function idle(t: Target, n: number): Promise<IdleResult> {
  const srv = await t.start({ ...procOpts, inspect: true });
  const pid = srv.proc.pid!;
  const sockets: WebSocket[] = [];
  try {
    await sleep(2000); // start-up settles (workers, database, JIT) before the baseline
    await srv.fullGc();
    await sleep(1000);
    const rss0 = rssBytes(pid);
    for (let i = 0; i < n; i += 500) {
      const batch: Promise<{ ws: WebSocket }>[] = [];
      for (let j = i; j < Math.min(n, i + 500); j++) batch.push(join(t, srv.port, `i${j}`, `room${Math.floor(j / 10)}`)); // rooms of 10
      for (const r of await Promise.all(batch)) sockets.push(r.ws);
    }
    // Ours keeps each room's recent messages for resume: idle means past the window (20 s).
    await sleep(t.kind === 'pglite' || t.kind === 'pg' ? 26_000 : 3000);
    const rssNoGc = rssBytes(pid);
    await srv.fullGc();
    await sleep(2000);
    const rss1 = rssBytes(pid);
    return { n, perConn: (rss1 - rss0) / n, perConnNoGc: (rssNoGc - rss0) / n };
  } finally {
    for (const ws of sockets) ws.terminate();
    await srv.kill();
  }
}

// ---------- report ----------

const ratio = (x: number, base: number | undefined): string => (base ? `${(x / base).toFixed(2)}×` : '—');
const f = (x: number, d = 2): string => x.toFixed(d);
const log = (s: string): void => console.log(s);
const base = TARGETS.ws;
log(`bench/peers (1-min load average at start ${loadavg()[0]!.toFixed(1)}): servers on CPU ${serverCpu ?? 'any'}, clients on CPU ${clientCpu ?? 'any'}; SFU ${args.sfu === 'off' ? 'off' : 'on (1 worker, idle)'}; ratios are to the ${base.label} in this run`);

if (only.has('fanout')) {
  const res = new Map<Kind, FanoutResult>();
  // Fan-out does not touch the database: ours once, with the default (PGlite).
  for (const k of kinds.filter((k) => k !== 'pg')) res.set(k, await fanout(TARGETS[k]));
  const b = res.get('ws');
  log(`\nfan-out, ${args.receivers} receivers, ${args.messages} msgs of ${args.payload} B:`);
  log('| server | delivered msgs/s | × ws | server CPU µs/delivery | × ws |');
  log('|---|---|---|---|---|');
  for (const [k, r] of res) {
    log(`| ${TARGETS[k].label} | ${Math.round(r.rate).toLocaleString('en')} | ${ratio(r.rate, b?.rate)} | ${f(r.cpuPerDeliveryUs)} | ${ratio(r.cpuPerDeliveryUs, b?.cpuPerDeliveryUs)} |`);
  }
}
if (only.has('join')) {
  const count = Number(args.joins);
  for (const rate of args.rates!.split(',').map(Number)) {
    const res = new Map<Kind, JoinResult>();
    for (const k of kinds) res.set(k, await joinStorm(TARGETS[k], count, rate));
    const b = res.get('ws');
    log(`\njoin storm, ${count} joins over ${args.rooms} rooms at ${rate}/s (client time: connect -> join answer; 1-min load average now ${loadavg()[0]!.toFixed(1)} on ${cpus().length} cores):`);
    log('| server | achieved/s | server CPU ms/join | × ws | core use | client p50 ms | client p99 ms | × ws (p99) |');
    log('|---|---|---|---|---|---|---|---|');
    for (const [k, r] of res) {
      log(
        `| ${TARGETS[k].label} | ${Math.round(r.achieved)} | ${f(r.cpuPerJoinMs, 3)} | ${ratio(r.cpuPerJoinMs, b?.cpuPerJoinMs)} | ${Math.round(r.coreUse * 100)}% | ${f(r.p50)} | ${f(r.p99)} | ${ratio(r.p99, b?.p99)} |`,
      );
    }
    for (const [k, r] of res) {
      if (!r.server) continue;
      const s = r.server;
      log(
        `  ${TARGETS[k].label}: auralink_signal_join_seconds p50 <= ${s.p50} ms, p99 <= ${s.p99} ms (loop turn that read the upgrade -> join sent); ` +
          `_handler_seconds p50 <= ${s.handlerP50} ms, p99 <= ${s.handlerP99} ms (upgrade handler -> join sent); client p50 ${f(r.p50)}, p99 ${f(r.p99)} ms; ` +
          `event-loop delay over storm + tail (prom-client, 10 ms timer) p50 ${f(s.lagP50)}, p99 ${f(s.lagP99)}, max ${f(s.lagMax)} ms`,
      );
    }
  }
}
if (only.has('idle')) {
  const n = Number(args.idle);
  const res = new Map<Kind, IdleResult>();
  for (const k of kinds) res.set(k, await idle(TARGETS[k], n));
  const b = res.get('ws');
  log(`\nidle, ${n} connected (rooms of 10), RSS growth from start / n, full GC (inspector) at both ends:`);
  log('| server | B per participant / socket | × ws | without forcing GC |');
  log('|---|---|---|---|');
  for (const [k, r] of res) log(`| ${TARGETS[k].label} | ${Math.round(r.perConn)} | ${ratio(r.perConn, b?.perConn)} | ${Math.round(r.perConnNoGc)} |`);
}
process.exit(0);
