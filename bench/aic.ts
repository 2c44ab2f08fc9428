// bench/aic (issue 14): the bandwidth AIC saves at held quality, in the documented reference
// room (bench/aic/room.ts): 9 participants, each publishing a simulcast VP8 camera (320x180,
// 640x360, 1280x720 from one test source, real VP8 encoded once by ffmpeg and committed:
// bench/fixtures/aic, scripts/capture-aic.mjs) and Opus, replayed with per-publisher SSRCs
// through our server's plain-RTP transports over signalling; every viewer shows the active
// speaker at 960x540 and the others at 240x135, 4 of them scrolled out of view.
// Each run starts one server with A/B testing on and runs the same room twice, in a room of
// each arm: forward-all (the control arm: measured, never controlled) and AIC; the order
// alternates between runs. Printed per run and as ranges over runs, next to the targets:
//   bytes forwarded to viewers (AIC / forward-all), upstream bytes (publishers' sent bytes)
//   saved by layer pausing, the quality score per arm (server's auralink_aic_quality_score
//   and the same formula at the receivers), reaction to a viewport change, then the native
//   vs TS RTP parser throughput (bench/rtpParser.ts), a leak check, and the hook path's
//   place. Usage: npm run bench:aic [-- --runs 3 --window 20 --settle 8 --reactions 6]
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { armOf } from '../src/aic/arm.js';
import { loadRtpParser } from '../src/aic/rtp/parser.js';
import { startServer, type TestServer } from '../test/helpers.js';
import { pct, sleep } from './common.js';
import { runArm, type ArmResult } from './aic/arm.js';
import { runAicHooksBench } from './aicHooks.js';
import { loadCapture } from './aic/capture.js';
import { loadOs } from './rtpParserOs.js';

const { values: a } = parseArgs({
  options: {
    runs: { type: 'string', default: '3' },
    participants: { type: 'string', default: '9' },
    window: { type: 'string', default: '20' },
    settle: { type: 'string', default: '8' },
    reactions: { type: 'string', default: '6' },
    'parser-runs': { type: 'string', default: '3' },
    // Runs of bench/aicHooks.ts (the hook path's added latency), seconds each; 0: skip.
    'hook-runs': { type: 'string', default: '3' },
    'hook-seconds': { type: 'string', default: '6' },
    // Seconds for the whole bench (default: 120 + 150 per run).
    timeout: { type: 'string', default: '' },
    help: { type: 'boolean', default: false },
  },
});
if (a.help) {
  console.log('options (defaults):');
  for (const [k, v] of Object.entries(a)) if (k !== 'help') console.log(`  --${k} ${String(v)}`);
  process.exit(0);
}
const RUNS = Number(a.runs);
const N = Number(a.participants);
const TARGET_RATIO = 0.2;
const TARGET_SCORE = 70;
const TARGET_REACT_MS = 1000;

// Bounded in time, whatever hangs: the servers are killed on exit (test/helpers.ts).
const TIMEOUT_S = Number(a.timeout || 120 + 150 * RUNS);
setTimeout(() => {
  console.error(`bench:aic: not done after ${TIMEOUT_S} s, giving up`);
  process.exit(2);
}, TIMEOUT_S * 1000).unref();

const mb = (b: number): string => (b / 1e6).toFixed(1);
const mbps = (b: number, s: number): string => ((b * 8) / s / 1e6).toFixed(2);
const pc = (x: number): string => `${(100 * x).toFixed(1)} %`;
const range = (xs: number[], f: (x: number) => string): string => (xs.length ? `${f(Math.min(...xs))} – ${f(Math.max(...xs))}` : 'n/a');
const ok = (pass: boolean): string => (pass ? 'MET' : 'MISSED');

/** Room names, one per arm, for a given run (the arm is a hash of the name, docs/AIC.md). */
function roomFor(arm: 'aic' | 'control', run: number): string {
  for (let i = 0; ; i++) {
    const name = `aic-bench-${run}-${i}`;
    if (armOf(name, { enabled: true, percent: 50 }) === arm) return name;
  }
}

/** Lowest quality bucket with samples: the minimum lies in (previous edge, this edge]. */
function minBucket(b: Map<number, number>): string {
  const edges = [...b.keys()].sort((x, y) => x - y);
  let prev = 0;
  let below = 0;
  for (const le of edges) {
    const n = b.get(le)!;
    if (n > below) return le === Infinity ? `> ${prev}` : `in (${prev}, ${le}]`;
    below = n;
    prev = le;
  }
  return 'no samples';
}

interface Run {
  control: ArmResult;
  aic: ArmResult;
  leaks: Record<string, number>;
  load: string;
}

async function objects(server: TestServer): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const type of ['router', 'transport', 'producer', 'consumer']) out[type] = await server.metric('auralink_sfu_objects', { type });
  return out;
}

function describeRun(i: number, r: Run): { ratio: number; ratioAll: number; upRatio: number; meanAic: number; meanCtl: number; minTile: number } {
  const { control: c, aic: x } = r;
  const per = (b: number, arm: ArmResult): number => b / arm.windowS; // bytes/s: windows differ by ms
  const ratio = per(x.downVideo, x) / per(c.downVideo, c);
  const ratioAll = per(x.downVideo + x.downAudio, x) / per(c.downVideo + c.downAudio, c);
  const upC = c.upLayers.reduce((s, v) => s + v, 0);
  const upX = x.upLayers.reduce((s, v) => s + v, 0);
  const upRatio = per(upX, x) / per(upC, c);
  const mean = (arm: ArmResult): number => arm.server.qSum / arm.server.qCount;
  const tiles = (arm: ArmResult): number[] => arm.tileScores.map((t) => t.score);
  const minTile = Math.min(...tiles(x));
  console.log(`\nrun ${i + 1}/${RUNS} (${r.load})`);
  for (const arm of [c, x]) {
    const label = arm.arm === 'aic' ? 'AIC        ' : 'forward-all';
    console.log(
      `  ${label} room ${arm.room}: to viewers ${mb(arm.downVideo)} MB video (${mbps(arm.downVideo, arm.windowS)} Mbit/s) + ${mb(arm.downAudio)} MB audio in ${arm.windowS.toFixed(1)} s; ` +
        `hidden tiles got ${mb(arm.hiddenBytes)} MB; publishers sent ${arm.upLayers.map((b) => mbps(b, arm.windowS)).join(' / ')} Mbit/s (layers 0/1/2) + ${mbps(arm.upAudio, arm.windowS)} audio`,
    );
    console.log(
      `      layers on per publisher ${arm.layersOn.join(',')}; layersWanted applied ${arm.wantedChanges}, PLI/FIR received ${arm.keyRequests}, key-frame jumps ${arm.keyJumps}; ` +
        `SFU worker CPU ${pc(arm.workerCpuS / arm.windowS)} of a core; bench loop delay p99 ${arm.loopP99Ms.toFixed(1)} ms, max ${arm.loopMaxMs.toFixed(0)} ms`,
    );
    console.log(
      `      server quality score (auralink_aic_quality_score, what the server forwards): mean ${mean(arm).toFixed(1)} over ${arm.server.qCount} samples, min ${minBucket(arm.server.buckets)}, ` +
        `${arm.server.below} samples < ${TARGET_SCORE}; server bytes forwarded ${mb(arm.server.forwarded)} MB vs its forward-all estimate ${mb(arm.server.forwardAll)} MB`,
    );
    const ts = tiles(arm);
    console.log(`      receiver-side score (same formula, from what the viewers' sockets got: key-frame size, frames, sequence gaps, freezes; the replay shares the bench's event loop, so its stalls count as freezes) of the ${ts.length} visible tiles: mean ${(ts.reduce((s, v) => s + v, 0) / ts.length).toFixed(1)}, min ${Math.min(...ts)}`);
  }
  const low = x.tileScores.filter((t) => t.score < TARGET_SCORE);
  for (const t of low.slice(0, 5)) console.log(`      low AIC tile: viewer p${t.viewer} ← p${t.publisher} shown ${t.width} wide, key frames ${t.keyWidth} wide, ${t.fps.toFixed(1)} fps, score ${t.score}`);
  console.log(
    `  bytes forwarded to viewers, AIC / forward-all: video ${pc(ratio)}, with audio ${pc(ratioAll)}; upstream (publishers' sent bytes, audio included) ${pc(upRatio)} (saved ${pc(1 - upRatio)})`,
  );
  console.log(
    `  reaction 240x135 → 960x540 (trackSettings sent → first 1280-wide key frame at the viewer): ${x.reactUp.map((v) => v.toFixed(0)).join(', ')} ms` +
      `${x.reactMissed ? `, ${x.reactMissed} not within 10 s` : ''}; back to 240x135: ${x.reactDown.map((v) => v.toFixed(0)).join(', ')} ms; ` +
      `layers the publisher had on before: ${x.reactLayersBefore.join(',')}; PLI/FIR during the changes ${x.reactKeyRequests}, key-frame jumps ${x.reactKeyJumps}`,
  );
  console.log(`  leak check after both rooms closed: ${Object.entries(r.leaks).map(([k, v]) => `${k}s ${v}`).join(', ')}`);
  return { ratio, ratioAll, upRatio, meanAic: mean(x), meanCtl: mean(c), minTile };
}

function parserThroughput(): void {
  const script = fileURLToPath(new URL('./rtpParser.js', import.meta.url));
  console.log(`\nRTP parser throughput (bench/rtpParser.ts, corpus packets, RUNS=${a['parser-runs']} REPEAT=50, batches 1, 32, 256):`);
  const r = spawnSync(process.execPath, [script], { encoding: 'utf8', env: { ...process.env, RUNS: String(a['parser-runs']), REPEAT: '50', BATCHES: '1,32,256' }, timeout: 300_000 });
  if (r.status !== 0) console.log(`  not measured: ${(r.stderr || r.error?.message || '').trim().split('\n')[0]}`);
  else for (const line of r.stdout.trim().split('\n')) console.log(`  ${line}`);
}

async function main(): Promise<void> {
  const capture = loadCapture();
  const parser = loadRtpParser({ logger: { info: () => undefined, warn: () => undefined }, prefer: 'ts' });
  console.log(`bench:aic — reference room: ${N} participants, each publishing simulcast VP8 ${capture.layers.map((l) => `${l.width}x${l.height}`).join(' / ')} + Opus, viewing the ${N - 1} others`);
  console.log(`  every viewer: the active speaker at 960x540 (the speaker: the previous one), the others at 240x135, 4 of them scrolled out of view (trackSettings as adaptiveStream.ts sends it)`);
  console.log(
    `  media: committed capture (bench/fixtures/aic, ffmpeg libvpx/libopus, ${capture.seconds} s loop, key frame every 4 s), encoder targets ${capture.layers.map((l) => `${l.bitrate / 1000}k`).join(' / ')}; ` +
      `replay: per-publisher SSRCs, continuous seq/timestamps/picture ids; honours layersWanted (encodings above the wanted layer stop, a resumed one starts with a key frame) ` +
      `and answers PLI/FIR on its transport's RTCP by jumping that layer to its next key frame`,
  );
  console.log(`  viewers: plain RTP without transport-cc/REMB (no bandwidth estimate: the link never limits; forward-all = the top layer for every tile); receiver parses VP8 key frames with src/aic/rtp (${parser.impl})`);
  console.log(`  arms in each run, one server (A/B on): forward-all = control arm (measured, never controlled), AIC = aic arm; settle ${a.settle} s, window ${a.window} s; ${loadOs()}`);
  const runs: Run[] = [];
  const sums: ReturnType<typeof describeRun>[] = [];
  for (let i = 0; i < RUNS; i++) {
    // 2 plain transports per participant: a 100-port block below test/helpers' blocks (20000+) and the ephemeral range.
    const rtc = 10_000 + Math.floor(Math.random() * 90) * 100;
    const server = await startServer({
      sfu: { workers: 1, allow_plain_transports: true, rtc_min_port: rtc, rtc_max_port: rtc + 99 },
      turn: { mode: 'off' },
      room: { empty_timeout_s: 0.2 },
      aic: { enabled: true, ab_testing: { enabled: true, percent: 50 } },
    });
    try {
      const order = i % 2 === 0 ? (['control', 'aic'] as const) : (['aic', 'control'] as const);
      const res: Partial<Record<'control' | 'aic', ArmResult>> = {};
      for (const [k, arm] of order.entries()) {
        res[arm] = await runArm(server, arm, roomFor(arm, i), capture, parser, {
          participants: N,
          settleS: Number(a.settle),
          windowS: Number(a.window),
          reactions: Number(a.reactions),
          ssrcBase: 0x100000 * (2 * i + k + 1),
        });
      }
      let leaks = await objects(server);
      for (let t = 0; t < 50 && Object.values(leaks).some((v) => v > 0); t++) {
        await sleep(200);
        leaks = await objects(server);
      }
      const run: Run = { control: res.control!, aic: res.aic!, leaks, load: loadOs() };
      runs.push(run);
      sums.push(describeRun(i, run));
    } catch (err) {
      // The server's own account of what failed (warnings and errors).
      console.error(server.logs.filter((l) => /"level":(40|50|60)/.test(l)).slice(-8).join('\n'));
      throw err;
    } finally {
      await server.close();
    }
  }
  const ups = runs.flatMap((r) => r.aic.reactUp);
  const missed = runs.reduce((s, r) => s + r.aic.reactMissed, 0);
  const p95 = ups.length ? pct(ups, 95) : NaN;
  const below = runs.reduce((s, r) => s + r.aic.server.below, 0);
  const minTile = Math.min(...sums.map((s) => s.minTile));
  const worstRatio = Math.max(...sums.map((s) => s.ratio));
  const leaked = runs.some((r) => Object.values(r.leaks).some((v) => v > 0));
  console.log(`\nsummary over ${RUNS} run(s) (ranges are min – max over runs):`);
  console.log(`  bytes forwarded to viewers, AIC / forward-all (video): ${range(sums.map((s) => s.ratio), pc)}; with audio ${range(sums.map((s) => s.ratioAll), pc)}`);
  console.log(`  upstream bytes, AIC / forward-all: ${range(sums.map((s) => s.upRatio), pc)} (layer pausing saved ${range(sums.map((s) => 1 - s.upRatio), pc)})`);
  console.log(`  server quality score mean: forward-all ${range(sums.map((s) => s.meanCtl), (x) => x.toFixed(1))}, AIC ${range(sums.map((s) => s.meanAic), (x) => x.toFixed(1))}; AIC samples < ${TARGET_SCORE}: ${below}`);
  console.log(`  receiver-side min over visible AIC tiles: ${range(sums.map((s) => s.minTile), String)}`);
  console.log(`  reaction 240x135 → 960x540 over ${ups.length} changes: p50 ${pct(ups, 50)?.toFixed(0)} ms, p95 ${p95.toFixed(0)} ms, max ${Math.max(...ups).toFixed(0)} ms${missed ? `, ${missed} missed (10 s)` : ''}`);
  // The hook path (bench/aicHooks.ts): a packet_stats chain against the same producer
  // without hooks, same worker, same run; plain-RTP subscribers of layer 0.
  let hookP99 = Number.NaN;
  if (Number(a['hook-runs']) > 0) {
    const h = await runAicHooksBench({ runs: Number(a['hook-runs']), seconds: Number(a['hook-seconds']) });
    const add50 = h.runs.map((r) => r.addedP50Ms);
    const add99 = h.runs.map((r) => r.addedP99Ms);
    hookP99 = Math.max(...h.runs.map((r) => r.hooks.p99Ms));
    const rng = (xs: number[]): string => `${Math.min(...xs).toFixed(2)}–${Math.max(...xs).toFixed(2)}`;
    console.log(
      `  hook path (${h.hooks.join(', ')}, ${h.parser} parser, ${h.runs.length} runs): added p50 ${rng(add50)} ms, added p99 ${rng(add99)} ms; ` +
        `hook path p99 ${rng(h.runs.map((r) => r.hooks.p99Ms))} ms against plain ${rng(h.runs.map((r) => r.plain.p99Ms))} ms (packets per run ${h.runs.map((r) => r.hooks.packets).join('/')})`,
    );
  } else console.log(`  hook path: skipped (--hook-runs 0)`);
  console.log(`targets:`);
  console.log(`  AIC <= ${pc(TARGET_RATIO)} of forward-all bytes: ${ok(worstRatio <= TARGET_RATIO)} (worst run ${pc(worstRatio)})`);
  console.log(`  every visible tile's score >= ${TARGET_SCORE} (AIC arm; server samples and receiver-side): ${ok(below === 0 && minTile >= TARGET_SCORE)} (server samples below: ${below}, receiver-side min ${minTile})`);
  console.log(`  reaction p95 < ${TARGET_REACT_MS} ms: ${ok(p95 < TARGET_REACT_MS && missed === 0)} (p95 ${p95.toFixed(0)} ms)`);
  if (Number.isFinite(hookP99)) console.log(`  hook path p99 <= 50 ms: ${ok(hookP99 <= 50)} (worst run ${hookP99.toFixed(2)} ms)`);
  console.log(`  leak check (every mediasoup object closed): ${ok(!leaked)}`);
  parserThroughput();
  console.log(`\nafter: ${loadOs()}`);
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
