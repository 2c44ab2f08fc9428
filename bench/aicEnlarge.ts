// Issue 14: a viewer enlarges a small tile; how long until the top layer plays (Chromium,
// real simulcast: a 1280×720 fake camera in three layers). Two arms in the same run:
//   dynacast-off: the viewer is the only one, so dynacast has switched the publisher's
//                 upper encodings off while the tile was small (they must come back first);
//   baseline:     a second viewer keeps a 1280×720 tile, so the top encoding never stops
//                 (only the first viewer's consumer changes layers).
// Per iteration: the tile goes 240×135, the viewer receives 180p (dynacast-off arm: and the
// publisher's r2 stops, and 3 s more pass), then 1280×720 at t0; measured: t0 → the viewer's inbound-rtp shows
// frameHeight 720, and (dynacast-off) t0 → r2 bytes flowing again at the publisher.
//
// With --compare-worker PATH, the dynacast-off arm runs again on a server whose mediasoup
// worker is PATH (a worker built with a change to try, against the stock one).
//
//   npm run bench:aic-enlarge -- [--runs 5] [--compare-worker PATH]
import { loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import type { Browser, Page } from 'playwright-core';
import { joinDemo, launch } from '../test/chromium.js';
import type { TestServer } from '../test/helpers.js';
import { pct, sleep, startAura, until, type Server } from './common.js';

const { values: args } = parseArgs({ options: { runs: { type: 'string', default: '5' }, 'compare-worker': { type: 'string' } } });
const RUNS = Number(args.runs);
// How long the tile stays small after the publisher's r2 stopped (dynacast-off arm).
const SMALL_MS = 3000;

type RoomWin = { auralinkRoom: import('../src/client/room.js').Room };

const asTest = (s: Server): TestServer => ({ http: `http://127.0.0.1:${s.port}`, url: `ws://127.0.0.1:${s.port}` }) as TestServer;

function frameHeight(page: Page): Promise<number> {
  return page.evaluate(async () => {
    const room = (window as unknown as RoomWin).auralinkRoom;
    for (const r of room.remote.values()) {
      if (r.participantIdentity !== 'pub' || r.source !== 'camera') continue;
      let h = 0;
      (await r.getStats()).forEach((s: { type: string; kind?: string; frameHeight?: number }) => {
        if (s.type === 'inbound-rtp' && s.kind === 'video') h = s.frameHeight ?? 0;
      });
      return h;
    }
    return 0;
  });
}

function r2Bytes(page: Page): Promise<number> {
  return page.evaluate(async () => {
    const room = (window as unknown as RoomWin).auralinkRoom;
    let b = 0;
    (await room.sendStats())?.forEach((s: { type: string; kind?: string; rid?: string; bytesSent?: number }) => {
      if (s.type === 'outbound-rtp' && s.kind === 'video' && s.rid === 'r2') b = s.bytesSent ?? 0;
    });
    return b;
  });
}

/**
 * What limits the publisher's encoder (outbound-rtp of its top-layer camera encoding, W3C
 * qualityLimitationReason / Durations) and its send estimate (candidate-pair
 * availableOutgoingBitrate): why Chromium may restart r2 late.
 */
interface Limits {
  reason: string;
  cpuS: number;
  bandwidthS: number;
  estimateKbps: number;
}
function limits(page: Page): Promise<Limits> {
  return page.evaluate(async () => {
    const room = (window as unknown as RoomWin).auralinkRoom;
    const out = { reason: '-', cpuS: 0, bandwidthS: 0, estimateKbps: 0 };
    (await room.sendStats())?.forEach(
      (s: { type: string; kind?: string; rid?: string; qualityLimitationReason?: string; qualityLimitationDurations?: Record<string, number>; availableOutgoingBitrate?: number; nominated?: boolean }) => {
        if (s.type === 'outbound-rtp' && s.kind === 'video' && s.rid === 'r0') {
          out.reason = s.qualityLimitationReason ?? '-';
          out.cpuS = s.qualityLimitationDurations?.cpu ?? 0;
          out.bandwidthS = s.qualityLimitationDurations?.bandwidth ?? 0;
        }
        if (s.type === 'candidate-pair' && s.nominated && s.availableOutgoingBitrate) out.estimateKbps = Math.round(s.availableOutgoingBitrate / 1000);
      },
    );
    return out;
  });
}

function layout(page: Page, w: number, h: number): Promise<void> {
  return page.evaluate(
    ({ w, h }) => {
      const room = (window as unknown as RoomWin).auralinkRoom;
      const sid = room.participants.get('pub')!.sid;
      document.getElementById('grid')!.style.display = 'block';
      Object.assign(document.getElementById(`tile-${sid}`)!.style, { width: `${w}px`, height: `${h}px`, aspectRatio: 'auto' });
    },
    { w, h },
  );
}

interface ArmResult {
  at720: number[];
  r2: number[];
  /** Per enlarge: the publisher's limits just before it, and the limitation seconds added until r2 was sent again. */
  limits: { before: Limits; cpuS: number; bandwidthS: number }[];
}

async function arm(browser: Browser, server: Server, name: string, holder: boolean): Promise<ArmResult> {
  const names = holder ? ['pub', 'viewer', 'holder'] : ['pub', 'viewer'];
  const pages = await joinDemo(browser, asTest(server), `enlarge-${name}-${Date.now()}`, names, 'video=1280x720');
  const { pub, viewer } = pages as { pub: Page; viewer: Page };
  const out: ArmResult = { at720: [], r2: [], limits: [] };
  try {
    if (holder) await layout(pages.holder!, 1280, 720);
    await layout(viewer, 1280, 720);
    await until(async () => (await frameHeight(viewer)) === 720, 45_000, 'first 720p');
    for (let i = 0; i < RUNS; i++) {
      await layout(viewer, 240, 135);
      await until(async () => (await frameHeight(viewer)) === 180, 20_000, '180p at the small tile');
      if (!holder) {
        // r2 stopped at the publisher (no new bytes for a second).
        await until(async () => {
          const a = await r2Bytes(pub);
          await sleep(1000);
          return (await r2Bytes(pub)) === a;
        }, 20_000, 'r2 stopped');
        // A tile small for a while: past mediasoup's inactivity check of the stopped stream
        // (a stream back within about 1.5 s is not new to it, and switches at once).
        await sleep(SMALL_MS);
      } else {
        await sleep(SMALL_MS + 2000); // the same small-tile time as the other arm, about
      }
      const before = await limits(pub);
      const r2Start = await r2Bytes(pub);
      const t0 = Date.now();
      await layout(viewer, 1280, 720);
      let r2At = 0;
      await until(async () => {
        if (!r2At && (await r2Bytes(pub)) > r2Start) r2At = Date.now() - t0;
        return (await frameHeight(viewer)) === 720;
      }, 30_000, '720p after enlarging');
      out.at720.push(Date.now() - t0);
      if (!holder) {
        await until(async () => {
          if (!r2At && (await r2Bytes(pub)) > r2Start) r2At = Date.now() - t0;
          return r2At > 0;
        }, 10_000, 'r2 again');
        out.r2.push(r2At);
        const after = await limits(pub);
        out.limits.push({ before, cpuS: after.cpuS - before.cpuS, bandwidthS: after.bandwidthS - before.bandwidthS });
      }
      await sleep(1500);
    }
  } finally {
    for (const p of Object.values(pages)) await p.context().close();
  }
  return out;
}

const fmt = (xs: number[]): string => {
  const s = [...xs].sort((a, b) => a - b);
  return `n=${s.length} p50 ${pct(s, 50)} ms, p95 ${pct(s, 95)} ms, range ${s[0]}–${s.at(-1)} ms`;
};

const showLimits = (ls: ArmResult['limits']): string =>
  ls.map((l) => `[${l.before.reason}, est ${l.before.estimateKbps} kbit/s; +cpu ${l.cpuS.toFixed(2)} s, +bw ${l.bandwidthS.toFixed(2)} s]`).join(' ');

const CFG = { development: true, aic: { enabled: true, pause_hold_down_ms: 1000, stats_interval_ms: 1000 }, turn: { mode: 'off' } };
const server = await startAura(CFG);
const browser = await launch();
try {
  const load0 = loadavg()[0]!.toFixed(2);
  const base = await arm(browser, server, 'base', true);
  const off = await arm(browser, server, 'off', false);
  let other: ArmResult | undefined;
  const otherWorker = args['compare-worker'];
  if (otherWorker) {
    // The server's mediasoup takes its worker binary from the environment it is spawned with.
    process.env.MEDIASOUP_WORKER_BIN = otherWorker;
    const s2 = await startAura(CFG);
    delete process.env.MEDIASOUP_WORKER_BIN;
    try {
      other = await arm(browser, s2, 'other', false);
    } finally {
      await s2.stop();
    }
  }
  console.log(`\nenlarge 240×135 → 1280×720, until the viewer's inbound-rtp shows 720p (load ${load0} → ${loadavg()[0]!.toFixed(2)})`);
  console.log(`  baseline (top encoding kept on by another viewer): ${fmt(base.at720)}`);
  console.log(`  dynacast had switched r1/r2 off:                    ${fmt(off.at720)}`);
  console.log(`    of which r2 sending again at the publisher:       ${fmt(off.r2)}`);
  console.log(`    publisher before each enlarge / limited until r2: ${showLimits(off.limits)}`);
  if (other) {
    console.log(`  the same with worker ${otherWorker}:`);
    console.log(`                                                     ${fmt(other.at720)}`);
    console.log(`    of which r2 sending again at the publisher:       ${fmt(other.r2)}`);
    console.log(`    publisher before each enlarge / limited until r2: ${showLimits(other.limits)}`);
  }
  console.log('  target: the top layer within 1 s');
} finally {
  await browser.close();
  await server.stop();
}
