import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { armOf, fnv1a } from '../src/aic/arm.js';
import { decide, type LinkInput, type Policy, type TrackInput, type ViewerSettings } from '../src/aic/controller.js';
import { Dynacast } from '../src/aic/dynacast.js';
import { coveringLayer, layersOf, temporalFor } from '../src/aic/layers.js';
import { qualityScore, type QualityInput } from '../src/aic/quality.js';
import { EventEmitter } from 'node:events';
import pino from 'pino';
import { Registry } from 'prom-client';
import type { types } from 'mediasoup';
import { AicMetrics } from '../src/aic/aicMetrics.js';
import { AicRoom } from '../src/aic/aicRoom.js';
import type { PeerConsumer } from '../src/sfu/peerConsumer.js';
import { sleep } from './helpers.js';

// The AIC controller's rules with injected settings, bandwidth, loss and RTT: no sockets.

const POLICY: Policy = { adaptive: true, thresholds: { high_latency_ms: 150, packet_loss_percent: 5, low_bandwidth_kbps: 500 } };
// A 1280×720 camera in three layers: 320×180 @150k, 640×360 @500k, 1280×720 @1.2M.
const CAM = layersOf(1280, 720, [
  { scaleResolutionDownBy: 4, maxBitrate: 150_000 },
  { scaleResolutionDownBy: 2, maxBitrate: 500_000 },
  { scaleResolutionDownBy: 1, maxBitrate: 1_200_000 },
]);
const shown = (width: number, height: number, extra: Partial<ViewerSettings> = {}): ViewerSettings => ({ width, height, hidden: false, fps: 0, ...extra });
const track = (id: string, settings: ViewerSettings | undefined, extra: Partial<TrackInput> = {}): TrackInput => ({
  consumerId: id, source: 'camera', layers: CAM, sourceFps: 30, settings, ...extra,
});
const one = (t: TrackInput, link: LinkInput = {}, policy = POLICY) => decide([t], link, policy)[0]!;

describe('AIC controller', () => {
  test('the smallest layer that covers the displayed size', () => {
    assert.deepEqual(CAM.map((l) => `${l.width}x${l.height}`), ['320x180', '640x360', '1280x720']);
    assert.equal(one(track('a', shown(240, 135))).spatialLayer, 0, 'a 240×135 tile: the 180p layer');
    assert.equal(one(track('a', shown(320, 180))).spatialLayer, 0, '320×180 exactly: still 180p');
    assert.equal(one(track('a', shown(480, 270))).spatialLayer, 1);
    assert.equal(one(track('a', shown(960, 540))).spatialLayer, 2);
    assert.equal(one(track('a', shown(2560, 1440))).spatialLayer, 2, 'larger than the source: the top layer');
    // A tall narrow element shows the 16:9 video letterboxed: only its width matters.
    assert.equal(one(track('a', shown(300, 1000))).spatialLayer, 0);
    // devicePixelRatio is the client's: 240×135 CSS px at 2× arrive as 480×270.
    assert.equal(one(track('a', shown(480, 270))).reason, 'display');
  });

  test('hidden tiles are paused; unreported and zero-size tracks get every layer', () => {
    const hidden = one(track('a', shown(960, 540, { hidden: true })));
    assert.equal(hidden.paused, true);
    assert.equal(hidden.reason, 'hidden');
    const unreported = one(track('a', undefined));
    assert.deepEqual([unreported.paused, unreported.spatialLayer, unreported.reason], [false, 2, 'unreported']);
    assert.equal(one(track('a', shown(0, 0))).spatialLayer, 2, 'a size of 0 (not laid out yet) is unknown, not tiny');
  });

  test('wanted frame rate picks the temporal layer', () => {
    assert.equal(temporalFor(0, 30), 2);
    assert.equal(temporalFor(30, 30), 2);
    assert.equal(temporalFor(15, 30), 1);
    assert.equal(temporalFor(7, 30), 0);
    assert.equal(one(track('a', shown(960, 540, { fps: 15 }))).temporalLayer, 1);
  });

  test('on a constrained link, upgrades only when the bandwidth estimate allows, with headroom', () => {
    const big = shown(1280, 720);
    // Unconstrained (estimate over low_bandwidth_kbps): the preferred layer is the need;
    // mediasoup upgrades to it when its own estimate allows.
    assert.equal(one(track('a', big), { availableBitrate: 1_000_000 }).spatialLayer, 2);
    // Constrained (RTT high): the estimate caps it, screen first / big first.
    const capped = one(track('a', big), { availableBitrate: 400_000, rttMs: 200 });
    assert.deepEqual([capped.spatialLayer, capped.reason], [0, 'bandwidth']);
    const big2 = track('a', big, { current: 0, layers: CAM });
    assert.equal(one(big2, { availableBitrate: 520_000, rttMs: 200 }).spatialLayer, 0, 'no upgrade while constrained, even if it fits');
    assert.equal(one(track('a', big, { current: 1 }), { availableBitrate: 550_000, rttMs: 200 }).spatialLayer, 1, 'kept when it fits');
    // The lowest layer is always allowed (mediasoup itself goes below it when it must).
    assert.equal(one(track('a', big), { availableBitrate: 10_000, rttMs: 200 }).spatialLayer, 0);
    // adaptive.enabled false: the estimate is ignored.
    assert.equal(one(track('a', big), { availableBitrate: 10_000 }, { ...POLICY, adaptive: false }).spatialLayer, 2);
  });

  test('RTT, loss, low estimate or a low consumer score past the thresholds: one layer lower, no upgrades', () => {
    const big = shown(1280, 720);
    for (const link of [{ rttMs: 200 }, { lossPct: 8 }] as LinkInput[]) {
      const d = one(track('a', big), link);
      assert.ok(d.spatialLayer <= 1, JSON.stringify(link));
      assert.ok(d.reason === 'constrained' || d.reason === 'bandwidth', JSON.stringify(link));
    }
    // A low estimate alone is not a constraint (mediasoup probes only up to what is preferred,
    // and forwards less by itself when the link is short), even right after a resume.
    assert.equal(one(track('a', big, { current: 0, forwarded: 0 }), { availableBitrate: 400_000 }).spatialLayer, 2);
    assert.equal(one(track('a', big, { current: 2, forwarded: 0 }), { availableBitrate: 300_000 }).spatialLayer, 2);
    // With high RTT it is shared out: 400k fits only 180p, while the display still needs 720p.
    const short = one(track('a', big, { current: 2 }), { availableBitrate: 400_000, rttMs: 300 });
    assert.deepEqual([short.spatialLayer, short.need], [0, 2], 'need = what dynacast asks the publisher for');
    assert.equal(one(track('a', big), { rttMs: 200 }).spatialLayer, 1);
    assert.equal(one(track('a', big), { rttMs: 140, lossPct: 4.9 }).spatialLayer, 2, 'under the thresholds nothing changes');
    assert.equal(one(track('a', big, { score: 3 }), {}).spatialLayer, 2, 'a low consumer score alone (a layer switch dips it) is not enough');
    assert.equal(one(track('a', big, { score: 3 }), { lossPct: 3 }).spatialLayer, 1, 'consumer score 3/10 with 3% loss');
    // Constrained while on layer 0: the small tile's need (0) is kept, no upgrade to the big need.
    assert.equal(one(track('a', big, { current: 0 }), { lossPct: 10 }).spatialLayer, 0);
    assert.equal(one(track('a', big), { rttMs: 200 }, { ...POLICY, adaptive: false }).spatialLayer, 2);
  });

  test('the estimate goes to screen share first, then the larger tiles; priorities follow', () => {
    const screen = track('s', shown(1280, 720), { source: 'screen_share' });
    const speaker = track('big', shown(1280, 720));
    const small = track('small', shown(240, 135));
    const ds = decide([small, speaker, screen], { availableBitrate: 1_600_000, rttMs: 200 }, POLICY);
    const by = Object.fromEntries(ds.map((d) => [d.consumerId, d]));
    assert.equal(by.s!.spatialLayer, 2, 'the screen share keeps its top layer');
    assert.equal(by.big!.spatialLayer, 0, 'constrained: what is left (400k) fits only 180p for the speaker');
    assert.equal(by.small!.spatialLayer, 0);
    assert.deepEqual([by.s!.priority, by.big!.priority, by.small!.priority], [3, 2, 1]);
    // With loss, the screen share is not stepped down; cameras are.
    const lossy = Object.fromEntries(decide([speaker, screen], { lossPct: 10 }, POLICY).map((d) => [d.consumerId, d]));
    assert.equal(lossy.s!.spatialLayer, 2);
    assert.equal(lossy.big!.spatialLayer, 1);
  });
});

describe('dynacast aggregation', () => {
  test('the highest layer any consumer needs, raised at once, lowered after the hold-down', async () => {
    const told: number[] = [];
    const d = new Dynacast(150, (_p, l) => told.push(l));
    d.addProducer('p', 3);
    d.want('p', 'c1', 0);
    d.want('p', 'c2', 2);
    assert.equal(d.told('p'), 2);
    d.want('p', 'c2', -1); // c2 hidden
    assert.deepEqual(told, [], 'not lowered before the hold-down');
    d.want('p', 'c2', 1);
    await sleep(250);
    assert.deepEqual(told, [1], 'lowered to what is needed when the hold-down ends');
    d.want('p', 'c2', -1);
    d.want('p', 'c1', -1);
    await sleep(250);
    assert.deepEqual(told, [1, 0], 'every tile hidden: the lowest layer stays on while anyone subscribes');
    d.want('p', 'c1', 0);
    d.want('p', 'c2', 2);
    assert.deepEqual(told, [1, 0, 2], 'raised at once');
    d.drop('p', 'c2');
    d.drop('p', 'c1');
    await sleep(250);
    assert.deepEqual(told, [1, 0, 2, -1], 'no consumer: no layer');
    d.want('p', 'c3', 0);
    assert.deepEqual(told, [1, 0, 2, -1, 0]);
    d.addProducer('mono', 1);
    d.want('mono', 'c1', 0);
    assert.equal(d.told('mono'), undefined, 'single-layer producers are not dynacast');
    d.close();
  });

  test('close() leaves no timer behind', async () => {
    const told: number[] = [];
    const d = new Dynacast(50, (_p, l) => told.push(l));
    d.addProducer('p', 3); // no consumer: a countdown to -1 starts
    d.close();
    await sleep(100);
    assert.deepEqual(told, []);
  });
});

describe('quality score', () => {
  const base: QualityInput = {
    displayWidth: 960, displayHeight: 540, receivedWidth: 1280, receivedHeight: 720, fps: 30, sourceFps: 30,
    freezeFraction: 0, lossPct: 0, jitterMs: 0, rttMs: 20,
  };
  test('full marks for a layer that covers the tile; a 240×135 tile fed 180p is not penalised', () => {
    assert.ok(qualityScore(base) >= 98, String(qualityScore(base)));
    assert.ok(qualityScore({ ...base, displayWidth: 240, displayHeight: 135, receivedWidth: 320, receivedHeight: 180 }) >= 98);
  });
  test('upscaling, lower frame rate, freezes, loss and delay each lower it', () => {
    const full = qualityScore(base);
    const halfRes = qualityScore({ ...base, receivedWidth: 480, receivedHeight: 270 });
    assert.ok(halfRes < full && halfRes >= 65 && halfRes <= 75, `half the needed resolution: ${halfRes}`);
    assert.ok(qualityScore({ ...base, fps: 15 }) < full);
    assert.ok(qualityScore({ ...base, freezeFraction: 0.25 }) <= 51);
    assert.ok(qualityScore({ ...base, lossPct: 10 }) < 75);
    assert.ok(qualityScore({ ...base, rttMs: 600 }) < qualityScore({ ...base, rttMs: 100 }));
    assert.equal(qualityScore({ ...base, receivedWidth: 0, receivedHeight: 0 }), 0, 'nothing received');
  });
});

describe("the server's quality score of what it forwards (AicRoom)", () => {
  // A producer and one consumer of it as AicRoom sees them (only the fields it reads), in
  // the control arm: scored, never controlled.
  const scoreOf = async (scalabilityMode: string | undefined, temporalLayer: number): Promise<number | undefined> => {
    const room = new AicRoom('r', 'RM_r', 'control', { policy: POLICY, holdDownMs: 0, minQuality: 70, fallback: true }, () => undefined, new AicMetrics(new Registry()), pino({ level: 'silent' }));
    const producer = {
      id: 'prod', kind: 'video', paused: false, observer: new EventEmitter(),
      rtpParameters: { encodings: [{ scaleResolutionDownBy: 4 }, { scaleResolutionDownBy: 2 }, { scaleResolutionDownBy: 1 }] },
      getStats: async () => [],
    } as unknown as types.Producer;
    room.addProducer('pub', producer, 'camera', { width: 1280, height: 720 });
    const pc = Object.assign(new EventEmitter(), {
      id: 'cons', producerId: 'prod', kind: 'video', closed: false, paused: false, score: 10,
      currentLayers: { spatialLayer: 2, temporalLayer },
      consumer: { rtpParameters: { encodings: [{ ssrc: 1, ...(scalabilityMode ? { scalabilityMode } : {}) }] } },
      getStats: async () => [{ type: 'outbound-rtp', byteCount: 1000 }],
    }) as unknown as PeerConsumer;
    room.addConsumer('sub', pc);
    room.settings('sub', pc, shown(960, 540));
    await room.sample(1);
    const q = room.snapshot()['sub']?.[0]?.quality;
    room.close();
    return q;
  };

  test('a stream without temporal layers (mediasoup: L3T1, or no scalabilityMode) forwarded at its only temporal layer is at full frame rate', async () => {
    // Plain-RTP publishers and browsers without temporal scalability send such streams: the
    // score took temporal layer 0 for a quarter of the rate and gave every tile 66 (bench/aic).
    assert.ok((await scoreOf('L3T1', 0))! >= 98, 'L3T1 at temporal layer 0');
    assert.ok((await scoreOf(undefined, 0))! >= 98, 'no scalabilityMode at temporal layer 0');
  });

  test('with three temporal layers, the lowest is a quarter of the rate, the top the full rate', async () => {
    assert.ok((await scoreOf('L3T3', 2))! >= 98, 'L3T3 at temporal layer 2');
    const quarter = (await scoreOf('L3T3', 0))!;
    assert.ok(quarter >= 60 && quarter <= 70, `L3T3 at temporal layer 0: ${quarter}`);
  });
});

describe('A/B arms', () => {
  test('a stable hash of the room name; percent of rooms run AIC', () => {
    assert.equal(fnv1a('a'), 0xe40c292c, 'FNV-1a test vector');
    assert.equal(armOf('any', { enabled: false, percent: 0 }), 'aic', 'A/B off: every room runs AIC');
    const names = Array.from({ length: 2000 }, (_, i) => `room-${i}`);
    const aic = names.filter((n) => armOf(n, { enabled: true, percent: 30 }) === 'aic').length;
    assert.ok(aic > 500 && aic < 700, `about 30% of 2000 rooms: ${aic}`);
    assert.deepEqual(names.map((n) => armOf(n, { enabled: true, percent: 30 })), names.map((n) => armOf(n, { enabled: true, percent: 30 })));
    assert.equal(names.filter((n) => armOf(n, { enabled: true, percent: 0 }) === 'aic').length, 0);
    assert.equal(names.filter((n) => armOf(n, { enabled: true, percent: 100 }) === 'aic').length, 2000);
  });
});

describe('layer geometry', () => {
  test('covering layer with no layers / one layer', () => {
    assert.equal(coveringLayer([], { width: 10, height: 10 }), 0);
    assert.equal(coveringLayer(layersOf(640, 480, [{}]), { width: 10, height: 10 }), 0);
    assert.deepEqual(layersOf(1280, 720, [{}, {}, {}]).map((l) => l.height), [180, 360, 720], 'default: halving per layer');
  });
});
