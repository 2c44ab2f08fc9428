// CPU profile of a join storm on the real server (the CLI under `node --cpu-prof`, pinned to
// one core, the clients on the other), the join path taken apart per part, in µs per join.
// Worker threads inherit --cpu-prof (execArgv), so PGlite's thread writes a profile of its own.
// Only samples between the storm's first connect and the end of its tail (write-behind queue
// empty) count; the warm-up joins before it and start-up/shutdown are left out.
// Usage: node dist/bench/profileJoin.js [--db pglite|pg] [--joins 2000] [--rate 500] [--rooms 100]
//   [--interval-us 250] [--keep DIR] [--pg postgres://...] [--sfu on|off] [--node-args '--max-semi-space-size=32']
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type WebSocket from 'ws';
import { auraUrl, connect, cpuSeconds, pct, serverJoinQuantiles, sleep, startAuraSignal, storm } from './common.js';
import { SUBPROTOCOL } from '../src/signal/codec.js';

const { values: args } = parseArgs({
  options: {
    db: { type: 'string', default: 'pglite' },
    joins: { type: 'string', default: '2000' },
    rate: { type: 'string', default: '500' },
    rooms: { type: 'string', default: '100' },
    'interval-us': { type: 'string', default: '250' },
    keep: { type: 'string' },
    pg: { type: 'string', default: 'postgres://postgres@127.0.0.1:5432/test' },
    sfu: { type: 'string', default: 'on' },
    top: { type: 'string', default: '25' },
    /** Extra node flags for the server, e.g. --node-args=--max-semi-space-size=32 */
    'node-args': { type: 'string', default: '' },
  },
});
const deadline = setTimeout(() => process.exit(2), 300_000);
deadline.unref();
execFileSync('taskset', ['-a', '-pc', '1', String(process.pid)], { stdio: 'ignore' });

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

// ---------- the storm ----------

const dir = args.keep ?? mkdtempSync(join(tmpdir(), 'auralink-prof-'));
const count = Number(args.joins);
const rate = Number(args.rate);
const srv = await startAuraSignal({
  cpus: '0',
  nodeArgs: [...(args['node-args'] ? args['node-args'].split(' ') : []), '--cpu-prof', `--cpu-prof-dir=${dir}`, `--cpu-prof-interval=${args['interval-us']}`],
  ...(args.db === 'pg' ? { databaseUrl: args.pg } : {}),
  overrides: { ...(args.sfu === 'off' ? { sfu: { enabled: false } } : { sfu: { workers: 1 } }), drain: { timeout_s: 2 } },
});
const sockets: WebSocket[] = [];
for (let i = 0; i < 50; i++) sockets.push((await connect(auraUrl(srv.port, `w${i}`, 'warmup'), SUBPROTOCOL.proto)).ws);
await sleep(1000);
const urls = Array.from({ length: count }, (_, i) => auraUrl(srv.port, `j${i}`, `room${i % Number(args.rooms)}`));
// The profile's clock is CLOCK_MONOTONIC in µs, as process.hrtime is.
const nowUs = (): number => Number(process.hrtime.bigint() / 1000n);
const pid = srv.proc.pid!;
/** CPU seconds of each thread of the server, by thread id, with its name. */
const taskCpu = (): Map<string, { comm: string; cpu: number }> => {
  const out = new Map<string, { comm: string; cpu: number }>();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const st = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      const f = st.split(') ')[1]!.split(' ');
      out.set(tid, { comm: readFileSync(`/proc/${pid}/task/${tid}/comm`, 'utf8').trim(), cpu: (Number(f[11]) + Number(f[12])) / 100 });
    } catch {
      /* the thread ended */
    }
  }
  return out;
};
const tasks0 = taskCpu();
const cpu0 = cpuSeconds(pid);
const w0 = nowUs();
const { lat, joined } = await storm(count, rate, (i) => connect(urls[i]!, SUBPROTOCOL.proto));
for (const r of joined) sockets.push(r.ws);
const wJoined = nowUs();
await sleep(1000);
for (let i = 0; i < 20; i++) {
  const text = await (await fetch(`http://127.0.0.1:${srv.port}/metrics`)).text();
  if (!(Number(/^auralink_db_write_queue (\S+)$/m.exec(text)?.[1] ?? 0) > 0)) break;
  await sleep(500);
}
const w1 = nowUs();
const cpu = cpuSeconds(pid) - cpu0;
const tasks1 = taskCpu();
const threadCpu: { tid: string; comm: string; cpu: number }[] = [];
for (const [tid, t] of tasks1) threadCpu.push({ tid, comm: t.comm, cpu: t.cpu - (tasks0.get(tid)?.cpu ?? 0) });
threadCpu.sort((a, b) => b.cpu - a.cpu);
const hist = await serverJoinQuantiles(srv.port);
for (const ws of sockets) ws.terminate();
await srv.stop();

// ---------- the profiles ----------

/** A part of the join path: the innermost frame on a sample's stack that matches one decides. */
interface Part {
  name: string;
  match: (f: CallFrame) => boolean;
}
const fn = (file: string, ...names: string[]) => (f: CallFrame) => f.url.endsWith(file) && (names.length === 0 || names.includes(f.functionName));
const pkg = (...names: string[]) => (f: CallFrame) => names.some((n) => f.url.includes(`/node_modules/${n}/`));
const PARTS: Part[] = [
  { name: 'metrics (prom-client)', match: pkg('prom-client') },
  { name: 'logging (pino)', match: pkg('pino', 'sonic-boom', 'thread-stream') },
  { name: 'TURN credentials (iceServersFor: HMAC-SHA1)', match: (f) => fn('/turn/turnService.js', 'iceServersFor')(f) || fn('/turn/credentials.js')(f) },
  { name: 'probe targets (mesh)', match: (f) => fn('/mesh/meshService.js', 'probeTargets')(f) || fn('/mesh/memoryRegistry.js')(f) },
  { name: 'resume token (HMAC-SHA256)', match: fn('/rooms/resumeTokens.js') },
  { name: 'token verification (jsonwebtoken + zod)', match: fn('/auth/token.js', 'verify', 'verifyJoin') },
  { name: 'preflight', match: fn('/rooms/roomManager.js', 'preflight') },
  { name: 'persistence: enqueue / write-behind / driver (main thread)', match: (f) => fn('/db/writeBehind.js')(f) || fn('/db/callRecorder.js')(f) || fn('/db/database.js')(f) || pkg('pg', 'pg-protocol', 'pg-pool', 'pgpass')(f) || fn('/webhooks/notifier.js')(f) || fn('/rooms/roomManager.js', 'persist')(f) },
  { name: 'listeners: CallRouter.schedule, SfuService.announceExisting', match: (f) => fn('/mesh/callRouter.js')(f) || fn('/sfu/sfuService.js')(f) },
  { name: 'participantJoined broadcast (publish, record, encode)', match: (f) => fn('/signal/gateway.js', 'publish')(f) || fn('/rooms/room.js', 'record')(f) || fn('/rooms/replayLog.js')(f) },
  { name: 'JoinResponse send (encode + ws.send + backpressure check)', match: fn('/signal/gateway.js', 'send', 'checkConnection') },
  { name: 'JoinResponse building (lists, infos)', match: fn('/rooms/roomManager.js', 'joinResponse') },
  { name: 'room creation', match: fn('/rooms/roomManager.js', 'createRoom', 'scheduleEmptyClose') },
  { name: 'subscribe (uWS topic)', match: fn('/signal/gateway.js', 'subscribe') },
  { name: 'participant creation + rest of RoomManager.join', match: (f) => fn('/rooms/roomManager.js', 'join')(f) || fn('/rooms/participant.js')(f) || fn('/util/ids.js')(f) },
  { name: 'open handler (WsConnection, metrics calls, histogram)', match: fn('/signal/gateway.js', 'open') },
  { name: 'upgrade handler (query, headers, ip limit, res.upgrade in uWS)', match: fn('/signal/gateway.js', 'upgrade') },
  { name: 'other gateway.js (guard, WsConnection ctor, countOut)', match: fn('/signal/gateway.js') },
  { name: 'GC', match: (f) => f.functionName === '(garbage collector)' },
  { name: 'native outside JS (uWS: accept, HTTP parse, socket I/O; libuv)', match: (f) => f.functionName === '(program)' },
  { name: 'idle', match: (f) => f.functionName === '(idle)' },
];

function analyse(p: Profile, from: number, to: number) {
  const byId = new Map<number, ProfileNode>();
  const parent = new Map<number, number>();
  for (const n of p.nodes) byId.set(n.id, n);
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const self = new Map<string, number>(); // part -> µs (innermost attribution)
  const total = new Map<string, number>(); // part -> µs (anywhere on the stack)
  const leaf = new Map<string, number>(); // function -> self µs
  const leafByPart = new Map<string, Map<string, number>>();
  let t = p.startTime;
  let inWindow = 0;
  for (let i = 0; i < p.samples.length; i++) {
    t += p.timeDeltas[i]!;
    if (t < from || t > to) continue;
    const dt = p.timeDeltas[i + 1] ?? 0; // a sample stands for the time until the next one
    inWindow += dt;
    let id: number | undefined = p.samples[i]!;
    const stack: CallFrame[] = [];
    while (id !== undefined) {
      stack.push(byId.get(id)!.callFrame);
      id = parent.get(id);
    }
    const lf = stack[0]!;
    const key = `${lf.functionName || '(anonymous)'} ${lf.url.replace(/^.*\/(node_modules\/[^/]+|dist\/src)\//, '$1/')}:${lf.lineNumber + 1}`;
    leaf.set(key, (leaf.get(key) ?? 0) + dt);
    let inner: string | undefined;
    const seen = new Set<string>();
    for (const f of stack) {
      for (const part of PARTS) {
        if (!part.match(f)) continue;
        inner ??= part.name;
        seen.add(part.name);
        break;
      }
    }
    const name = inner ?? 'other JS (event loop glue, node internals)';
    self.set(name, (self.get(name) ?? 0) + dt);
    for (const s of seen.size ? seen : [name]) total.set(s, (total.get(s) ?? 0) + dt);
    const lp = leafByPart.get(name) ?? new Map<string, number>();
    lp.set(key, (lp.get(key) ?? 0) + dt);
    leafByPart.set(name, lp);
  }
  return { self, total, leaf, leafByPart, inWindow };
}

const files = readdirSync(dir).filter((f) => f.endsWith('.cpuprofile'));
const perJoin = (us: number): string => (us / count).toFixed(1);
console.log(`join storm: ${count} joins over ${args.rooms} rooms at ${rate}/s, ${args.db === 'pg' ? 'PostgreSQL by URL' : 'embedded PGlite'}, SFU ${args.sfu}, sampling every ${args['interval-us']} µs${args['node-args'] ? `, server node flags ${args['node-args']}` : ''}`);
console.log(`server CPU (/proc, all threads, storm + tail, profiler on): ${((cpu / count) * 1000).toFixed(3)} ms/join; client p50 ${pct(lat, 50).toFixed(2)} ms, p99 ${pct(lat, 99).toFixed(2)} ms; auralink_signal_join_seconds p50 <= ${hist.p50} ms, p99 <= ${hist.p99} ms (from the loop turn), _handler_seconds p50 <= ${hist.handlerP50} ms, p99 <= ${hist.handlerP99} ms`);
console.log(`server threads' CPU in the window (/proc/${pid}/task): ${threadCpu.filter((t) => t.cpu > 0).map((t) => `${t.tid === String(pid) ? 'main' : t.tid} (${t.comm}) ${((t.cpu / count) * 1e6).toFixed(0)} µs/join`).join(', ')}`);
console.log(`window: ${((w1 - w0) / 1e6).toFixed(2)} s (joins done after ${((wJoined - w0) / 1e6).toFixed(2)} s); profiles: ${files.join(', ')}`);
for (const file of files) {
  const p = JSON.parse(readFileSync(join(dir, file), 'utf8')) as Profile;
  // File names: CPU.<date>.<time>.<pid>.<thread id>.<seq>.cpuprofile; thread 0 is the main thread.
  const thread = file.split('.')[4] === '0' ? 'main thread' : `worker thread ${file.split('.')[4]}`;
  if (p.endTime < w0 || p.startTime > w1) {
    console.log(`\n${thread}: no samples in the window`);
    continue;
  }
  const a = analyse(p, w0, w1);
  const busy = a.inWindow - (a.self.get('idle') ?? 0);
  // Samples are taken on a timer whether or not the thread has the core: with the PGlite
  // thread and the main thread on one core, a preempted thread's samples still count. So the
  // sampled time is scaled to the thread's CPU from /proc (main: tid = pid; the worker: the
  // busiest other thread named "node", V8's and libuv's helpers being far below it).
  const isMain = thread === 'main thread';
  const task = isMain ? threadCpu.find((t) => t.tid === String(pid)) : threadCpu.find((t) => t.tid !== String(pid) && t.comm === 'node');
  const scale = task ? (task.cpu * 1e6) / busy : 1;
  console.log(
    `\n${thread} (${file}): ${(a.inWindow / 1e3).toFixed(0)} ms sampled in the window, ${(busy / 1e3).toFixed(0)} ms not idle = ${perJoin(busy)} µs/join sampled; ` +
      `its CPU (/proc task ${task?.tid}) ${perJoin((task?.cpu ?? 0) * 1e6)} µs/join: CPU column = sampled × ${scale.toFixed(2)}`,
  );
  console.log('| part | self µs/join (sampled) | self CPU µs/join | total µs/join (sampled) | top self functions (sampled µs/join) |');
  console.log('|---|---|---|---|---|');
  const rows = [...a.self.entries()].sort((x, y) => y[1] - x[1]);
  for (const [name, us] of rows) {
    const top = [...(a.leafByPart.get(name) ?? new Map<string, number>()).entries()]
      .sort((x, y) => y[1] - x[1])
      .slice(0, 3)
      .map(([k, v]) => `${k} ${perJoin(v)}`)
      .join('; ');
    console.log(`| ${name} | ${perJoin(us)} | ${name === 'idle' ? '—' : perJoin(us * scale)} | ${perJoin(a.total.get(name) ?? us)} | ${top} |`);
  }
  console.log(`top ${args.top} self functions:`);
  for (const [k, v] of [...a.leaf.entries()].sort((x, y) => y[1] - x[1]).slice(0, Number(args.top))) console.log(`  ${perJoin(v).padStart(7)} µs/join  ${k}`);
}
if (!args.keep) rmSync(dir, { recursive: true, force: true });
process.exit(0);
