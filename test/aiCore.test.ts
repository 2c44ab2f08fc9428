import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { pino } from 'pino';
import { ADVICE_VERSION, qualityFloor, type AdviceRequest } from '../src/aic/advice.js';
import { AiCoreClient, type AdviceOutcome } from '../src/aic/aiCore.js';
import { decide, type Policy, type TrackInput } from '../src/aic/controller.js';
import { layersOf } from '../src/aic/layers.js';
import type { SignalClient } from '../src/client/signalClient.js';
import { CircuitBreaker } from '../src/util/circuitBreaker.js';
import { aicSummaries, eventually, sleep, startServer, type TestServer } from './helpers.js';

// The AI core contract (docs/AIC.md "AI core advice"): the client against small HTTP servers
// that follow it, hang, or fail; the controller's safety rules on advice; and a real server
// applying advice to a publisher's layers and falling back to its local policy.

const log = pino({ level: 'silent' });
const CAM = layersOf(1280, 720, [
  { scaleResolutionDownBy: 4, maxBitrate: 150_000 },
  { scaleResolutionDownBy: 2, maxBitrate: 500_000 },
  { scaleResolutionDownBy: 1, maxBitrate: 1_200_000 },
]);
const POLICY: Policy = { adaptive: true, thresholds: { high_latency_ms: 150, packet_loss_percent: 5, low_bandwidth_kbps: 500 } };

/** An HTTP server the test controls: `handle` answers each request (it may never answer). */
class FakeAiCore {
  readonly requests: AdviceRequest[] = [];
  private server: Server | undefined;
  private readonly hanging = new Set<ServerResponse>();
  handle: (req: AdviceRequest, res: ServerResponse) => void = (_req, res) => res.end('{}');

  async start(): Promise<string> {
    this.server = createServer((req: IncomingMessage, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        if (req.url !== '/v1/aic/advice' || req.method !== 'POST') {
          res.statusCode = 404;
          return res.end();
        }
        const body = JSON.parse(Buffer.concat(chunks).toString()) as AdviceRequest;
        this.requests.push(body);
        this.hanging.add(res);
        res.on('close', () => this.hanging.delete(res));
        this.handle(body, res);
      });
    });
    await new Promise<void>((r) => this.server!.listen(0, '127.0.0.1', r));
    return `http://127.0.0.1:${(this.server!.address() as AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    for (const res of this.hanging) res.destroy();
    this.server?.closeAllConnections();
    await new Promise<void>((r) => this.server?.close(() => r()) ?? r());
  }
}

const json = (res: ServerResponse, body: unknown, status = 200): void => {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
};

const request = (room = 'r1'): AdviceRequest => ({
  version: ADVICE_VERSION,
  node_id: 'n1',
  room,
  sent_at: new Date().toISOString(),
  min_quality: 70,
  target_reduction_percent: 80,
  reduction_percent: null,
  tracks: [],
  subscribers: [],
});

describe('circuit breaker', () => {
  test('opens after the threshold in a row, lets one trial through after open_ms, closes on success', () => {
    let now = 0;
    const b = new CircuitBreaker(3, 1000, () => now);
    b.failure();
    b.failure();
    b.success(); // not in a row
    b.failure();
    b.failure();
    assert.equal(b.state, 'closed');
    assert.equal(b.allow(), true);
    b.failure();
    assert.equal(b.state, 'open');
    assert.equal(b.allow(), false);
    now = 999;
    assert.equal(b.allow(), false);
    now = 1000;
    assert.equal(b.state, 'half-open');
    assert.equal(b.allow(), true, 'the trial');
    assert.equal(b.allow(), false, 'one trial at a time');
    b.failure();
    assert.equal(b.state, 'open', 'a failed trial opens it again');
    now = 2000;
    assert.equal(b.allow(), true);
    b.success();
    assert.equal(b.state, 'closed');
    assert.equal(b.allow(), true);
  });
});

describe('AI core client', () => {
  const core = new FakeAiCore();
  let url = '';
  const outcomes: AdviceOutcome[] = [];
  const breaker: boolean[] = [];
  const client = (over: Partial<{ timeoutMs: number; failureThreshold: number; openMs: number; maxResponseBytes: number }> = {}): AiCoreClient =>
    new AiCoreClient(
      { endpoint: `${url}/`, timeoutMs: 300, failureThreshold: 2, openMs: 400, maxResponseBytes: 4096, ...over },
      { request: (o) => outcomes.push(o), breaker: (open) => breaker.push(open) },
      log,
    );
  before(async () => {
    url = await core.start();
  });
  after(() => core.stop());

  test('sends the room features and parses the advice', async () => {
    core.handle = (req, res) =>
      json(res, { version: 1, ttl_ms: 5000, subscribers: [{ sid: 'PA_b', max_bitrate_bps: 800000, consumers: [{ consumer_id: 'c1', max_spatial_layer: 1 }] }], extra: 'ignored' });
    const r = await client().advise({ ...request('standup'), subscribers: [{ sid: 'PA_b', available_bitrate_bps: null, rtt_ms: 12, loss_percent: 0, consumers: [] }] });
    assert.equal(r.outcome, 'ok');
    assert.deepEqual(r.advice?.subscribers[0], { sid: 'PA_b', max_bitrate_bps: 800000, consumers: [{ consumer_id: 'c1', max_spatial_layer: 1 }] });
    const sent = core.requests.at(-1)!;
    assert.equal(sent.room, 'standup');
    assert.equal(sent.version, 1);
    assert.equal(sent.subscribers[0]?.rtt_ms, 12);
  });

  test('errors, answers off the contract and oversized answers are failures, not advice', async () => {
    const cases: [(res: ServerResponse) => void, AdviceOutcome][] = [
      [(res) => json(res, { error: 'boom' }, 500), 'error'],
      [(res) => res.end('not json'), 'invalid'],
      [(res) => json(res, { version: 2, subscribers: [] }), 'invalid'],
      [(res) => json(res, { version: 1, subscribers: [{ sid: 'x', consumers: [{ consumer_id: 'c', max_spatial_layer: -1 }] }] }), 'invalid'],
      [(res) => json(res, { version: 1, subscribers: [], pad: 'x'.repeat(10_000) }), 'error'],
    ];
    for (const [answer, want] of cases) {
      core.handle = (_req, res) => answer(res);
      const r = await client({ failureThreshold: 100 }).advise(request());
      assert.equal(r.outcome, want);
      assert.equal(r.advice, undefined);
    }
  });

  test('a hanging AI core times out; the circuit opens and stops asking, then tries once again', async () => {
    core.handle = () => undefined; // never answers
    const c = client();
    const n0 = core.requests.length;
    breaker.length = 0;
    const t0 = Date.now();
    assert.equal((await c.advise(request())).outcome, 'timeout');
    assert.ok(Date.now() - t0 < 3000, 'the timeout ended the request');
    assert.equal((await c.advise(request())).outcome, 'timeout');
    assert.deepEqual(breaker, [true], 'opened after two failures in a row');
    assert.equal((await c.advise(request())).outcome, 'open');
    assert.equal((await c.advise(request())).outcome, 'open');
    assert.equal(core.requests.length - n0, 2, 'nothing sent while open');
    await sleep(450);
    core.handle = (_req, res) => json(res, { version: 1, subscribers: [] });
    assert.equal((await c.advise(request())).outcome, 'ok', 'the trial after open_ms');
    assert.deepEqual(breaker, [true, false], 'closed again');
    assert.equal(core.requests.length - n0, 3);
  });

  test('close() aborts what is in flight', async () => {
    core.handle = () => undefined;
    const c = client({ timeoutMs: 10_000 });
    const n0 = core.requests.length;
    const p = c.advise(request());
    await eventually(() => core.requests.length > n0, 2000, 'the request arrived');
    c.close();
    assert.equal((await p).outcome, 'closed');
    assert.equal((await c.advise(request())).outcome, 'closed');
  });
});

describe('advice inside the local safety rules', () => {
  const track = (width: number, height: number, extra: Partial<TrackInput> = {}): TrackInput => ({
    consumerId: 'c', source: 'camera', layers: CAM, sourceFps: 30, settings: { width, height, hidden: false, fps: 0 }, ...extra,
  });

  test('the quality floor: the lowest layer keeping a tile at min_quality by resolution', () => {
    assert.equal(qualityFloor(CAM, 960, 540, 70), 1, '640×360 on a 960×540 tile scores 84; 320×180 scores 59');
    assert.equal(qualityFloor(CAM, 1280, 720, 70), 1, '640×360 on 1280×720 scores 73');
    assert.equal(qualityFloor(CAM, 1280, 720, 80), 2);
    assert.equal(qualityFloor(CAM, 240, 135, 70), 0);
    assert.equal(qualityFloor(CAM, 0, 0, 70), 2, 'unknown size: the advice cannot lower it');
  });

  test('a cap lowers a tile and what its publisher is asked for, never below the floor', () => {
    const capped = decide([track(960, 540, { advice: { maxSpatial: 0, floor: 1, maxTemporal: undefined } })], {}, POLICY)[0]!;
    assert.equal(capped.spatialLayer, 1);
    assert.equal(capped.need, 1);
    assert.equal(capped.reason, 'advice');
    const within = decide([track(1920, 1080, { advice: { maxSpatial: 1, floor: 1, maxTemporal: undefined } })], {}, POLICY)[0]!;
    assert.equal(within.spatialLayer, 1);
    const never = decide([track(240, 135, { advice: { maxSpatial: 2, floor: 0, maxTemporal: undefined } })], {}, POLICY)[0]!;
    assert.equal(never.spatialLayer, 0, 'advice never raises a tile above what it displays');
    assert.equal(never.reason, 'display');
  });

  test("a subscriber's bitrate target is shared out largest first, and stops at each tile's floor", () => {
    const a = track(1280, 720, { consumerId: 'big', advice: { maxSpatial: 2, floor: 1, maxTemporal: undefined } });
    const b = track(640, 360, { consumerId: 'mid', advice: { maxSpatial: 2, floor: 0, maxTemporal: undefined } });
    const [big, mid] = decide([a, b], { advisedBitrate: 700_000 }, POLICY);
    assert.equal(big!.spatialLayer, 1, '1.2M does not fit 700k; 500k does');
    assert.equal(mid!.spatialLayer, 0, 'what is left (200k) fits 150k');
    const [big2] = decide([a], { advisedBitrate: 100_000 }, POLICY);
    assert.equal(big2!.spatialLayer, 1, 'a target below the floor leaves the floor');
  });

  test('a frame-rate cap applies as given by the room (already raised to its floor)', () => {
    const d = decide([track(320, 180, { advice: { maxSpatial: 2, floor: 0, maxTemporal: 1 } })], {}, POLICY)[0]!;
    assert.equal(d.temporalLayer, 1);
    assert.equal(d.reason, 'advice');
  });
});

describe('a server with an AI core', () => {
  const core = new FakeAiCore();
  let server: TestServer;
  before(async () => {
    const url = await core.start();
    server = await startServer({
      sfu: { allow_plain_transports: true },
      room: { empty_timeout_s: 0.2 },
      aic: {
        enabled: true,
        pause_hold_down_ms: 200,
        stats_interval_ms: 200,
        ai_core_endpoint: url,
        ai_core: { interval_ms: 200, timeout_ms: 300, failure_threshold: 2, open_ms: 60_000 },
      },
    });
  });
  after(async () => {
    await server.close();
    await core.stop();
  });

  /** Alice publishes three simulcast layers (plain RTP: no media needed for layer decisions); Bob consumes them. */
  async function call(room: string): Promise<{ alice: SignalClient; bob: SignalClient; producerId: string; consumerId: string; wanted: number[] }> {
    const alice = await server.client('alice', room);
    const bob = await server.client('bob', room);
    const send = (await alice.request('createTransport', { producing: true, plain: true })).transport!;
    const rtpParameters = JSON.stringify({
      codecs: [{ mimeType: 'video/VP8', payloadType: 96, clockRate: 90000, rtcpFeedback: [] }],
      encodings: [{ ssrc: 111, scaleResolutionDownBy: 4 }, { ssrc: 222, scaleResolutionDownBy: 2 }, { ssrc: 333 }],
    });
    const producerId = (await alice.request('produce', { transportId: send.id, kind: 'video', rtpParameters, width: 1280, height: 720 })).id!;
    const wanted: number[] = [];
    alice.on('layersWanted', (m: { producerId: string; maxSpatialLayer: number }) => {
      if (m.producerId === producerId) wanted.push(m.maxSpatialLayer);
    });
    const recv = (await bob.request('createTransport', { consuming: true, plain: true })).transport!;
    await bob.request('connectTransport', { transportId: recv.id, plainIp: '127.0.0.1', plainPort: 9 });
    const consumer = (await bob.request('consume', { producerId, transportId: recv.id, rtpCapabilities: await bob.routerCapabilities() })).consumer!;
    await bob.request('resumeConsumer', { consumerId: consumer.id });
    return { alice, bob, producerId, consumerId: consumer.id, wanted };
  }

  test("the AI core sees the room's tracks and viewers; its cap lowers the publisher's layers, never below the tile's floor; when it stops answering the local policy comes back", async () => {
    const { alice, bob, producerId, consumerId, wanted } = await call('advised');
    const bobSid = bob.join.participant.sid;
    // Caps the 960×540 tile at layer 0: the floor (70 by resolution) keeps it at layer 1.
    core.handle = (req, res) =>
      json(res, {
        version: 1,
        ttl_ms: 800,
        subscribers: req.subscribers.map((s) => ({ sid: s.sid, consumers: s.consumers.map((c) => ({ consumer_id: c.consumer_id, max_spatial_layer: 0 })) })),
      });
    await bob.request('trackSettings', { consumerId, width: 960, height: 540 });
    await eventually(
      () => core.requests.some((r) => r.room === 'advised' && r.subscribers.some((s) => s.sid === bobSid && s.consumers.some((c) => c.consumer_id === consumerId && c.width === 960 && c.height === 540))),
      5000,
      "the AI core told of bob's 960×540 tile",
    );
    const req = core.requests.find((r) => r.room === 'advised' && r.tracks.length > 0)!;
    assert.equal(req.target_reduction_percent, 80, 'the configured target (default)');
    assert.equal(req.reduction_percent, null, 'no video measured yet (a plain publisher sending nothing)');
    assert.deepEqual(
      req.tracks.find((t) => t.producer_id === producerId)?.layers.map((l) => [l.width, l.height]),
      [[320, 180], [640, 360], [1280, 720]],
    );
    await eventually(() => wanted.at(-1) === 1, 5000, 'the publisher asked for layer 1 at most');
    await sleep(1000);
    assert.ok(!wanted.includes(0), `never below the floor (layersWanted: ${wanted.join(',')})`);
    assert.ok((await server.metric('auralink_aic_decisions_total', { reason: 'advice' })) > 0);
    assert.ok((await server.metric('auralink_aic_ai_core_requests_total', { outcome: 'ok' })) > 0);

    // The AI core hangs: requests time out, the circuit opens, the advice lapses (ttl): the
    // local policy asks for the layer covering 960×540 again (layer 2).
    core.handle = () => undefined;
    await eventually(async () => (await server.metric('auralink_aic_ai_core_circuit_open')) === 1, 5000, 'circuit open');
    await eventually(() => wanted.at(-1) === 2, 5000, 'every layer asked for again');
    const sent = core.requests.length;
    await sleep(600);
    assert.equal(core.requests.length, sent, 'no requests while the circuit is open');
    assert.ok((await server.metric('auralink_aic_ai_core_requests_total', { outcome: 'timeout' })) >= 2);
    // Media requests still work while the AI core is down.
    await bob.request('trackSettings', { consumerId, width: 240, height: 135 });
    await eventually(() => wanted.at(-1) === 0, 5000, 'the local policy lowers a small tile by itself');

    // The call's AIC summary is written when the room ends.
    const callId = alice.join.room.sid;
    await bob.leave();
    await alice.leave();
    const rows = await aicSummaries<{ arm: string; decisions: number; advice_applied: number; dynacast_updates: number; node_id: string; target_reduction_percent: number }>(server, callId);
    assert.equal(rows[0]!.arm, 'aic');
    assert.ok(rows[0]!.decisions > 0);
    assert.ok(rows[0]!.advice_applied > 0);
    assert.ok(rows[0]!.dynacast_updates >= 3);
    assert.equal(rows[0]!.target_reduction_percent, 80);
  });
});
