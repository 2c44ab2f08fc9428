// One arm of one run: the reference room opened in a room of that arm (forward-all = the A/B
// control arm, measured but never controlled; AIC), a settle time, then a measurement
// window: bytes the viewers received, bytes the publishers sent, the server's AIC metrics
// (deltas over the window), the receiver-side score; in the AIC arm then the reaction to
// viewport changes.
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { qualityScore } from '../../src/aic/quality.js';
import type { RtpParser } from '../../src/aic/rtp/api.js';
import type { TestServer } from '../../test/helpers.js';
import { cpuSeconds, metricSum, sleep } from '../common.js';
import type { Capture } from './capture.js';
import { LARGE, ReferenceRoom, SMALL, SPEAKER } from './room.js';

export type ArmName = 'control' | 'aic';

export interface ServerAic {
  forwarded: number;
  forwardAll: number;
  qSum: number;
  qCount: number;
  /** Quality histogram bucket counts (cumulative, by upper edge). */
  buckets: Map<number, number>;
  below: number;
}

export interface ArmResult {
  arm: ArmName;
  room: string;
  windowS: number;
  downVideo: number;
  downAudio: number;
  upLayers: number[];
  upAudio: number;
  keyRequests: number;
  keyJumps: number;
  wantedChanges: number;
  /** Layers each publisher had on at the end of the window (index = participant). */
  layersOn: number[];
  server: ServerAic;
  /** Receiver-side score of each visible tile over the window (same formula, docs/AIC.md). */
  tileScores: { viewer: number; publisher: number; width: number; score: number; keyWidth: number; fps: number }[];
  hiddenBytes: number;
  workerCpuS: number;
  loopP99Ms: number;
  loopMaxMs: number;
  /** Viewport change 240x135 → 960x540: trackSettings sent → first key frame of the 1280-wide layer at the viewer (ms); and back. */
  reactUp: number[];
  reactDown: number[];
  reactMissed: number;
  /** Layers the enlarged tile's publisher had on before each change (1: the upper two off, the full path). */
  reactLayersBefore: number[];
  /** PLI/FIR the publishers got, and key-frame jumps, during the viewport changes. */
  reactKeyRequests: number;
  reactKeyJumps: number;
}

async function serverAic(server: TestServer, arm: ArmName): Promise<ServerAic> {
  const text = await (await fetch(`${server.http}/metrics`)).text();
  const buckets = new Map<number, number>();
  for (const m of text.matchAll(new RegExp(`^auralink_aic_quality_score_bucket\\{(?=[^}]*arm="${arm}")[^}]*le="([^"]+)"[^}]*\\} (\\S+)$`, 'gm'))) {
    buckets.set(m[1] === '+Inf' ? Infinity : Number(m[1]), Number(m[2]));
  }
  const v = (name: string): number => {
    const x = metricSum(text, name, { arm });
    return Number.isNaN(x) ? 0 : x;
  };
  return {
    forwarded: v('auralink_aic_bytes_forwarded_total'),
    forwardAll: v('auralink_aic_forward_all_bytes_total'),
    qSum: v('auralink_aic_quality_score_sum'),
    qCount: v('auralink_aic_quality_score_count'),
    buckets,
    below: v('auralink_aic_quality_below_threshold_total'),
  };
}

function delta(a: ServerAic, b: ServerAic): ServerAic {
  const buckets = new Map<number, number>();
  for (const [le, n] of b.buckets) buckets.set(le, n - (a.buckets.get(le) ?? 0));
  return { forwarded: b.forwarded - a.forwarded, forwardAll: b.forwardAll - a.forwardAll, qSum: b.qSum - a.qSum, qCount: b.qCount - a.qCount, buckets, below: b.below - a.below };
}

async function workerCpu(server: TestServer): Promise<number> {
  const h = await server.health();
  return (h.sfu?.workers ?? []).reduce((s, w) => s + cpuSeconds(w.pid), 0);
}

export interface ArmOptions {
  participants: number;
  settleS: number;
  windowS: number;
  reactions: number;
  ssrcBase: number;
}

export async function runArm(server: TestServer, arm: ArmName, roomName: string, capture: Capture, parser: RtpParser, o: ArmOptions): Promise<ArmResult> {
  const room = await ReferenceRoom.open(server, roomName, o.participants, capture, parser, o.ssrcBase);
  try {
    await sleep(o.settleS * 1000);
    // Window start: zero every counter.
    for (const p of room.participants) {
      p.publisher.take();
      p.viewer.take();
      p.viewer.takeAudio();
    }
    const s0 = await serverAic(server, arm);
    const cpu0 = await workerCpu(server);
    const loop = monitorEventLoopDelay({ resolution: 10 });
    loop.enable();
    const t0 = performance.now();
    await sleep(o.windowS * 1000);
    const windowS = (performance.now() - t0) / 1000;
    loop.disable();
    const cpu1 = await workerCpu(server);
    const s1 = await serverAic(server, arm);
    const ups = room.participants.map((p) => p.publisher.take());
    const r: ArmResult = {
      arm,
      room: roomName,
      windowS,
      downVideo: 0,
      downAudio: 0,
      upLayers: capture.layers.map((_, i) => ups.reduce((s, u) => s + u.layerBytes[i]!, 0)),
      upAudio: ups.reduce((s, u) => s + u.audioBytes, 0),
      keyRequests: ups.reduce((s, u) => s + u.keyRequests, 0),
      keyJumps: ups.reduce((s, u) => s + u.keyJumps, 0),
      wantedChanges: ups.reduce((s, u) => s + u.wantedChanges, 0),
      layersOn: room.participants.map((p) => p.publisher.layers.filter((l) => l.active).length),
      server: delta(s0, s1),
      tileScores: [],
      hiddenBytes: 0,
      workerCpuS: cpu1 - cpu0,
      loopP99Ms: loop.percentile(99) / 1e6,
      loopMaxMs: loop.max / 1e6,
      reactUp: [],
      reactDown: [],
      reactMissed: 0,
      reactLayersBefore: [],
      reactKeyRequests: 0,
      reactKeyJumps: 0,
    };
    for (const p of room.participants) {
      r.downAudio += p.viewer.takeAudio();
      for (const [tile, c] of p.viewer.take()) {
        if (tile.kind !== 'video') continue;
        r.downVideo += c.videoBytes;
        if (tile.hidden) {
          r.hiddenBytes += c.videoBytes;
          continue;
        }
        const fps = c.frames / windowS;
        const score = qualityScore({
          displayWidth: tile.width,
          displayHeight: tile.height,
          receivedWidth: tile.keyWidth,
          receivedHeight: tile.keyHeight,
          fps,
          sourceFps: capture.fps,
          freezeFraction: c.freezeS / windowS,
          lossPct: c.packets > 0 ? (100 * c.lost) / (c.packets + c.lost) : 0,
          jitterMs: 0,
          rttMs: 0,
        });
        r.tileScores.push({ viewer: p.index, publisher: tile.publisher, width: tile.width, score, keyWidth: tile.keyWidth, fps });
      }
    }
    if (arm === 'aic') {
      await react(room, o.reactions, r);
      for (const p of room.participants) {
        const c = p.publisher.take();
        r.reactKeyRequests += c.keyRequests;
        r.reactKeyJumps += c.keyJumps;
      }
    }
    return r;
  } finally {
    await room.close();
  }
}

/**
 * Viewport changes: a visible 240x135 tile of a publisher that is not shown large anywhere
 * (its upper layers are off: the whole path, dynacast included) enlarged to 960x540, then
 * back. A different publisher each time, so no change finds layers another left on.
 */
async function react(room: ReferenceRoom, count: number, r: ArmResult): Promise<void> {
  const used = new Set<number>([SPEAKER, 1]);
  const top = 1280;
  for (const { viewer, tile } of room.videoTiles()) {
    if (r.reactUp.length + r.reactMissed >= count) break;
    if (tile.hidden || tile.width !== SMALL.width || used.has(tile.publisher)) continue;
    used.add(tile.publisher);
    const wait = (minWidth: number, maxWidth: number): Promise<bigint | undefined> =>
      new Promise((resolve) => {
        const timer = setTimeout(() => {
          tile.waiter = undefined;
          resolve(undefined);
        }, 10_000);
        tile.waiter = {
          minWidth,
          maxWidth,
          resolve: (t) => {
            clearTimeout(timer);
            resolve(t);
          },
        };
      });
    r.reactLayersBefore.push(room.participants[tile.publisher]!.publisher.layers.filter((l) => l.active).length);
    const up = wait(top, Number.MAX_SAFE_INTEGER);
    const t0 = process.hrtime.bigint();
    await room.report(viewer, tile.consumerId, { ...LARGE, hidden: false });
    const t1 = await up;
    if (t1 === undefined) r.reactMissed++;
    else r.reactUp.push(Number(t1 - t0) / 1e6);
    const down = wait(0, SMALL.width * 2 - 1);
    const t2 = process.hrtime.bigint();
    await room.report(viewer, tile.consumerId, { ...SMALL, hidden: false });
    const t3 = await down;
    if (t3 !== undefined) r.reactDown.push(Number(t3 - t2) / 1e6);
    await sleep(300);
  }
}
