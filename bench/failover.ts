// Issue 16: how long a call is without media when its node is lost (SIGKILL) or drained
// (SIGTERM), real browsers, default mesh timings. Two edge nodes and a private Redis; per run,
// `--movers` Chromium pages on the victim node and one observer page on the other. Each
// mover's time is from the signal to the observer decoding 10 frames of that mover's camera
// from its new track (the SDK rejoins on the other node, republishes; the observer
// subscribes to the new producer). Baseline in the same run: a fresh page joining the
// observer's node, from the join click to the same 10 frames (what any join costs).
//
//   npm run bench:failover -- [--runs 3] [--movers 2] [--heartbeat 1000]
import { execFileSync } from 'node:child_process';
import { loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import type { Browser, Page } from 'playwright-core';
import { find, joinDemo, launch, remoteStats } from '../test/chromium.js';
import type { TestServer } from '../test/helpers.js';
import { pct, sleep, startAura, until, type Server } from './common.js';

const { values: args } = parseArgs({
  options: {
    runs: { type: 'string', default: '3' },
    movers: { type: 'string', default: '2' },
    heartbeat: { type: 'string', default: '1000' },
    database: { type: 'string', default: 'postgres://postgres@127.0.0.1:5432/test' },
  },
});
const RUNS = Number(args.runs);
const MOVERS = Number(args.movers);
const REDIS_PORT = 18400 + Math.floor(Math.random() * 1000);
const PREFIX = `bench:fo:${Date.now()}:`;

execFileSync('redis-server', ['--port', String(REDIS_PORT), '--bind', '127.0.0.1', '--daemonize', 'yes', '--save', '', '--appendonly', 'no', '--dir', '/tmp']);
const stopRedis = (): void => {
  try {
    execFileSync('redis-cli', ['-p', String(REDIS_PORT), 'shutdown', 'nosave'], { stdio: 'ignore' });
  } catch {
    /* gone */
  }
};
process.once('exit', stopRedis);

// Each scenario its own mesh and directory (a prefix of its own): nodes SIGKILLed by the last
// one stay in the registry until their lease passes and would count as mesh members.
const node = (id: string, prefix = `${PREFIX}${id}:`): Promise<Server> =>
  startAura({
    development: true,
    node_id: id,
    redis: { url: `redis://127.0.0.1:${REDIS_PORT}` },
    mesh: { redis_prefix: prefix, heartbeat_ms: Number(args.heartbeat), probe_interval_ms: 0 },
    database: { url: args.database },
    turn: { mode: 'off' },
    drain: { timeout_s: 20 },
  });

/** What joinDemo needs of a server (the test helper's shape). */
const asTest = (s: Server): TestServer => ({ http: `http://127.0.0.1:${s.port}`, url: `ws://127.0.0.1:${s.port}` }) as TestServer;
const decoded = async (page: Page, identity: string): Promise<number> => find(await remoteStats(page), identity, 'camera')?.framesDecoded ?? 0;

async function meshNodes(s: Server): Promise<number> {
  const h = (await (await fetch(`http://127.0.0.1:${s.port}/health`)).json()) as { mesh?: { nodes: number } };
  return h.mesh?.nodes ?? 0;
}

/** Resolves with ms from `t0` when the observer decodes 10 frames of `identity`'s camera from a new track. */
async function backOn(observer: Page, identity: string, t0: number, timeoutMs = 30_000): Promise<number> {
  let last = await decoded(observer, identity);
  let restarted = false;
  const end = t0 + timeoutMs;
  while (Date.now() < end) {
    const n = await decoded(observer, identity);
    if (n < last) restarted = true;
    last = n;
    if (restarted && n >= 10) return Date.now() - t0;
    await sleep(20);
  }
  return Number.NaN;
}

async function scenario(browser: Browser, mode: 'kill' | 'drain', run: number): Promise<{ times: number[]; dropped: number }> {
  const prefix = `${PREFIX}${mode}${run}:`;
  const [victim, survivor] = await Promise.all([node(`fo-v${run}-${mode}`, prefix), node(`fo-s${run}-${mode}`, prefix)]);
  const pages: Page[] = [];
  try {
    await until(async () => (await meshNodes(victim)) === 2 && (await meshNodes(survivor)) === 2, 15_000, 'both nodes in the mesh');
    const room = `fo-${mode}-${run}`;
    const names = Array.from({ length: MOVERS }, (_, i) => `mover${i}`);
    const movers = await joinDemo(browser, asTest(victim), room, names);
    const { observer } = await joinDemo(browser, asTest(survivor), room, ['observer']);
    pages.push(...Object.values(movers), observer!);
    for (const n of names) await until(async () => (await decoded(observer!, n)) > 10, 30_000, `observer decodes ${n}`);
    let dropped = 0;
    for (const p of Object.values(movers)) {
      await p.evaluate(() => {
        const w = window as unknown as { auralinkRoom: { on(e: string, f: () => void): void }; __dropped?: boolean };
        w.auralinkRoom.on('disconnected', () => (w.__dropped = true));
      });
    }
    const t0 = Date.now();
    if (mode === 'kill') victim.proc.kill('SIGKILL');
    else victim.proc.kill('SIGTERM');
    const times = await Promise.all(names.map((n) => backOn(observer!, n, t0)));
    for (const p of Object.values(movers)) if (await p.evaluate(() => !!(window as unknown as { __dropped?: boolean }).__dropped)) dropped++;
    return { times, dropped };
  } finally {
    for (const p of pages) await p.context().close().catch(() => undefined);
    await Promise.all([victim.kill(), survivor.kill()]);
  }
}

async function baseline(browser: Browser, run: number): Promise<number> {
  const s = await node(`fo-b${run}`);
  const pages: Page[] = [];
  try {
    const { observer } = await joinDemo(browser, asTest(s), `fo-base-${run}`, ['observer']);
    pages.push(observer!);
    const t0 = Date.now();
    const { joiner } = await joinDemo(browser, asTest(s), `fo-base-${run}`, ['joiner']);
    pages.push(joiner!);
    await until(async () => (await decoded(observer!, 'joiner')) >= 10, 30_000, 'observer decodes the joiner');
    return Date.now() - t0;
  } finally {
    for (const p of pages) await p.context().close().catch(() => undefined);
    await s.kill();
  }
}

const fmt = (xs: number[]): string => {
  const ok = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (ok.length === 0) return 'none';
  return `n=${xs.length} p50 ${pct(ok, 50).toFixed(0)} ms, p95 ${pct(ok, 95).toFixed(0)} ms, range ${ok[0]!.toFixed(0)}–${ok.at(-1)!.toFixed(0)} ms${ok.length < xs.length ? `, ${xs.length - ok.length} never came back` : ''}`;
};

const browser = await launch();
const all = { kill: [] as number[], drain: [] as number[], base: [] as number[] };
let droppedTotal = 0;
const failures: string[] = [];
try {
  console.log(`bench/failover: ${RUNS} runs, ${MOVERS} movers each, mesh.heartbeat_ms ${args.heartbeat}, load ${loadavg().map((l) => l.toFixed(1)).join(' ')}`);
  // A run whose set-up fails (media not flowing before the signal) is reported and skipped.
  const attempt = async <T>(what: string, f: () => Promise<T>): Promise<T | undefined> => {
    try {
      return await f();
    } catch (err) {
      failures.push(`${what}: ${(err as Error).message}`);
      console.log(`  ${what} failed: ${(err as Error).message}`);
      return undefined;
    }
  };
  for (let r = 0; r < RUNS; r++) {
    const base = await attempt(`run ${r + 1} baseline`, () => baseline(browser, r));
    const k = await attempt(`run ${r + 1} kill`, () => scenario(browser, 'kill', r));
    const d = await attempt(`run ${r + 1} drain`, () => scenario(browser, 'drain', r));
    if (base !== undefined) all.base.push(base);
    all.kill.push(...(k?.times ?? []));
    all.drain.push(...(d?.times ?? []));
    droppedTotal += (k?.dropped ?? 0) + (d?.dropped ?? 0);
    const fmtRun = (x: { times: number[] } | undefined): string => (x ? `${x.times.map((t) => t.toFixed(0)).join(', ')} ms` : 'failed');
    console.log(`run ${r + 1}: baseline join ${base ?? 'failed'} ms | kill ${fmtRun(k)} | drain ${fmtRun(d)} | dropped ${(k?.dropped ?? 0) + (d?.dropped ?? 0)}`);
  }
  console.log(`\nbaseline (a fresh join, to media at the observer): ${fmt(all.base)}`);
  console.log(`SIGKILL -> media again, per moved participant:    ${fmt(all.kill)}   target p95 < 5000 ms`);
  console.log(`SIGTERM -> media again, per moved participant:    ${fmt(all.drain)}`);
  console.log(`participants dropped (SDK gave up):              ${droppedTotal}`);
  console.log(`runs that failed to set up or measure:           ${failures.length}${failures.length ? `\n  ${failures.join('\n  ')}` : ''}`);
  console.log(`load at the end: ${loadavg().map((l) => l.toFixed(1)).join(' ')}`);
} finally {
  await browser.close();
  stopRedis();
}
process.exit(0);
