// Native (N-API C) vs TypeScript RTP parser throughput on the test corpus (real ffmpeg VP8,
// VP9, H264 and Opus packets, half of them again with synthetic RFC 8285 extensions).
//   batch 1: one Buffer per packet, as mediasoup's DirectTransport 'rtp' event hands them
//   batch 2..256: packets packed in one buffer, offsets/lengths views made before timing
// Every measurement is a fresh child process (one implementation, one batch size: a warm-up
// pass, then REPEAT passes over the corpus), so neither side's JIT state or call-site
// feedback leaks into the other's; runs alternate TS/native so machine load hits both alike.
// Time is the child's CPU time (process.cpuUsage), not wall time: the machine is shared
// (load averages over 10 on 2 cores were seen) and wall time then measures the scheduler.
// Prints, per batch size, median CPU ns/packet with the min-max over RUNS runs, packets/s,
// the wall-time median, and a winner only where the two ranges do not overlap.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { loadOs } from './rtpParserOs.js';
import { RECORD_SIZE } from '../src/aic/rtp/layout.js';
import type { RtpParser } from '../src/aic/rtp/api.js';
import { DEFAULT_ADDON_PATH, loadAddon, loadRtpParser } from '../src/aic/rtp/parser.js';
import { corpusPackets, CORPUS_CODECS } from '../test/rtpCorpus.js';

const RUNS = Number(process.env.RUNS ?? 7);
const REPEAT = Number(process.env.REPEAT ?? 200);
const BATCHES = (process.env.BATCHES ?? '1,4,8,32,256').split(',').map(Number);
const IMPLS = ['ts', 'native'] as const;

interface Sample {
  cpuNs: number;
  wallNs: number;
  checksum: number;
}

/** One measurement in this (child) process. */
function measure(impl: 'ts' | 'native', size: number): Sample {
  const silent = { info: (): void => {}, warn: (): void => {} };
  const p: RtpParser = loadRtpParser({ logger: silent, prefer: impl === 'ts' ? 'ts' : 'auto', nativeMinBatch: 0 });
  if (p.impl !== impl) throw new Error(`asked for ${impl}, got ${p.impl}`);
  const parse = p.parseBatch;
  const packets = corpusPackets();
  const N = packets.length;
  let pass: () => number;
  if (size === 1) {
    const off = new Uint32Array(1);
    const len = new Uint32Array(1);
    const out = new Int32Array(RECORD_SIZE);
    pass = () => {
      let sum = 0;
      for (let i = 0; i < N; i++) {
        const pkt = packets[i]!;
        len[0] = pkt.length;
        sum += parse(pkt, off, len, 1, out, CORPUS_CODECS);
      }
      return sum;
    };
  } else {
    const buf = Buffer.alloc(packets.reduce((s, x) => s + x.length, 0));
    const offsets = new Uint32Array(N);
    const lengths = new Uint32Array(N);
    let o = 0;
    packets.forEach((x, i) => {
      x.copy(buf, o);
      offsets[i] = o;
      lengths[i] = x.length;
      o += x.length;
    });
    const views: { off: Uint32Array; len: Uint32Array; n: number }[] = [];
    for (let i = 0; i < N; i += size) {
      const n = Math.min(size, N - i);
      views.push({ off: offsets.subarray(i, i + n), len: lengths.subarray(i, i + n), n });
    }
    const out = new Int32Array(size * RECORD_SIZE);
    pass = () => {
      let sum = 0;
      for (const v of views) sum += parse(buf, v.off, v.len, v.n, out, CORPUS_CODECS);
      return sum;
    };
  }
  for (let r = 0; r < Math.max(2, REPEAT / 4); r++) pass(); // warm-up: let the JIT settle
  const c0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  let checksum = 0;
  for (let r = 0; r < REPEAT; r++) checksum += pass();
  const wall = Number(process.hrtime.bigint() - t0);
  const c = process.cpuUsage(c0);
  return { cpuNs: ((c.user + c.system) * 1000) / (N * REPEAT), wallNs: wall / (N * REPEAT), checksum };
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

function main(): void {
  const addon = loadAddon(DEFAULT_ADDON_PATH);
  if ('error' in addon) {
    console.error(`native addon not loaded (${addon.error}); run npm run build:native first`);
    process.exit(1);
  }
  const N = corpusPackets().length;
  console.log(`rtp parser bench: ${N} corpus packets x ${REPEAT} passes per run, ${RUNS} runs per cell, each run a fresh process, node ${process.version}`);
  console.log(`before: ${loadOs()}`);
  const self = fileURLToPath(import.meta.url);
  const samples = new Map<string, Sample[]>();
  for (let run = 0; run < RUNS; run++) {
    for (const size of BATCHES) {
      for (const impl of run % 2 === 0 ? IMPLS : [...IMPLS].reverse()) {
        const r = spawnSync(process.execPath, [self, '--child', impl, String(size)], { encoding: 'utf8', env: { ...process.env } });
        if (r.status !== 0) throw new Error(`child ${impl}/${size} failed: ${r.stderr}`);
        const s = JSON.parse(r.stdout) as Sample;
        const key = `${impl}/${size}`;
        samples.set(key, [...(samples.get(key) ?? []), s]);
      }
    }
  }
  console.log(`after:  ${loadOs()}`);
  console.log('| batch | TypeScript: CPU ns/pkt median (min-max), Mpkt/s, wall median | native: same | result |');
  console.log('|---:|---|---|---|');
  for (const size of BATCHES) {
    const cpu = (impl: string): number[] => samples.get(`${impl}/${size}`)!.map((s) => s.cpuNs);
    const sums = new Set(IMPLS.flatMap((impl) => samples.get(`${impl}/${size}`)!.map((s) => s.checksum)));
    if (sums.size !== 1) throw new Error(`batch ${size}: valid-packet counts differ between runs/implementations`);
    const cell = (impl: string): string => {
      const xs = cpu(impl);
      const m = median(xs);
      const w = median(samples.get(`${impl}/${size}`)!.map((s) => s.wallNs));
      return `${m.toFixed(0)} ns (${Math.min(...xs).toFixed(0)}-${Math.max(...xs).toFixed(0)}), ${(1e3 / m).toFixed(2)}, wall ${w.toFixed(0)} ns`;
    };
    const [t, n] = [cpu('ts'), cpu('native')];
    const ratio = median(t) / median(n);
    const overlap = Math.min(...t) <= Math.max(...n) && Math.min(...n) <= Math.max(...t);
    const verdict = overlap ? `ranges overlap (medians ${ratio >= 1 ? `native ${ratio.toFixed(2)}x` : `TS ${(1 / ratio).toFixed(2)}x`})` : ratio > 1 ? `native ${ratio.toFixed(2)}x faster` : `TS ${(1 / ratio).toFixed(2)}x faster`;
    console.log(`| ${size} | ${cell('ts')} | ${cell('native')} | ${verdict} |`);
  }
}

if (process.argv[2] === '--child') {
  process.stdout.write(JSON.stringify(measure(process.argv[3] as 'ts' | 'native', Number(process.argv[4]))));
} else {
  main();
}
