// bench/keyFrames: what a storm of key-frame requests from viewers on another node costs a
// real browser publisher. Chromium on node A publishes its camera (simulcast); VIEWERS plain-RTP
// viewers on node B consume it through the pipe between the nodes, and each sends a PLI every
// 50 ms for WINDOW_MS. Read from the publisher's own getStats (outbound-rtp of the camera, all
// layers): key frames encoded, PLIs received, bytes sent, over a quiet window and then over the
// storm. Arms: sfu.pipe_key_frame_request_delay_ms 1000 (the shipped default: B's pipe producer
// passes about one request a second upstream) against 0 (every answered request goes up),
// alternating, RUNS each, fresh nodes per run.
//
//   npm run bench:key-frames            (RUNS=3 VIEWERS=10 WINDOW_MS=5000)
import { randomUUID } from 'node:crypto';
import { loadavg } from 'node:os';
import type { Page } from 'playwright-core';
import { joinDemo, launch } from '../test/chromium.js';
import { edgeConfig } from '../test/clusterNode.js';
import { eventually, sleep, startServer, type TestServer } from '../test/helpers.js';
import { plainSubscriber, type PlainSubscriber } from '../test/plainRtp.js';
import { PrivateRedis } from '../test/redis.js';

const RUNS = Number(process.env.RUNS ?? 3);
const VIEWERS = Number(process.env.VIEWERS ?? 10);
const WINDOW_MS = Number(process.env.WINDOW_MS ?? 5000);
const ARMS = [1000, 0] as const;

interface Sample {
  keyFrames: number;
  plis: number;
  bytes: number;
  /** Key frames and PLIs per simulcast layer (rid). */
  byRid: Record<string, { keyFrames: number; plis: number }>;
}
interface Window {
  keyFrames: number;
  plis: number;
  kbps: number;
  byRid: string;
}
interface Run {
  delay: number;
  quiet: Window;
  storm: Window;
  /** PLIs the viewers sent in the storm. */
  asked: number;
}

/** The publisher's camera as its own getStats reports it (every simulcast layer summed). */
function cameraSample(page: Page): Promise<Sample> {
  return page.evaluate(async () => {
    const room = (window as unknown as { auralinkRoom: import('../src/client/room.js').Room }).auralinkRoom;
    const out = { keyFrames: 0, plis: 0, bytes: 0, byRid: {} as Record<string, { keyFrames: number; plis: number }> };
    (await room.sendStats())?.forEach((s: { type: string; kind?: string; rid?: string; keyFramesEncoded?: number; pliCount?: number; bytesSent?: number }) => {
      if (s.type !== 'outbound-rtp' || s.kind !== 'video') return;
      out.keyFrames += s.keyFramesEncoded ?? 0;
      out.plis += s.pliCount ?? 0;
      out.bytes += s.bytesSent ?? 0;
      out.byRid[s.rid ?? '-'] = { keyFrames: s.keyFramesEncoded ?? 0, plis: s.pliCount ?? 0 };
    });
    return out;
  });
}

async function measure(page: Page, ms: number, during?: () => () => void): Promise<Window> {
  const a = await cameraSample(page);
  const stop = during?.();
  const t0 = Date.now();
  await sleep(ms);
  stop?.();
  const b = await cameraSample(page);
  const secs = (Date.now() - t0) / 1000;
  const byRid = Object.keys(b.byRid)
    .sort()
    .map((rid) => `${rid} ${b.byRid[rid]!.keyFrames - (a.byRid[rid]?.keyFrames ?? 0)}/${b.byRid[rid]!.plis - (a.byRid[rid]?.plis ?? 0)}`)
    .join(', ');
  return { keyFrames: b.keyFrames - a.keyFrames, plis: b.plis - a.plis, kbps: ((b.bytes - a.bytes) * 8) / 1000 / secs, byRid };
}

async function run(redis: PrivateRedis, delay: number): Promise<Run> {
  const prefix = `bench:kf:${randomUUID().slice(0, 8)}:`;
  const cfg = (id: string) => edgeConfig(redis.url, prefix, id, { development: true, sfu: { allow_plain_transports: true, pipe_key_frame_request_delay_ms: delay, key_frame_request_delay_ms: 0 } });
  const nodes: TestServer[] = [];
  const browser = await launch();
  const viewers: PlainSubscriber[] = [];
  try {
    nodes.push(...(await Promise.all([startServer(cfg('kf-a')), startServer(cfg('kf-b'))])));
    const [a, b] = nodes as [TestServer, TestServer];
    const room = `kf-${randomUUID().slice(0, 6)}`;
    const first = await b.client('viewer-0', room);
    const camera = new Promise<string>((resolve) => first.on('producerAdded', (p) => p.source === 'camera' && resolve(p.producerId)));
    const { pub } = await joinDemo(browser, a, room, ['pub']);
    const producerId = await camera;
    viewers.push(await plainSubscriber(first, producerId));
    for (let i = 1; i < VIEWERS; i++) viewers.push(await plainSubscriber(await b.client(`viewer-${i}`, room), producerId));
    await eventually(() => viewers.every((v) => v.got.length > 20), 15_000, 'every viewer receives the camera');
    await sleep(2000); // past the start-up key frames and the delay window
    const quiet = await measure(pub!, WINDOW_MS);
    let asked = 0;
    const storm = await measure(pub!, WINDOW_MS, () => {
      const t = setInterval(() => {
        for (const v of viewers) v.pli();
        asked += viewers.length;
      }, 50);
      return () => clearInterval(t);
    });
    return { delay, quiet, storm, asked };
  } finally {
    for (const v of viewers) v.sock.close();
    await browser.close();
    await Promise.all(nodes.map((n) => n.close()));
  }
}

const range = (xs: number[], digits = 0): string => {
  const s = [...xs].sort((p, q) => p - q);
  const f = (x: number): string => x.toFixed(digits);
  return s.length === 1 ? f(s[0]!) : `${f(s[Math.floor(s.length / 2)]!)} [${f(s[0]!)}–${f(s.at(-1)!)}]`;
};

const redis = new PrivateRedis();
await redis.start();
const results: Run[] = [];
try {
  console.log(`bench/keyFrames: Chromium publisher on node A, ${VIEWERS} plain-RTP viewers on node B each sending a PLI every 50 ms for ${WINDOW_MS} ms; ${RUNS} runs per arm, arms alternating; load average ${loadavg().map((x) => x.toFixed(1)).join(' ')}`);
  for (let i = 0; i < RUNS; i++) {
    for (const delay of i % 2 === 0 ? ARMS : [...ARMS].reverse()) {
      const r = await run(redis, delay);
      results.push(r);
      console.log(`  run ${i + 1}, pipe delay ${delay} ms: quiet ${r.quiet.keyFrames} key frames, ${r.quiet.kbps.toFixed(0)} kbit/s; storm (${r.asked} PLIs asked) ${r.storm.keyFrames} key frames, ${r.storm.plis} PLIs reached Chromium, ${r.storm.kbps.toFixed(0)} kbit/s (per layer key frames/PLIs: ${r.storm.byRid})`);
    }
  }
} finally {
  await redis.dispose();
}
console.log('\nmedian [min–max] per arm over the runs (publisher camera, all layers):');
console.log('| pipe_key_frame_request_delay_ms | key frames, quiet window | key frames, storm | PLIs reaching Chromium, storm | kbit/s quiet | kbit/s storm | storm ÷ quiet bitrate |');
console.log('|---|---|---|---|---|---|---|');
for (const delay of ARMS) {
  const rs = results.filter((r) => r.delay === delay);
  console.log(
    `| ${delay}${delay === 1000 ? ' (default)' : ' (baseline: no throttle)'} | ${range(rs.map((r) => r.quiet.keyFrames))} | ${range(rs.map((r) => r.storm.keyFrames))} | ${range(rs.map((r) => r.storm.plis))} | ${range(rs.map((r) => r.quiet.kbps))} | ${range(rs.map((r) => r.storm.kbps))} | ${range(rs.map((r) => r.storm.kbps / r.quiet.kbps), 2)} |`,
  );
}
