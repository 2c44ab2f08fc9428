// RTP hook path's added latency: one mediasoup router, a plain-RTP simulcast VP8 publisher
// (the committed capture, 3 layers, 30 fps, each packet carrying its send time), and two
// plain-RTP subscribers of layer 0 in the same run (the layer a simulcast consumer starts on:
// the plain publisher sends no sender reports, so the original producer could not switch up): one of the original producer (the
// baseline), one of the hook chain's processed producer (DirectTransport tap → chain →
// producer.send). Per packet: receive time − send time, on each path; the chain's added
// latency is the difference of the two distributions' percentiles. Sender, receivers and the
// chain share this process's event loop, as the chain shares the server's.
// Run: npm run bench:aic-hooks (RUNS, SECONDS, HOOKS=packet_stats,speech env to change).
// bench/aic.ts imports runAicHooksBench() for its "hook path added latency" figure.
import dgram from 'node:dgram';
import { fileURLToPath } from 'node:url';
import * as mediasoup from 'mediasoup';
import type { types } from 'mediasoup';
import { Registry } from 'prom-client';
import type { RtpHookConfig } from '../src/config/schema.js';
import { makeHooks } from '../src/aic/hooks/builtins.js';
import { HookMetrics } from '../src/aic/hooks/hookMetrics.js';
import { TrackHooks } from '../src/aic/hooks/trackHooks.js';
import { loadRtpParser } from '../src/aic/rtp/parser.js';
import { nowUs, vp8Source } from '../test/vp8Source.js';

export interface LatencyFigures {
  packets: number;
  p50Ms: number;
  p99Ms: number;
}

export interface AicHooksRun {
  plain: LatencyFigures;
  hooks: LatencyFigures;
  /** hooks − plain, per percentile (ms). */
  addedP50Ms: number;
  addedP99Ms: number;
}

export interface AicHooksBenchOptions {
  runs?: number;
  seconds?: number;
  hooks?: RtpHookConfig[];
  /** The parser the chain uses ('auto': native when the addon loads). */
  parser?: 'auto' | 'ts';
}

export interface AicHooksBenchResult {
  parser: 'native' | 'ts';
  hooks: string[];
  runs: AicHooksRun[];
}

const SSRCS = [5100, 5101, 5102];

function percentile(sorted: Float64Array, q: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

function figures(us: number[]): LatencyFigures {
  const a = Float64Array.from(us).sort();
  return { packets: a.length, p50Ms: percentile(a, 0.5) / 1000, p99Ms: percentile(a, 0.99) / 1000 };
}

async function receiver(router: types.Router, producerId: string, into: number[]): Promise<{ close(): void }> {
  const sock = dgram.createSocket('udp4');
  let warm = true;
  setTimeout(() => (warm = false), 1000).unref(); // the first second (key frame, layer switch) is not measured
  sock.on('message', (m) => {
    const pt = m[1]! & 0x7f;
    if (warm || (pt >= 72 && pt <= 78) || (pt === 127 && m.readUInt32BE(8) === 1234) || m.length < 30) return;
    into.push(nowUs() - Number(m.readBigUInt64BE(m.length - 9)));
  });
  await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
  const t = await router.createPlainTransport({ listenIp: '127.0.0.1', rtcpMux: true, comedia: false });
  await t.connect({ ip: '127.0.0.1', port: sock.address().port });
  await t.consume({ producerId, rtpCapabilities: router.rtpCapabilities, preferredLayers: { spatialLayer: 0 } });
  return {
    close() {
      t.close();
      sock.close();
    },
  };
}

async function oneRun(router: types.Router, hookCfg: RtpHookConfig[], parser: ReturnType<typeof loadRtpParser>, seconds: number): Promise<AicHooksRun> {
  const metrics = new HookMetrics(new Registry());
  const pubT = await router.createPlainTransport({ listenIp: '127.0.0.1', rtcpMux: true, comedia: true });
  const producer = await pubT.produce({
    kind: 'video',
    rtpParameters: {
      codecs: [{ mimeType: 'video/VP8', payloadType: 96, clockRate: 90000, rtcpFeedback: [{ type: 'nack', parameter: 'pli' }] }],
      encodings: SSRCS.map((ssrc) => ({ ssrc })),
    },
  });
  const th = await TrackHooks.create(router, producer, { roomName: 'bench', source: 'camera' }, (track) => makeHooks(hookCfg, track, metrics), parser, metrics, {
    budgetMs: 1000,
    fallback: false,
    senderReportMs: 1000,
  });
  const plain: number[] = [];
  const hooked: number[] = [];
  const a = await receiver(router, producer.id, plain);
  const b = await receiver(router, th.processed.id, hooked);
  const src = vp8Source(pubT.tuple.localPort, SSRCS, { stamp: true });
  await new Promise((r) => setTimeout(r, (seconds + 1) * 1000));
  src.stop();
  a.close();
  b.close();
  producer.close();
  pubT.close();
  const p = figures(plain);
  const h = figures(hooked);
  return { plain: p, hooks: h, addedP50Ms: h.p50Ms - p.p50Ms, addedP99Ms: h.p99Ms - p.p99Ms };
}

/** Runs the bench (fresh producer and chain per run, one worker) and returns its figures. */
export async function runAicHooksBench(opts: AicHooksBenchOptions = {}): Promise<AicHooksBenchResult> {
  const hookCfg: RtpHookConfig[] = opts.hooks ?? [{ name: 'packet_stats', window_ms: 1000 }];
  const parser = loadRtpParser({ logger: { info: () => {}, warn: () => {} }, prefer: opts.parser ?? 'auto' });
  const worker = await mediasoup.createWorker({ logLevel: 'warn', rtcMinPort: 45000, rtcMaxPort: 45999 });
  try {
    const router = await worker.createRouter({ mediaCodecs: [{ kind: 'video', mimeType: 'video/VP8', clockRate: 90000 }] });
    const runs: AicHooksRun[] = [];
    for (let i = 0; i < (opts.runs ?? 5); i++) runs.push(await oneRun(router, hookCfg, parser, opts.seconds ?? 10));
    return { parser: parser.impl, hooks: hookCfg.map((h) => h.name), runs };
  } finally {
    worker.close();
  }
}

const range = (xs: number[]): string => `${Math.min(...xs).toFixed(3)}–${Math.max(...xs).toFixed(3)}`;
const median = (xs: number[]): number => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)]!;

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const hooks = (process.env.HOOKS ?? 'packet_stats').split(',').filter(Boolean).map((name) => ({ name }) as RtpHookConfig);
  const res = await runAicHooksBench({
    runs: Number(process.env.RUNS ?? 5),
    seconds: Number(process.env.SECONDS ?? 10),
    hooks: hooks.map((h) => (h.name === 'packet_stats' ? { name: 'packet_stats', window_ms: 1000 } : h.name === 'speech' ? { name: 'speech', level_dbov: 60, hold_ms: 400 } : h)),
  });
  console.log(`RTP hook path latency: hooks [${res.hooks.join(', ')}], parser ${res.parser}, ${res.runs.length} runs; per packet, send → plain-RTP receive (ms)`);
  console.log('run | plain p50 | plain p99 | hooks p50 | hooks p99 | added p50 | added p99 | packets (plain/hooks)');
  res.runs.forEach((r, i) =>
    console.log(
      `${i + 1} | ${r.plain.p50Ms.toFixed(3)} | ${r.plain.p99Ms.toFixed(3)} | ${r.hooks.p50Ms.toFixed(3)} | ${r.hooks.p99Ms.toFixed(3)} | ${r.addedP50Ms.toFixed(3)} | ${r.addedP99Ms.toFixed(3)} | ${r.plain.packets}/${r.hooks.packets}`,
    ),
  );
  const add50 = res.runs.map((r) => r.addedP50Ms);
  const add99 = res.runs.map((r) => r.addedP99Ms);
  console.log(`added by the hook path: p50 median ${median(add50).toFixed(3)} ms (range ${range(add50)}), p99 median ${median(add99).toFixed(3)} ms (range ${range(add99)})`);
  console.log(`baseline (no hooks), same runs: p50 ${range(res.runs.map((r) => r.plain.p50Ms))} ms, p99 ${range(res.runs.map((r) => r.plain.p99Ms))} ms`);
}
