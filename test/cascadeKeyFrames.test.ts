import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { startServer, type TestServer } from './helpers.js';
import { requestStorm } from './plainRtp.js';
import { PrivateRedis } from './redis.js';

// Key-frame requests across nodes: every viewer asking for a key frame (PLI) must not become a
// key frame the publisher sends. A plain-RTP VP8 publisher that answers each PLI/FIR the SFU
// sends it with a key frame at once (as a browser does); ten viewers each asking 20 times a
// second; counted: the requests that reach the publisher's socket in a 3 s window. With
// mediasoup's keyFrameRequestDelay on the far node's pipe producer (or on the origin's
// producer, for viewers on the publisher's node) about one per delay gets through; with no
// delay, one per answered key frame.

const redis = new PrivateRedis();
before(() => redis.start());
after(() => redis.dispose());

const VIEWERS = 10;
const WINDOW_MS = 3000;
const DELAY_MS = 1000;
/** One request per delay window, and one for the window the count starts in and one it ends in. */
const THROTTLED_MAX = Math.floor(WINDOW_MS / DELAY_MS) + 2;

const nodeCfg = (p: string, id: string, origin: number, pipe: number) => ({
  node_id: id,
  redis: { url: redis.url },
  mesh: { redis_prefix: p, heartbeat_ms: 200, probe_interval_ms: 0 },
  database: { url: 'postgres://postgres@127.0.0.1:5432/test' },
  turn: { mode: 'off' },
  sfu: { allow_plain_transports: true, cascade_linger_ms: 300, key_frame_request_delay_ms: origin, pipe_key_frame_request_delay_ms: pipe },
  room: { empty_timeout_s: 0.2 },
});

const storm = (pub: TestServer, sub: TestServer, room: string): Promise<number> => requestStorm(pub, [sub], room, { viewers: VIEWERS, windowMs: WINDOW_MS, settleMs: DELAY_MS + 200 });

describe('key-frame requests without a delay (0 on every node)', () => {
  const p = `test:kf0:${randomUUID().slice(0, 8)}:`;
  let a: TestServer;
  let b: TestServer;
  before(async () => {
    [a, b] = await Promise.all([startServer(nodeCfg(p, 'kf0-1', 0, 0)), startServer(nodeCfg(p, 'kf0-2', 0, 0))]);
  });
  after(async () => {
    await Promise.all([a.close(), b.close()]);
  });

  test("viewers on another node: each answered request reaches the publisher (the test's storm does multiply key frames)", async (t) => {
    const n = await storm(a, b, 'kf0');
    t.diagnostic(`${n} key-frame requests at the publisher in ${WINDOW_MS} ms`);
    assert.ok(n > 3 * THROTTLED_MAX, `many requests reach the publisher without a delay (${n})`);
  });

  test("viewers on the publisher's node: likewise", async (t) => {
    const n = await storm(a, a, 'kf0-local');
    t.diagnostic(`${n} key-frame requests at the publisher in ${WINDOW_MS} ms`);
    assert.ok(n > 3 * THROTTLED_MAX, `many requests reach the publisher without a delay (${n})`);
  });
});

describe(`key-frame requests with a delay of ${DELAY_MS} ms`, () => {
  const p = `test:kfd:${randomUUID().slice(0, 8)}:`;
  let a: TestServer;
  let b: TestServer;
  before(async () => {
    // Node 1 (the origin below) delays nothing on its publishers' producers: only node 2's
    // pipe producer can throttle node 2's viewers. Node 2 delays its own publishers' too.
    [a, b] = await Promise.all([startServer(nodeCfg(p, 'kfd-1', 0, DELAY_MS)), startServer(nodeCfg(p, 'kfd-2', DELAY_MS, DELAY_MS))]);
  });
  after(async () => {
    await Promise.all([a.close(), b.close()]);
  });

  test("viewers on another node: their requests reach the publisher as about one per delay (the far node's pipe producer)", async (t) => {
    const n = await storm(a, b, 'kfd-far');
    t.diagnostic(`${n} key-frame requests at the publisher in ${WINDOW_MS} ms`);
    assert.ok(n >= 1 && n <= THROTTLED_MAX, `${n} requests in ${WINDOW_MS} ms (at most ${THROTTLED_MAX})`);
  });

  test("viewers on the publisher's node: about one per delay (the origin's producer, key_frame_request_delay_ms)", async (t) => {
    const n = await storm(b, b, 'kfd-local');
    t.diagnostic(`${n} key-frame requests at the publisher in ${WINDOW_MS} ms`);
    assert.ok(n >= 1 && n <= THROTTLED_MAX, `${n} requests in ${WINDOW_MS} ms (at most ${THROTTLED_MAX})`);
  });
});
