// Soak: one server process with its defaults (embedded PGlite, no Redis, embedded TURN, one
// mediasoup worker per core, plain RTP allowed) under continuous churn for --minutes:
// participants join and leave (or just vanish: the server drops them after the resume
// window), publish and subscribe plain RTP, send data, drop their sockets and resume with
// their resume token; RoomService (livekit-server-sdk) lists, updates, sends data and removes
// participants; a mediasoup worker is SIGKILLed every --kill-every minutes. Every --sample-s:
// RSS and V8 heap after a full GC, active handles/timers by type, mediasoup objects (per
// worker from its dump), database writes. At the end everyone leaves and the rooms close:
// RSS growth after warm-up (target < 5 %), mediasoup objects and active resources back to
// the baseline taken before the churn (target: nothing left), call_participants rows =
// sessions started (read from the PGlite directory once the server has stopped); before the
// teardown, with the churn stopped, the server's transports, producers and consumers equal
// what the clients hold (a leak inside a room still open shows there). Exits 1 on a
// leak. Redis: not used (a single node). --postgres URL: PostgreSQL instead of PGlite, in a
// database the soak creates on that server and drops; rows are then counted at every sample.
// Usage: node dist/bench/soak.js [--minutes 10] [--sample-s 30] [--warmup-min W] [--kill-every 3] [--rooms 6] [--per-room 5] [--seed 1] [--postgres URL] [--server-log FILE]
import { createWriteStream, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { spawnSync } from 'node:child_process';
import { DataPacket_Kind } from '@livekit/protocol';
import { PGlite } from '@electric-sql/pglite';
import pg from 'pg';
import { RoomServiceClient } from 'livekit-server-sdk';
import { Redis } from 'ioredis';
import { KEY, SECRET, sleep, startAura } from './common.js';
import { Member, newCounters } from './soak/member.js';
import { fmtResources, steadyResources, takeSample, type Sample } from './soak/sample.js';

const { values: args } = parseArgs({
  options: {
    minutes: { type: 'string', default: '10' },
    'sample-s': { type: 'string', default: '30' },
    'warmup-min': { type: 'string' },
    'kill-every': { type: 'string', default: '3' },
    rooms: { type: 'string', default: '6' },
    'per-room': { type: 'string', default: '5' },
    seed: { type: 'string', default: '1' },
    /** PostgreSQL server URL instead of embedded PGlite: the soak creates its own database there (and drops it). */
    postgres: { type: 'string' },
    /** The server's log (pino JSON lines) goes here; by default it is discarded. */
    'server-log': { type: 'string' },
    /** A Redis URL: the server runs in cluster mode (room directory, mesh registry) on a prefix of the soak's own, whose keys are counted at every sample and must be back to the baseline at the end. */
    redis: { type: 'string' },
  },
});
const MINUTES = Number(args.minutes);
const SAMPLE_MS = Number(args['sample-s']) * 1000;
const WARMUP_MS = (args['warmup-min'] ? Number(args['warmup-min']) : Math.max(1, Math.min(5, MINUTES / 5))) * 60_000;
const KILL_MS = Number(args['kill-every']) * 60_000;
const ROOMS = Number(args.rooms);
const PER_ROOM = Number(args['per-room']);
const TARGET = ROOMS * PER_ROOM;

/** mulberry32: the same seed makes the same sequence of actions. */
let seedState = Number(args.seed) >>> 0;
const rand = (): number => {
  seedState = (seedState + 0x6d2b79f5) >>> 0;
  let t = seedState;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
};
const pick = <T>(xs: readonly T[]): T | undefined => (xs.length ? xs[Math.floor(rand() * xs.length)] : undefined);

const rtcBase = 10_000 + Math.floor(Math.random() * 25) * 400;
const dataDir = mkdtempSync(join(tmpdir(), 'auralink-soak-'));
process.once('exit', () => rmSync(dataDir, { recursive: true, force: true }));
// With --postgres: a database of our own on that server, rows counted live at every sample.
let pgUrl: string | undefined;
if (args.postgres) {
  const name = `soak_${process.pid}_${Date.now()}`;
  const admin = new pg.Client({ connectionString: args.postgres });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const u = new URL(args.postgres);
  u.pathname = `/${name}`;
  pgUrl = u.toString();
  process.once('exit', () => {
    // Dropped by a child process: 'exit' handlers cannot wait.
    spawnSync(process.execPath, ['-e', `const c=new (require('pg').Client)({connectionString:${JSON.stringify(args.postgres)}});c.connect().then(()=>c.query('DROP DATABASE IF EXISTS ${name} WITH (FORCE)')).finally(()=>c.end())`], { cwd: process.cwd(), stdio: 'ignore' });
  });
}
const rowsNow = async (sql: string): Promise<number> => {
  const c = new pg.Client({ connectionString: pgUrl });
  await c.connect();
  try {
    return Number((await c.query<{ n: number }>(sql)).rows[0]!.n);
  } finally {
    await c.end();
  }
};
// With --redis: the keys under the soak's own prefix (KEYS on a prefix of a bench's own Redis use).
const redisPrefix = `soak:${process.pid}:${Date.now()}:`;
const redis = args.redis ? new Redis(args.redis, { lazyConnect: false }) : undefined;
const redisKeys = async (): Promise<number> => (redis ? (await redis.keys(`${redisPrefix}*`)).length : 0);
const srv = await startAura(
  {
    log_level: 'info',
    ...(args.redis ? { redis: { url: args.redis }, mesh: { redis_prefix: redisPrefix } } : {}),
    database: pgUrl ? { url: pgUrl } : { data_dir: join(dataDir, 'pglite') },
    // Plain transports take ports from rtc_min_port..rtc_max_port: a range wide enough for
    // everyone's (startAura's default is 16 ports), below the ranges startAura picks from.
    sfu: { workers: 0, allow_plain_transports: true, rtc_min_port: rtcBase, rtc_max_port: rtcBase + 399 },
    room: { empty_timeout_s: 5 },
  },
  { inspect: true },
);
if (args['server-log']) srv.proc.stdout!.pipe(createWriteStream(args['server-log']));
const url = `ws://127.0.0.1:${srv.port}`;
const http = `http://127.0.0.1:${srv.port}`;
const api = new RoomServiceClient(http, KEY, SECRET);
const n = newCounters();
const members = new Set<Member>();
let nextId = 0;
let inflight = 0;
const apiCalls: Record<string, number> = {};
const apiErrors: Record<string, number> = {};
let kills = 0;
const t0 = performance.now();
const elapsed = (): string => `${((performance.now() - t0) / 60_000).toFixed(1)} min`;

const track = (what: string, p: Promise<unknown>): void => {
  inflight++;
  p.catch((err: { code?: string; message?: string }) => {
    const k = `${what}: ${err.code ?? (err.message ?? 'error').slice(0, 60)}`;
    apiErrors[k] = (apiErrors[k] ?? 0) + 1;
  }).finally(() => inflight--);
};

async function join1(room: string): Promise<void> {
  const identity = `u${nextId++}`;
  try {
    const m = await Member.join(url, identity, room, rand() < 0.7, n, (x) => members.delete(x));
    members.add(m);
  } catch (err) {
    // SignalClient: "connection closed before join (1006: Unexpected server response: 503)".
    const k = /server response: (\d+)/.exec(String(err))?.[1] ?? String(err).slice(0, 60);
    n.joinsRefused[k] = (n.joinsRefused[k] ?? 0) + 1;
  }
}

const roomOf = (): string => `soak${Math.floor(rand() * ROOMS)}`;
const live = (): Member[] => [...members].filter((m) => !m.gone);

/** One random action: churn keeps the population near TARGET. */
function act(): void {
  const r = rand();
  const people = live();
  if (r < 0.4) {
    const grow = people.length < TARGET ? rand() < 0.65 : rand() < 0.35;
    if (grow) return track('join', join1(roomOf()));
    const m = pick(people);
    if (m) track('leave', m.leave(rand() < 0.25));
  } else if (r < 0.7) {
    const m = pick(people);
    if (m) track('data', m.sendData(new Uint8Array(100).fill(nextId & 0xff)));
  } else if (r < 0.76) {
    const m = pick(people);
    m?.client.simulateDrop(); // it resumes with its resume token
  } else if (r < 0.8) {
    const m = pick(people);
    if (m) track('updateParticipant', m.client.updateParticipant({ metadata: `m${nextId}` }));
  } else {
    const m = pick(people);
    const room = m?.room ?? roomOf();
    const q = rand();
    const call = (name: string, p: Promise<unknown>): void => {
      apiCalls[name] = (apiCalls[name] ?? 0) + 1;
      track(`api.${name}`, p);
    };
    if (q < 0.25) call('listRooms', api.listRooms());
    else if (q < 0.5) call('listParticipants', api.listParticipants(room));
    else if (q < 0.65 && m) call('updateParticipant', api.updateParticipant(room, m.identity, `api${nextId}`));
    else if (q < 0.8) call('sendData', api.sendData(room, new Uint8Array(64), DataPacket_Kind.RELIABLE, { topic: 'api' }));
    else if (q < 0.9) call('updateRoomMetadata', api.updateRoomMetadata(room, `meta${nextId}`).catch((e: { code?: string }) => {
      if (e.code !== 'not_found') throw e; // the room closed meanwhile
    }));
    else if (m) call('removeParticipant', api.removeParticipant(room, m.identity));
  }
}

async function killWorker(): Promise<void> {
  const h = (await (await fetch(`${http}/health`)).json()) as { sfu: { workers: { index: number; pid: number }[] } };
  const w = h.sfu.workers[kills % h.sfu.workers.length]!;
  process.kill(w.pid, 'SIGKILL');
  kills++;
  console.log(`  [${elapsed()}] SIGKILL mediasoup worker ${w.index} (pid ${w.pid})`);
}

const line = (s: Sample, label: string): string =>
  `  ${label.padEnd(9)} t=${(s.t / 60).toFixed(1).padStart(5)} min  RSS ${s.rssMB.toFixed(1)} MB  heap ${s.heapUsedMB.toFixed(1)} MB  ext ${s.externalMB.toFixed(1)} MB  ` +
  `people ${s.participants}/rooms ${s.rooms}  sfu r/t/p/c ${s.sfu.router}/${s.sfu.transport}/${s.sfu.producer}/${s.sfu.consumer}  worker objects [${s.workerObjects.join(', ')}]  ` +
  `worker RSS [${s.workerRssMB.map((x) => x.toFixed(0)).join(', ')}] MB  db writes ${s.db.writes} (queue ${s.db.queue}, dropped ${s.db.dropped}, dead ${s.db.deadLetters})${s.overloaded ? '  OVERLOADED' : ''}\n` +
  `            resources: ${fmtResources(s.resources)}`;

// ---------- priming, then the baseline ----------
// One short call first, so what the server creates once on first use (the worker's first
// router, the database's first statements) is in the baseline, not counted as a leak.
console.log(`soak: ${MINUTES} min, ${ROOMS} rooms x ~${PER_ROOM}, sample every ${SAMPLE_MS / 1000} s, warm-up ${WARMUP_MS / 60_000} min, worker kill every ${KILL_MS / 60_000} min, seed ${args.seed}`);
{
  const a = await Member.join(url, 'prime-a', 'prime', true, n, () => undefined);
  const b = await Member.join(url, 'prime-b', 'prime', true, n, () => undefined);
  await sleep(2000);
  await a.sendData(new Uint8Array(10));
  await a.leave();
  await b.leave();
}
async function settle(what: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const h = (await (await fetch(`${http}/health`)).json()) as { rooms: number; participants: number };
    const text = await (await fetch(`${http}/metrics`)).text();
    const queue = Number(/^auralink_db_write_queue (\S+)$/m.exec(text)?.[1] ?? 0);
    if (h.rooms === 0 && h.participants === 0 && queue === 0) return;
    if (Date.now() > deadline) {
      console.log(`  ${what}: still ${h.participants} participants, ${h.rooms} rooms, ${queue} writes queued after ${timeoutMs / 1000} s`);
      return;
    }
    await sleep(500);
  }
}
await settle('priming', 30_000);
const baselineKeys = await redisKeys();
const baseline = await takeSample(srv, t0);
baseline.resources = await steadyResources(srv, 'max');
console.log(line(baseline, 'baseline'));

// ---------- the churn ----------
const samples: Sample[] = [];
let rtpAtLastSample = n.rtpReceived;
let lastSampleAt = performance.now();
let stopping = false;
const ticker = setInterval(() => {
  if (!stopping && inflight < 30) act();
}, 200);
const killer = setInterval(() => void killWorker().catch((e: Error) => console.log(`  worker kill failed: ${e.message}`)), KILL_MS);
const endAt = Date.now() + MINUTES * 60_000;
while (Date.now() < endAt) {
  await sleep(Math.min(SAMPLE_MS, endAt - Date.now()));
  const s = await takeSample(srv, t0);
  samples.push(s);
  const now = performance.now();
  const rtpRate = (n.rtpReceived - rtpAtLastSample) / ((now - lastSampleAt) / 1000);
  rtpAtLastSample = n.rtpReceived;
  lastSampleAt = now;
  const phase = s.t * 1000 < WARMUP_MS ? 'warm-up' : 'load';
  console.log(line(s, phase));
  console.log(
    `            clients ${live().length}, sessions ${n.sessions}, resumes ok/gap ${n.resumes.ok}/${n.resumes.gap}, leaves ${n.leaves}, removed ${n.removedByApi}, ` +
      `data sent/received ${n.dataSent}/${n.dataReceived}, RTP received ${rtpRate.toFixed(0)} pkt/s, media rebuilds ${n.mediaRebuilds}, kills ${kills}` +
      (pgUrl ? `, call_participants rows ${await rowsNow('SELECT count(*)::int AS n FROM call_participants')} (written behind)` : '') +
      (redis ? `, Redis keys ${await redisKeys()}` : ''),
  );
}
stopping = true;
clearInterval(ticker);
clearInterval(killer);

// ---------- quiet: what the server holds = what its clients hold ----------
// Churn stopped, answers in, and sessions that vanished without leaving dropped (resume
// window 20 s): every transport, producer and consumer left on the server is one a client
// still in a room holds. More on the server is a leak that closing the room would hide.
const drainDeadline = Date.now() + 30_000;
while (inflight > 0 && Date.now() < drainDeadline) await sleep(100);
await sleep(25_000);
await Promise.all(live().map((m) => m.mediaSettled()));
const held = { transport: 0, producer: 0, consumer: 0 };
for (const m of live()) {
  held.transport += m.held.transports;
  held.producer += m.held.producers;
  held.consumer += m.consumers.size;
}
const quiet = await takeSample(srv, t0);
console.log(line(quiet, 'quiet'));
const quietDiff = (['transport', 'producer', 'consumer'] as const).filter((k) => quiet.sfu[k] !== held[k]);
console.log(
  `            server transports/producers/consumers ${quiet.sfu.transport}/${quiet.sfu.producer}/${quiet.sfu.consumer}, held by the ${live().length} clients ${held.transport}/${held.producer}/${held.consumer}` +
    (quietDiff.length ? '  DIFFER' : ''),
);

// ---------- teardown: everyone leaves, rooms close ----------
await Promise.all(live().map((m) => m.leave().catch(() => undefined)));
// Sessions that vanished without leaving are dropped after the resume window (20 s).
await settle('teardown', 60_000);
const end = await takeSample(srv, t0);
const endKeys = await redisKeys();
end.resources = await steadyResources(srv, 'min');
console.log(line(end, 'end'));
await srv.stop();

// ---------- rows written vs sessions started ----------
const db = pgUrl ? undefined : await PGlite.create(join(dataDir, 'pglite'));
const count = async (sql: string): Promise<number> => (db ? Number((await db.query<{ n: number }>(sql)).rows[0]!.n) : rowsNow(sql));
const rows = await count('SELECT count(*)::int AS n FROM call_participants');
const openRows = await count('SELECT count(*)::int AS n FROM call_participants WHERE left_at IS NULL');
const activeCalls = await count(`SELECT count(*)::int AS n FROM calls WHERE status <> 'ended'`);
await db?.close();

// ---------- verdict ----------
const load = samples.filter((s) => s.t * 1000 >= WARMUP_MS);
const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;
const failures: string[] = [];
console.log(`\nsoak summary (${MINUTES} min; ${samples.length} samples, ${load.length} after the warm-up)`);
if (load.length >= 2) {
  // Ends of the post-warm-up window, each the mean of two samples (one sample is noisy).
  const k = Math.min(2, Math.floor(load.length / 2));
  const first = mean(load.slice(0, k).map((s) => s.rssMB));
  const last = mean(load.slice(-k).map((s) => s.rssMB));
  const growth = (100 * (last - first)) / first;
  const xs = load.map((s) => s.t / 3600);
  const ys = load.map((s) => s.rssMB);
  const mx = mean(xs);
  const my = mean(ys);
  const slope = xs.reduce((a, x, i) => a + (x - mx) * (ys[i]! - my), 0) / xs.reduce((a, x) => a + (x - mx) ** 2, 0);
  const heapFirst = mean(load.slice(0, k).map((s) => s.heapUsedMB));
  const heapLast = mean(load.slice(-k).map((s) => s.heapUsedMB));
  console.log(`  RSS after warm-up: ${first.toFixed(1)} -> ${last.toFixed(1)} MB (${growth >= 0 ? '+' : ''}${growth.toFixed(2)} %; least-squares slope ${slope.toFixed(1)} MB/h; range ${Math.min(...ys).toFixed(1)}-${Math.max(...ys).toFixed(1)} MB) target < 5 %`);
  console.log(`  V8 heap used after warm-up (full GC before each sample): ${heapFirst.toFixed(1)} -> ${heapLast.toFixed(1)} MB`);
  if (growth >= 5) failures.push(`RSS grew ${growth.toFixed(2)} % after warm-up`);
} else {
  console.log('  RSS: too few samples after the warm-up for a figure (run longer)');
}
console.log(`  with the churn stopped: server transports/producers/consumers ${quiet.sfu.transport}/${quiet.sfu.producer}/${quiet.sfu.consumer} vs held by clients ${held.transport}/${held.producer}/${held.consumer} (target equal)`);
if (quietDiff.length) failures.push(`with the churn stopped the server held ${quietDiff.map((k) => `${quiet.sfu[k]} ${k}s for ${held[k]}`).join(', ')}`);
const sfuLeft = end.sfu.router + end.sfu.transport + end.sfu.producer + end.sfu.consumer;
const workerLeft = end.workerObjects.reduce((a, b) => a + b, 0);
console.log(`  mediasoup objects left with every room closed: routers/transports/producers/consumers ${end.sfu.router}/${end.sfu.transport}/${end.sfu.producer}/${end.sfu.consumer}; per worker [${end.workerObjects.join(', ')}] (baseline [${baseline.workerObjects.join(', ')}]) target 0`);
if (sfuLeft > 0 || workerLeft > baseline.workerObjects.reduce((a, b) => a + b, 0)) failures.push('mediasoup objects left');
const grew = Object.entries(end.resources).filter(([k, v]) => v > (baseline.resources[k] ?? 0));
console.log(`  active resources: baseline ${fmtResources(baseline.resources)}`);
console.log(`                    end      ${fmtResources(end.resources)}${grew.length ? `  ABOVE BASELINE: ${grew.map(([k]) => k).join(', ')}` : '  (none above baseline)'}`);
if (grew.length) failures.push(`active resources above baseline: ${grew.map(([k, v]) => `${k} ${baseline.resources[k] ?? 0} -> ${v}`).join(', ')}`);
console.log(`  RSS at the end, everyone gone: ${end.rssMB.toFixed(1)} MB (baseline ${baseline.rssMB.toFixed(1)} MB); heap ${end.heapUsedMB.toFixed(1)} MB (baseline ${baseline.heapUsedMB.toFixed(1)} MB)`);
console.log(`  call_participants rows ${rows} vs sessions started ${n.sessions} (joins + rejoins after a resume gap); rows without left_at ${openRows}; calls not ended ${activeCalls}`);
if (rows !== n.sessions) failures.push(`rows ${rows} != sessions ${n.sessions}`);
if (openRows > 0 || activeCalls > 0) failures.push(`${openRows} participant rows and ${activeCalls} calls never closed`);
console.log(`  db: writes ${end.db.writes}, dropped ${end.db.dropped}, dead letters ${end.db.deadLetters}, failed attempts ${end.db.failures}`);
if (redis) {
  console.log(`  Redis keys under the soak's prefix: baseline ${baselineKeys}, end ${endKeys} (target: back to the baseline)`);
  if (endKeys > baselineKeys) failures.push(`Redis keys ${baselineKeys} -> ${endKeys}`);
  redis.disconnect();
} else console.log('  Redis: not used (single node; --redis URL runs the server in cluster mode)');
console.log(
  `  events: sessions ${n.sessions}, joins refused ${JSON.stringify(n.joinsRefused)}, leaves ${n.leaves}, removed by RoomService ${n.removedByApi}, ` +
    `resumes ok ${n.resumes.ok} / gap ${n.resumes.gap}, unexpected closes ${JSON.stringify(n.unexpectedCloses)}, data sent ${n.dataSent} / received ${n.dataReceived}, ` +
    `RTP packets received ${n.rtpReceived}, worker kills ${kills}, media rebuilds ${n.mediaRebuilds}`,
);
console.log(`  RoomService calls ${JSON.stringify(apiCalls)}`);
console.log(`  errors: media ${JSON.stringify(n.mediaErrors)}, requests ${JSON.stringify(apiErrors)}`);
if (failures.length) {
  console.log(`\nLEAK: ${failures.join('; ')}`);
  process.exit(1);
}
console.log('\nno leak found');
process.exit(0);
