// One-off probe for issue 12's join target: where does a cluster join's extra time go?
// The same sequential joins (room of N) against one node without Redis, one node with Redis
// (cluster mode, alone), and three nodes with Redis, alternated; client time to join answer.
// Usage: node dist/bench/joinCluster.js   (N=60 RUNS=3)
import { execFileSync } from 'node:child_process';
import WebSocket from 'ws';
import { createToken } from '../src/auth/token.js';
import { SignalClient, type WebSocketCtor } from '../src/client/signalClient.js';
import { KEY, pct, SECRET, sleep, startAura, type Server } from './common.js';

const N = Number(process.env.N ?? 60);
const RUNS = Number(process.env.RUNS ?? 3);
const PG = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const REDIS_PORT = 17900 + Math.floor(Math.random() * 90);
const REDIS = `redis://127.0.0.1:${REDIS_PORT}`;

async function joins(nodes: Server[], room: string): Promise<number[]> {
  const clients: SignalClient[] = [];
  const ms: number[] = [];
  for (let i = 0; i < N; i++) {
    const node = nodes[i % nodes.length]!;
    const token = createToken(KEY, SECRET, { identity: `p${i}`, video: { roomJoin: true, room } });
    const t0 = performance.now();
    clients.push(await SignalClient.connect(`ws://127.0.0.1:${node.port}`, token, { WebSocket: WebSocket as unknown as WebSocketCtor, autoPing: false }));
    ms.push(performance.now() - t0);
  }
  for (const c of clients) await c.leave().catch(() => undefined);
  return ms;
}

execFileSync('redis-server', ['--port', String(REDIS_PORT), '--bind', '127.0.0.1', '--daemonize', 'yes', '--save', '', '--appendonly', 'no', '--dir', '/tmp']);
await sleep(300);
const base = { sfu: { enabled: false }, turn: { mode: 'off' }, database: { url: PG }, log_level: 'info' };
const mesh = (p: string) => ({ redis: { url: REDIS }, mesh: { redis_prefix: p, heartbeat_ms: 1000, probe_interval_ms: 0 } });
const plain = await startAura({ ...base, node_id: 'jc-plain' });
const alone = await startAura({ ...base, node_id: 'jc-alone', ...mesh('jca:') });
const three = await Promise.all([1, 2, 3].map((i) => startAura({ ...base, node_id: `jc-${i}`, ...mesh('jc3:') })));
const f = (xs: number[]): string => `p50 ${pct(xs, 50).toFixed(2)} p99 ${pct(xs, 99).toFixed(2)} ms`;
try {
  for (let run = 1; run <= RUNS; run++) {
    const a = await joins([plain], `p-${run}`);
    const b = await joins([alone], `a-${run}`);
    const c = await joins(three, `t-${run}`);
    console.log(`run ${run}: one node, no Redis ${f(a)} | one node, cluster mode ${f(b)} | three nodes ${f(c)}`);
  }
} finally {
  await Promise.all([plain, alone, ...three].map((s) => s.kill()));
  execFileSync('redis-cli', ['-p', String(REDIS_PORT), 'shutdown', 'nosave']);
}
