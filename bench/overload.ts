// Overload admission under a push past capacity. One server, one mediasoup worker, its
// admission limit at --capacity consumers per worker (lag and CPU limits at their defaults).
// 1. Calls admitted before the limit: --rooms rooms of --per-room plain-RTP participants,
//    each publishing one 50 pkt/s audio stream and consuming everyone else's.
// 2. The push: --push more participants join at --rate/s into new rooms (publishing and
//    subscribing likewise) until the node is past capacity; past it they get 503 OVERLOADED.
// 3. The first calls' media is measured in a window before the push (the baseline, same run)
//    and in one while the node is overloaded: RTP packets received per consumer per second
//    and mediasoup's consumer scores (getStats). Then the push leaves and the time until
//    /readiness is 200 again is taken.
// Each run is a pair, alternated: admission on, then the same push with every check off
// (everyone admitted), for what the first calls get when nobody is refused.
// Usage: node dist/bench/overload.js [--runs 3] [--capacity 100] [--rooms 6] [--per-room 4] [--push 60] [--rate 10] [--window-s 10]
import { parseArgs } from 'node:util';
import WebSocket from 'ws';
import { createToken } from '../src/auth/token.js';
import { KEY, metricSum, metricsText, SECRET, sleep, startAura } from './common.js';
import { Member, newCounters } from './soak/member.js';

const { values: args } = parseArgs({
  options: {
    runs: { type: 'string', default: '3' },
    capacity: { type: 'string', default: '100' },
    rooms: { type: 'string', default: '6' },
    'per-room': { type: 'string', default: '4' },
    push: { type: 'string', default: '60' },
    rate: { type: 'string', default: '10' },
    'window-s': { type: 'string', default: '10' },
  },
});
const RUNS = Number(args.runs);
const CAPACITY = Number(args.capacity);
const ROOMS = Number(args.rooms);
const PER_ROOM = Number(args['per-room']);
const PUSH = Number(args.push);
const RATE = Number(args.rate);
const WINDOW_MS = Number(args['window-s']) * 1000;

interface Window {
  /** RTP packets per consumer per second, over the admitted calls' consumers. */
  pktPerConsumerS: number;
  scores: number[];
}

/** Received RTP per consumer per second over the window, then every consumer's score. */
async function measure(members: Member[]): Promise<Window> {
  const consumers = members.reduce((a, m) => a + m.consumers.size, 0);
  const r0 = members.reduce((a, m) => a + m.received, 0);
  const t0 = performance.now();
  await sleep(WINDOW_MS);
  const pkts = members.reduce((a, m) => a + m.received, 0) - r0;
  const secs = (performance.now() - t0) / 1000;
  const scores: number[] = [];
  for (const m of members) {
    for (const id of m.consumers.values()) {
      const stats = JSON.parse((await m.client.request('getStats', { id })).json!) as { type: string; score?: number }[];
      const out = stats.find((x) => x.type === 'outbound-rtp');
      if (out?.score !== undefined) scores.push(out.score);
    }
  }
  return { pktPerConsumerS: pkts / consumers / secs, scores };
}

/** Status, code and Retry-After of one join attempt (a raw upgrade; an admitted one is closed at once). */
function probe(port: number, identity: string): Promise<{ status: number; code?: string; retryAfter?: string }> {
  const token = createToken(KEY, SECRET, { identity, video: { roomJoin: true, room: 'probe' } });
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/rtc?access_token=${token}`);
    ws.on('open', () => {
      ws.close();
      resolve({ status: 101 });
    });
    ws.on('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, code: (JSON.parse(body) as { code?: string }).code, retryAfter: res.headers['retry-after'] as string | undefined }));
    });
    ws.on('error', reject);
  });
}

const ready = async (port: number): Promise<boolean> => (await fetch(`http://127.0.0.1:${port}/readiness`)).status === 200;
const statsOf = (xs: number[]): string => (xs.length ? `min ${Math.min(...xs)}, mean ${(xs.reduce((a, b) => a + b, 0) / xs.length).toFixed(2)}, at >= 9: ${xs.filter((x) => x >= 9).length}/${xs.length}` : '-');

interface RunResult {
  before: Window;
  during: Window;
  admitted: number;
  refused: Record<string, number>;
  refusedMetric: number;
  reasons: string;
  probe: { status: number; code?: string; retryAfter?: string };
  peakConsumers: number;
  recoverS: number;
}

async function run(admission: boolean): Promise<RunResult> {
  // Plain transports' ports: a range wide enough for every participant's two.
  const rtcBase = 10_000 + Math.floor(Math.random() * 25) * 400;
  const srv = await startAura({
    log_level: 'info',
    sfu: { workers: 1, allow_plain_transports: true, rtc_min_port: rtcBase, rtc_max_port: rtcBase + 399 },
    // The comparison arm: every check off, every join of the push admitted.
    admission: admission ? { max_consumers_per_worker: CAPACITY } : { max_consumers_per_worker: 0, max_event_loop_lag_ms: 0, max_worker_cpu_percent: 0 },
    signal: { ip_connect_limit: { per_s: 1000, burst: 1000 } },
  });
  const url = `ws://127.0.0.1:${srv.port}`;
  const n = newCounters();
  try {
    // 1. The calls admitted before the limit.
    const first: Member[] = [];
    for (let p = 0; p < PER_ROOM; p++) {
      const joined = await Promise.all(Array.from({ length: ROOMS }, (_, r) => Member.join(url, `c${r}-${p}`, `call${r}`, true, n, () => undefined)));
      first.push(...joined);
    }
    await Promise.all(first.map((m) => m.mediaSettled()));
    await sleep(2000); // consumers of the last joiners' producers (producerAdded) settle
    if (admission && !(await ready(srv.port))) throw new Error('the node is over capacity before the push: lower --rooms/--per-room or raise --capacity');
    const before = await measure(first);

    // 2. The push: joins on schedule (not waiting for earlier ones), past capacity.
    const pushed: Member[] = [];
    const refused: Record<string, number> = {};
    const pending: Promise<void>[] = [];
    const t0 = performance.now();
    for (let k = 0; k < PUSH; k++) {
      const wait = t0 + (k * 1000) / RATE - performance.now();
      if (wait > 1) await sleep(wait);
      pending.push(
        Member.join(url, `push${k}`, `push${Math.floor(k / PER_ROOM)}`, true, n, () => undefined).then(
          (m) => void pushed.push(m),
          (err: unknown) => {
            const status = /server response: (\d+)/.exec(String(err))?.[1] ?? String(err).slice(0, 60);
            refused[status] = (refused[status] ?? 0) + 1;
          },
        ),
      );
    }
    await Promise.all(pending);
    await Promise.all(pushed.map((m) => m.mediaSettled()));
    await sleep(2000);
    const probed = await probe(srv.port, 'probe');
    const during = await measure(first);
    const text = await metricsText(srv.port);
    const refusedMetric = metricSum(text, 'auralink_admission_refused_total');
    const reasons = ['consumers', 'event_loop_lag', 'worker_cpu']
      .map((r) => [r, metricSum(text, 'auralink_admission_refused_total', { reason: r })] as const)
      .filter(([, v]) => v > 0)
      .map(([r, v]) => `${r} ${v}`)
      .join(', ');
    const peakConsumers = metricSum(text, 'auralink_admission_consumers_per_worker');

    // 3. The push leaves: how long until the node takes joins again.
    const tLeave = performance.now();
    await Promise.all(pushed.map((m) => m.leave()));
    while (!(await ready(srv.port)) && performance.now() - tLeave < 60_000) await sleep(100);
    const recoverS = (performance.now() - tLeave) / 1000;
    await Promise.all(first.map((m) => m.leave()));
    return { before, during, admitted: pushed.length, refused, refusedMetric, reasons, probe: probed, peakConsumers, recoverS };
  } finally {
    await srv.kill();
  }
}

console.log(
  `overload: ${RUNS} runs; 1 worker, capacity ${CAPACITY} consumers/worker; admitted calls ${ROOMS} rooms x ${PER_ROOM} (${ROOMS * PER_ROOM * (PER_ROOM - 1)} consumers); ` +
    `push ${PUSH} joins at ${RATE}/s into rooms of ${PER_ROOM}; plain-RTP audio 50 pkt/s each; ${WINDOW_MS / 1000} s windows`,
);
const results: RunResult[] = [];
const open: RunResult[] = [];
const show = (r: RunResult): void => {
  console.log(`  admitted calls, before the push: ${r.before.pktPerConsumerS.toFixed(1)} pkt/s per consumer (sent 50), scores ${statsOf(r.before.scores)}`);
  console.log(`  admitted calls, after the push:  ${r.during.pktPerConsumerS.toFixed(1)} pkt/s per consumer, scores ${statsOf(r.during.scores)}`);
  console.log(
    `  push: ${r.admitted} admitted, refused ${JSON.stringify(r.refused)} (auralink_admission_refused_total ${r.refusedMetric}${r.reasons ? `: ${r.reasons}` : ''}); consumers/worker after the push ${r.peakConsumers}; ` +
      `a join then: ${r.probe.status} ${r.probe.code ?? ''} Retry-After ${r.probe.retryAfter ?? '-'}; ready ${r.recoverS.toFixed(1)} s after the push left`,
  );
};
// Alternated, so both arms see the same machine state.
for (let i = 0; i < RUNS; i++) {
  const r = await run(true);
  results.push(r);
  console.log(`run ${i + 1}, admission on:`);
  show(r);
  const o = await run(false);
  open.push(o);
  console.log(`run ${i + 1}, admission off (every join admitted):`);
  show(o);
}
const range = (xs: number[], d = 1): string => `${Math.min(...xs).toFixed(d)}-${Math.max(...xs).toFixed(d)}`;
console.log(`\nsummary (${RUNS} runs of each arm):`);
for (const [name, rs] of [['admission on', results], ['admission off', open]] as const) {
  console.log(`  ${name}: pkt/s per consumer of the first calls before ${range(rs.map((r) => r.before.pktPerConsumerS))}, after the push ${range(rs.map((r) => r.during.pktPerConsumerS))}; ` +
    `lowest score before ${range(rs.map((r) => Math.min(...r.before.scores)), 0)}, after ${range(rs.map((r) => Math.min(...r.during.scores)), 0)}; ` +
    `push admitted ${range(rs.map((r) => r.admitted), 0)}, refused with 503 ${range(rs.map((r) => r.refused['503'] ?? 0), 0)} of ${PUSH}; consumers/worker after the push ${range(rs.map((r) => r.peakConsumers), 0)}`);
}
console.log(`  ready again after the push left (admission on): ${range(results.map((r) => r.recoverS))} s`);
process.exit(0);
