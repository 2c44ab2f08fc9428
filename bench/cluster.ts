// bench/cluster: a room of N participants spread over 3 nodes (one Redis) next to the same
// room on one node without Redis, in the same run: join latency, data delivery latency
// (sender on node 1, receivers everywhere; cross-node ones reported apart), fan-out
// throughput, and Redis commands per join and per message (INFO commandstats before/after).
// Usage: npm run bench:cluster   (N=60 MESSAGES=200 BURST=500 RUNS=3)
import { execFileSync } from 'node:child_process';
import { Redis } from 'ioredis';
import WebSocket from 'ws';
import { createToken } from '../src/auth/token.js';
import { SignalClient, type WebSocketCtor } from '../src/client/signalClient.js';
import { KEY, pct, SECRET, sleep, startAura, type Server } from './common.js';

const N = Number(process.env.N ?? 60);
const MESSAGES = Number(process.env.MESSAGES ?? 200);
const BURST = Number(process.env.BURST ?? 500);
const RUNS = Number(process.env.RUNS ?? 3);
const PG = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const REDIS_PORT = 17400 + Math.floor(Math.random() * 500);
const REDIS = `redis://127.0.0.1:${REDIS_PORT}`;

async function commands(r: Redis): Promise<number> {
  const info = await r.info('commandstats');
  let n = 0;
  for (const m of info.matchAll(/^cmdstat_(\w+):calls=(\d+)/gm)) if (m[1] !== 'info') n += Number(m[2]);
  return n;
}

interface Result {
  joinP50: number;
  joinP99: number;
  crossP50: number;
  crossP99: number;
  localP50: number;
  localP99: number;
  throughput: number;
  cmdsPerJoin: number;
  cmdsPerMsg: number;
}

async function scenario(nodes: Server[], room: string, redis: Redis | undefined): Promise<Result> {
  const clients: SignalClient[] = [];
  const joinMs: number[] = [];
  const c0 = redis ? await commands(redis) : 0;
  for (let i = 0; i < N; i++) {
    const node = nodes[i % nodes.length]!;
    const token = createToken(KEY, SECRET, { identity: `p${i}`, video: { roomJoin: true, room } });
    const t0 = performance.now();
    clients.push(await SignalClient.connect(`ws://127.0.0.1:${node.port}`, token, { WebSocket: WebSocket as unknown as WebSocketCtor, autoPing: false }));
    joinMs.push(performance.now() - t0);
  }
  const c1 = redis ? await commands(redis) : 0;
  // Everyone sees everyone before measuring.
  const deadline = Date.now() + 10_000;
  while (clients.some((c) => c.participants.size < N - 1) && Date.now() < deadline) await sleep(50);
  const sender = clients[0]!;
  const cross: number[] = [];
  const local: number[] = [];
  const sent = new Map<number, number>();
  let received = 0;
  clients.slice(1).forEach((c, idx) => {
    const remote = (idx + 1) % nodes.length !== 0;
    c.on('data', (d) => {
      received++;
      const at = sent.get(Number(new TextDecoder().decode(d.payload)));
      if (at !== undefined) (remote ? cross : local).push(performance.now() - at);
    });
  });
  const c2 = redis ? await commands(redis) : 0;
  for (let i = 0; i < MESSAGES; i++) {
    sent.set(i, performance.now());
    sender.publishData(new TextEncoder().encode(String(i)));
    await sleep(5);
  }
  const want = MESSAGES * (N - 1);
  while (received < want && Date.now() < deadline + 20_000) await sleep(10);
  const c3 = redis ? await commands(redis) : 0;
  // Throughput: a burst, until every receiver has every message.
  received = 0;
  sent.clear();
  const t0 = performance.now();
  for (let i = 0; i < BURST; i++) sender.publishData(new TextEncoder().encode(`b${i}`));
  const wantB = BURST * (N - 1);
  const end = Date.now() + 60_000;
  while (received < wantB && Date.now() < end) await sleep(5);
  const throughput = received / ((performance.now() - t0) / 1000);
  for (const c of clients) await c.leave().catch(() => undefined);
  return {
    joinP50: pct(joinMs, 50),
    joinP99: pct(joinMs, 99),
    crossP50: cross.length ? pct(cross, 50) : NaN,
    crossP99: cross.length ? pct(cross, 99) : NaN,
    localP50: pct(local, 50),
    localP99: pct(local, 99),
    throughput,
    cmdsPerJoin: (c1 - c0) / N,
    cmdsPerMsg: (c3 - c2) / MESSAGES,
  };
}

const f = (x: number, d = 2): string => (Number.isNaN(x) ? '-' : x.toFixed(d));
const show = (label: string, r: Result): void =>
  console.log(
    `${label.padEnd(22)} join p50/p99 ${f(r.joinP50)}/${f(r.joinP99)} ms | data same-node p50/p99 ${f(r.localP50)}/${f(r.localP99)} ms | cross-node p50/p99 ${f(r.crossP50)}/${f(r.crossP99)} ms | ` +
      `fan-out ${f(r.throughput, 0)} deliveries/s | redis cmds/join ${f(r.cmdsPerJoin, 1)} cmds/msg ${f(r.cmdsPerMsg, 2)}`,
  );

execFileSync('redis-server', ['--port', String(REDIS_PORT), '--bind', '127.0.0.1', '--daemonize', 'yes', '--save', '', '--appendonly', 'no', '--dir', '/tmp']);
await sleep(300);
const redis = new Redis(REDIS);
const base = { sfu: { enabled: false }, turn: { mode: 'off' }, database: { url: PG }, log_level: 'info', signal: { rate_limit: { messages_per_s: 100_000, burst: 100_000 } } };
console.log(`bench/cluster: room of ${N}, ${MESSAGES} timed messages (5 ms apart), burst of ${BURST}, ${RUNS} runs`);
const cl = await Promise.all([1, 2, 3].map((i) => startAura({ ...base, node_id: `bench-${i}`, redis: { url: REDIS }, mesh: { redis_prefix: 'bench:', heartbeat_ms: 1000, probe_interval_ms: 0 } })));
const single = await startAura({ ...base, node_id: 'bench-single' });
const all: { one: Result; three: Result }[] = [];
try {
  for (let run = 1; run <= RUNS; run++) {
    const one = await scenario([single], `one-${run}`, undefined);
    const three = await scenario(cl, `three-${run}`, redis);
    show(`run ${run}: 1 node`, one);
    show(`run ${run}: 3 nodes`, three);
    all.push({ one, three });
  }
  const range = (xs: number[], d = 2): string => `${f(Math.min(...xs), d)}–${f(Math.max(...xs), d)}`;
  console.log(`\nranges over ${RUNS} runs (1 node | 3 nodes):`);
  console.log(`  join p99 ms          ${range(all.map((a) => a.one.joinP99))} | ${range(all.map((a) => a.three.joinP99))}`);
  console.log(`  data p99 ms          ${range(all.map((a) => a.one.localP99))} | cross-node ${range(all.map((a) => a.three.crossP99))}`);
  console.log(`  fan-out deliveries/s ${range(all.map((a) => a.one.throughput), 0)} | ${range(all.map((a) => a.three.throughput), 0)}`);
  console.log(`  redis cmds/join      - | ${range(all.map((a) => a.three.cmdsPerJoin), 1)};  cmds/msg - | ${range(all.map((a) => a.three.cmdsPerMsg))}`);
} finally {
  await Promise.all([...cl, single].map((s) => s.kill()));
  redis.disconnect();
  execFileSync('redis-cli', ['-p', String(REDIS_PORT), 'shutdown', 'nosave']);
}
