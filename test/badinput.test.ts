import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { codecs } from '../src/signal/codec.js';
import type { ServerMessage } from '../src/signal/messages.js';
import { bytes, ENCODINGS, eventually, RawClient, startServer, text, type TestServer } from './helpers.js';

const MAX_FRAME = 8192;
const MAX_DATA = 1024;

/** Every bad input gets its typed error, and the room keeps working for everyone else. */
describe('bad input', () => {
  let t: TestServer;
  before(async () => {
    t = await startServer({
      signal: {
        max_frame_bytes: MAX_FRAME,
        max_data_bytes: MAX_DATA,
        rate_limit: { messages_per_s: 20, burst: 20, violations_before_close: 10 },
        max_backpressure_bytes: 256 * 1024,
        resume_window_s: 0,
      },
    });
  });
  after(async () => {
    await t.close();
  });

  /** A bystander in the same room must still get data from a healthy peer afterwards. */
  async function roomStillWorks(room: string): Promise<void> {
    const peer = await t.client(`peer-${Math.random()}`, room);
    const bystander = await t.client(`bystander-${Math.random()}`, room);
    const got = bystander.next('data');
    await peer.sendData(bytes('still here'));
    assert.equal(text((await got)[0].payload), 'still here');
    await peer.leave();
    await bystander.leave();
  }

  const err = (m: ServerMessage): NonNullable<NonNullable<ServerMessage['response']>['error']> => m.response!.error!;

  for (const enc of ENCODINGS) {
    test(`${enc}: malformed bytes get MALFORMED and the connection stays usable`, async () => {
      const c = await RawClient.open(t.url, await t.token(`mal-${enc}`, `bad-${enc}`), enc);
      const garbage = enc === 'json' ? '{"id": 1, "ping": ' : new Uint8Array([0xff, 0xff, 0xff, 0xff, 0x0f, 0xc1]);
      c.send(garbage);
      const e = err(await c.waitFor((m) => !!m.response?.error));
      assert.equal(e.code, 'MALFORMED');
      c.request({ id: 7, ping: { timestamp: 1 } });
      const pong = await c.response(7);
      assert.equal(pong.response!.pong!.timestamp, 1);
      assert.equal(c.closed, null);
      await roomStillWorks(`bad-${enc}`);
    });

    test(`${enc}: wrong types and bad values get INVALID_FIELD naming the field`, async () => {
      const c = await RawClient.open(t.url, await t.token(`types-${enc}`, `bad-${enc}`), enc);
      if (enc !== 'proto') {
        // protobuf's wire types make these unrepresentable; JSON and MessagePack must check.
        c.request({ id: 1, sendData: { payload: bytes('x'), topic: 42 } });
        assert.equal(err(await c.response(1)).field, 'sendData.topic');
        c.request({ id: 2, ping: { timestamp: 'soon' } });
        const e2 = err(await c.response(2));
        assert.equal(e2.code, 'INVALID_FIELD');
        assert.equal(e2.field, 'ping.timestamp');
        c.request({ id: 3, sendData: { payload: bytes('x'), bogus: true } });
        assert.equal(err(await c.response(3)).field, 'sendData.bogus');
        c.send(enc === 'json' ? '[1,2,3]' : (codecs.msgpack.encodeRequest([1, 2] as never) as Uint8Array));
        assert.equal(err(await c.waitFor((m) => !!m.response?.error && m.response.requestId === 0)).code, 'INVALID_FIELD');
      }
      c.request({ id: 4, relay: { identity: '', kind: 'OFFER', sdp: 'x' } });
      const e4 = err(await c.response(4));
      assert.equal(e4.code, 'INVALID_FIELD');
      assert.equal(e4.field, 'relay.identity');
      assert.equal(c.closed, null);
      await roomStillWorks(`bad-${enc}`);
    });

    test(`${enc}: unknown message kinds get UNKNOWN_MESSAGE`, async () => {
      const c = await RawClient.open(t.url, await t.token(`unknown-${enc}`, `bad-${enc}`), enc);
      if (enc === 'proto') {
        // field 99, varint: a kind this server does not know (a newer client, say).
        c.send(new Uint8Array([0x08, 0x05, 0x98, 0x06, 0x01]));
        const e = err(await c.response(5));
        assert.equal(e.code, 'UNKNOWN_MESSAGE');
      } else {
        c.request({ id: 5, teleport: { to: 'mars' } });
        const e = err(await c.response(5));
        assert.equal(e.code, 'UNKNOWN_MESSAGE');
        assert.equal(e.field, 'teleport');
      }
      await roomStillWorks(`bad-${enc}`);
    });

    test(`${enc}: oversized payload gets TOO_LARGE; oversized frame closes with 1009`, async () => {
      const room = `bad-${enc}`;
      const c = await RawClient.open(t.url, await t.token(`big-${enc}`, room), enc);
      c.request({ id: 1, sendData: { payload: new Uint8Array(MAX_DATA + 1) } });
      const e = err(await c.response(1));
      assert.equal(e.code, 'TOO_LARGE');
      assert.equal(e.field, 'sendData.payload');
      c.request({ id: 2, sendData: { payload: new Uint8Array(MAX_FRAME + 100) } });
      const closed = await c.waitClosed();
      assert.equal(closed.code, 1009);
      await roomStillWorks(room);
    });
  }

  test('flooding gets RATE_LIMITED errors, then close 1008; others are unaffected', async () => {
    const room = 'flood';
    const c = await RawClient.open(t.url, await t.token('flooder', room), 'proto');
    for (let i = 0; i < 200; i++) {
      if (c.closed) break;
      c.request({ id: i + 1, ping: {} });
    }
    const limited = await c.waitFor((m) => m.response?.error?.code === 'RATE_LIMITED');
    assert.ok(limited);
    const disc = await c.waitFor((m) => m.disconnect?.reason === 'RATE_LIMITED');
    assert.ok(disc);
    assert.equal((await c.waitClosed()).code, 1008);
    await roomStillWorks(room);
  });
});

describe('slow consumers', () => {
  let t: TestServer;
  before(async () => {
    t = await startServer({
      signal: { max_backpressure_bytes: 256 * 1024, rate_limit: { messages_per_s: 100000, burst: 100000 } },
    });
  });
  after(async () => {
    await t.close();
  });

  test('a consumer that stops reading is dropped with 4005 and counted; memory stays bounded', async () => {
    const room = 'slow';
    const slow = await RawClient.open(t.url, await t.token('slow', room), 'proto');
    const fast = await t.client('fast', room);
    const other = await t.client('other', room);
    let otherGot = 0;
    other.on('data', () => otherGot++);
    (slow.ws as unknown as { _socket: { pause(): void; resume(): void } })._socket.pause();
    const rss0 = await t.metric('auralink_process_resident_memory_bytes');
    const payload = new Uint8Array(900);
    let sent = 0;
    // Bounded: at most 40k messages (36 MB) or until the slow consumer is dropped.
    while (sent < 40_000 && slow.closed === null && (sent % 1000 !== 0 || (await t.health()).connections === 3)) {
      for (let i = 0; i < 10; i++) fast.publishData(payload);
      sent += 10;
      await new Promise((r) => setTimeout(r, 1));
    }
    await eventually(async () => (await t.health()).connections === 2, 5000, 'slow consumer dropped');
    (slow.ws as unknown as { _socket: { resume(): void } })._socket.resume();
    const closed = await slow.waitClosed(5000);
    assert.equal(closed.code, 4005);
    assert.equal(await t.metric('auralink_signal_slow_consumers_dropped_total'), 1);
    // The healthy subscriber got everything that was sent.
    await eventually(() => otherGot === sent, 5000, 'healthy subscriber caught up');
    // Server memory: bounded by the backpressure limit, not by what was sent (36 MB at most).
    const grewMb = ((await t.metric('auralink_process_resident_memory_bytes')) - rss0) / 1e6;
    assert.ok(grewMb < 30, `server RSS grew ${grewMb} MB`);
  });
});
