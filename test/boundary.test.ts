import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { CreateRoomRequest, ListRoomsResponse } from '@livekit/protocol';
import { createToken } from '../src/auth/token.js';
import { unstorableText } from '../src/util/text.js';
import { eventually, KEY, SECRET, startServer, upgradeStatus, type TestServer } from './helpers.js';

const TWIRP = '/twirp/livekit.RoomService';
const admin = (room = 'r'): string =>
  createToken(KEY, SECRET, { identity: 'admin', video: { roomCreate: true, roomList: true, roomAdmin: true, room } });

interface RawReply {
  status: number;
  headers: string;
  body: string;
  /** ms from the request's headers to the reply's first byte. */
  ms: number;
}

/**
 * An HTTP request on a raw socket: `head` is sent, the body (if any) only after `bodyAfterMs`
 * (or never), so a test sees whether the server answered before the body came.
 */
function raw(port: number, head: string, body?: { data: string | Buffer; afterMs: number }): Promise<RawReply> {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1');
    let buf = '';
    const t0 = Date.now();
    let first = 0;
    s.on('data', (d: Buffer) => {
      first ||= Date.now() - t0;
      buf += d.toString();
      const i = buf.indexOf('\r\n\r\n');
      if (i < 0) return;
      const headers = buf.slice(0, i);
      const len = Number(/content-length: *(\d+)/i.exec(headers)?.[1] ?? 0);
      if (buf.length - i - 4 < len) return;
      s.destroy();
      clearTimeout(timer);
      resolve({ status: Number(headers.split(' ')[1]), headers, body: buf.slice(i + 4, i + 4 + len), ms: first });
    });
    s.on('error', reject);
    s.write(head);
    const timer = body ? setTimeout(() => s.write(body.data), body.afterMs) : setTimeout(() => undefined, 0);
  });
}

const post = (method: string, headers: Record<string, string | number>): string =>
  `POST ${TWIRP}/${method} HTTP/1.1\r\nHost: x\r\n${Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n`;

describe('util/text: what PostgreSQL text can hold', () => {
  test('NUL and lone surrogates are refused with a reason; everything else passes', () => {
    assert.match(unstorableText('evil\u0000user')!, /NUL/);
    assert.match(unstorableText('x\ud800')!, /surrogate/);
    assert.match(unstorableText('\udc00y')!, /surrogate/);
    for (const ok of ['', 'plain', 'émoji 😀', 'tab\tnew\nline', '\u0001\u001f', '\uffff']) assert.equal(unstorableText(ok), undefined, ok);
  });
});

describe('boundary: text that cannot be stored is refused before anything is created', () => {
  let t: TestServer;
  before(async () => {
    t = await startServer({ room: { empty_timeout_s: 0.2 } });
  });
  after(async () => {
    await t.close();
  });

  test('a token with NUL in sub, name, metadata, room or an attribute: 401 TOKEN_INVALID_CLAIMS naming the claim', async () => {
    const cases: [string, Parameters<typeof createToken>[2]][] = [
      ['sub', { identity: 'evil\u0000user', video: { roomJoin: true, room: 'r' } }],
      ['name', { identity: 'a', name: 'Ev\u0000il', video: { roomJoin: true, room: 'r' } }],
      ['metadata', { identity: 'a', metadata: '{"x":"\u0000"}', video: { roomJoin: true, room: 'r' } }],
      ['video.room', { identity: 'a', video: { roomJoin: true, room: 'r\u0000' } }],
      ['sub', { identity: 'lone\ud800', video: { roomJoin: true, room: 'r' } }],
    ];
    for (const [claim, opts] of cases) {
      const r = await upgradeStatus(`${t.url}/rtc?access_token=${createToken(KEY, SECRET, opts)}`);
      assert.equal(r.status, 401, claim);
      assert.equal(r.body.code, 'TOKEN_INVALID_CLAIMS', claim);
      assert.match(r.body.message!, new RegExp(`^claim ${claim.replace('.', '\\.')}: contains`), claim);
    }
    // The same for Twirp: the token is refused before the request is looked at.
    const bad = createToken(KEY, SECRET, { identity: 'evil\u0000admin', video: { roomList: true } });
    const res = await fetch(`${t.http}${TWIRP}/ListRooms`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${bad}` }, body: '{}' });
    assert.equal(res.status, 401);
    assert.match(((await res.json()) as { msg: string }).msg, /TOKEN_INVALID_CLAIMS: claim sub: contains NUL/);
    assert.equal((await t.health()).rooms, 0, 'nothing was created');
  });

  test("the issue's repro: the evil token is refused, and 20 clean joins after it are all recorded", async () => {
    const evil = await upgradeStatus(`${t.url}/rtc?access_token=${createToken(KEY, SECRET, { identity: 'evil\u0000user', video: { roomJoin: true, room: 'repro' } })}`);
    assert.equal(evil.status, 401);
    const writesBefore = await t.metric('auralink_db_writes_total');
    const sids: string[] = [];
    for (let i = 0; i < 20; i++) {
      const c = await t.client(`clean-${i}`, 'repro');
      sids.push(c.me.sid);
      await c.leave();
    }
    const history = admin();
    const get = async (path: string): Promise<Record<string, unknown>> =>
      (await (await fetch(`${t.http}${path}`, { headers: { authorization: `Bearer ${history}` } })).json()) as Record<string, unknown>;
    // The room may have closed (empty timeout) and reopened between joins: every call of it.
    const participants = async (): Promise<{ id: string; left_at: string | null }[]> => {
      const calls = (await get('/api/v1/calls?room=repro')).calls as { id: string }[];
      const lists = await Promise.all(calls.map(async (c) => (await get(`/api/v1/calls/${c.id}/participants`)).participants as { id: string; left_at: string | null }[]));
      return lists.flat();
    };
    await eventually(async () => (await participants()).filter((p) => p.left_at).length === 20, 8000, 'all 20 joins and leaves in the history');
    assert.deepEqual((await participants()).map((p) => p.id).sort(), [...sids].sort());
    assert.ok((await t.metric('auralink_db_writes_total')) >= writesBefore + 40);
    assert.equal(await t.metric('auralink_db_dead_letters_total'), 0, 'nothing bad reached the queue');
  });

  test('Twirp: NUL anywhere in a request (nested, repeated, map) is invalid_argument naming the field; nothing is created', async () => {
    const call = async (method: string, body: unknown, type = 'application/json'): Promise<{ status: number; code: string; msg: string }> => {
      const r = await fetch(`${t.http}${TWIRP}/${method}`, {
        method: 'POST',
        headers: { 'content-type': type, authorization: `Bearer ${admin('lobby')}` },
        body: type === 'application/json' ? JSON.stringify(body) : Buffer.from(body as Uint8Array),
      });
      const j = (await r.json()) as { code: string; msg: string };
      return { status: r.status, ...j };
    };
    const cases: [string, unknown, RegExp][] = [
      ['CreateRoom', { name: 'lob\u0000by' }, /^name: contains NUL/],
      ['CreateRoom', { name: 'lobby', metadata: 'm\u0000' }, /^metadata: contains NUL/],
      ['CreateRoom', { name: 'lobby', agents: [{ agentName: 'a', metadata: 'x\u0000' }] }, /^agents\[0\]\.metadata: contains NUL/],
      ['UpdateParticipant', { room: 'lobby', identity: 'x', attributes: { k: 'v\u0000' } }, /^attributes\["k"\]: contains NUL/],
      ['SendData', { room: 'lobby', data: 'eA==', destinationIdentities: ['ok', 'b\u0000d'] }, /^destination_identities\[1\]: contains NUL/],
    ];
    for (const [method, body, msg] of cases) {
      const r = await call(method, body);
      assert.equal(r.status, 400, method);
      assert.equal(r.code, 'invalid_argument', `${method}: ${r.msg}`);
      assert.match(r.msg, msg, method);
    }
    // A lone surrogate has no UTF-8 form: the JSON decoder already refuses it, naming the field.
    const lone = await call('UpdateRoomMetadata', { room: 'lobby', metadata: 'lone \ud83d' });
    assert.equal(lone.status, 400);
    assert.match(lone.msg, /UpdateRoomMetadataRequest\.metadata/);
    const proto = await call('CreateRoom', new CreateRoomRequest({ name: 'lob\u0000by' }).toBinary(), 'application/protobuf');
    assert.equal(proto.code, 'invalid_argument');
    assert.match(proto.msg, /^name: contains NUL/);
    const list = await fetch(`${t.http}${TWIRP}/ListRooms`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${admin()}` }, body: '{}' });
    // (Other tests' rooms may still be inside their empty timeout: only these names count.)
    const made = ListRoomsResponse.fromJson((await list.json()) as never).rooms.filter((r) => r.name.startsWith('lob'));
    assert.deepEqual(made, [], 'no room was created');
  });

  test('signalling: NUL or a lone surrogate in a name, metadata or topic is INVALID_FIELD naming it; nothing changes', async () => {
    const a = await t.client('sig-a', 'sig-text', { grant: { canUpdateOwnMetadata: true, roomAdmin: true } });
    const b = await t.client('sig-b', 'sig-text');
    const seen: string[] = [];
    b.on('participantUpdated', (p) => seen.push(p.metadata));
    b.on('roomUpdated', (r) => seen.push(r.metadata));
    b.on('data', (d) => seen.push(d.topic ?? ''));
    await assert.rejects(a.updateParticipant({ metadata: 'x\u0000y' }), { code: 'INVALID_FIELD', field: 'updateParticipant.metadata' });
    await assert.rejects(a.updateParticipant({ name: 'half \ud800' }), { code: 'INVALID_FIELD', field: 'updateParticipant.name' });
    await assert.rejects(a.updateRoomMetadata('m\u0000'), { code: 'INVALID_FIELD', field: 'updateRoomMetadata.metadata' });
    await assert.rejects(a.sendData(new Uint8Array([1]), { topic: 't\u0000' }), { code: 'INVALID_FIELD', field: 'sendData.topic' });
    await a.updateParticipant({ metadata: 'clean' });
    await eventually(() => seen.includes('clean'), 3000, 'the clean update');
    assert.deepEqual(seen, ['clean'], 'only the clean update reached the room');
    assert.equal((await a.listParticipants()).find((p) => p.identity === 'sig-a')?.metadata, 'clean');
    await a.leave();
    await b.leave();
  });
});

describe('Twirp reads no body before auth, content type and limits', () => {
  let t: TestServer;
  let port: number;
  before(async () => {
    t = await startServer({ api: { max_inflight_body_bytes: 200_000 } });
    port = Number(new URL(t.http).port);
  });
  after(async () => {
    await t.close();
  });

  test('an unauthenticated upload gets 401 at once, without the server waiting for its body', async () => {
    const r = await raw(port, post('SendData', { 'content-type': 'application/json', 'content-length': 150_000 }));
    assert.equal(r.status, 401);
    assert.match(r.body, /"code":"unauthenticated"/);
    const bearer = await raw(port, post('SendData', { 'content-type': 'application/json', 'content-length': 150_000, authorization: 'Bearer nope' }));
    assert.equal(bearer.status, 401);
    assert.match(bearer.body, /TOKEN_MALFORMED/);
  });

  test('only application/json (optionally charset=utf-8) and application/protobuf are taken', async () => {
    const auth = `Bearer ${admin()}`;
    for (const type of ['application/jsonx', 'application/json; charset=utf-16', 'application/json; charset=utf-8; x=y', 'application/protobufx', 'application/protobuf; charset=utf-8', 'text/plain', '']) {
      const r = await raw(port, post('ListRooms', { ...(type ? { 'content-type': type } : {}), 'content-length': 2, authorization: auth }));
      assert.equal(r.status, 404, type);
      assert.match(r.body, /"code":"bad_route".*unexpected Content-Type/, type);
    }
    for (const type of ['application/json', 'application/json;charset=UTF-8', 'Application/JSON; Charset="utf-8"']) {
      const r = await fetch(`${t.http}${TWIRP}/ListRooms`, { method: 'POST', headers: { 'content-type': type, authorization: auth }, body: '{}' });
      assert.equal(r.status, 200, type);
    }
    const bin = await fetch(`${t.http}${TWIRP}/ListRooms`, { method: 'POST', headers: { 'content-type': 'application/protobuf', authorization: auth }, body: new Uint8Array() });
    assert.equal(bin.status, 200);
  });

  test('each method has its own body limit: refused at the Content-Length, or when a chunked body passes it', async () => {
    const auth = `Bearer ${admin()}`;
    const early = await raw(port, post('ListParticipants', { 'content-type': 'application/json', 'content-length': 20_000, authorization: auth }));
    assert.equal(early.status, 400);
    assert.match(early.body, /"code":"invalid_argument".*ListParticipants's limit of 8192/);
    const chunk = `{"room":"${'r'.repeat(9000)}"}`;
    const chunked = await raw(port, post('ListParticipants', { 'content-type': 'application/json', 'transfer-encoding': 'chunked', authorization: auth }), {
      data: `${chunk.length.toString(16)}\r\n${chunk}\r\n0\r\n\r\n`,
      afterMs: 0,
    });
    assert.equal(chunked.status, 400);
    assert.match(chunked.body, /ListParticipants: body over 8192 bytes/);
    // SendData may carry a whole data payload (16 KiB base64): more than ListParticipants may.
    const data = Buffer.alloc(15_000, 7).toString('base64');
    const send = await fetch(`${t.http}${TWIRP}/SendData`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: auth },
      body: JSON.stringify({ room: 'r', data }),
    });
    assert.equal(((await send.json()) as { code: string }).code, 'not_found', 'read and decoded: the room does not exist');
  });

  test('bodies in flight share a budget: over it 503 unavailable with Retry-After; freed when the holder is answered', async () => {
    const auth = `Bearer ${admin()}`;
    const head = (n: number): string => post('SendData', { 'content-type': 'application/json', 'content-length': n, authorization: auth });
    // Holds 150 KB of the 200 KB budget: its body comes only after 1.5 s.
    const sized = (n: number, c: string): string => JSON.stringify({ room: 'r', topic: c.repeat(n - JSON.stringify({ room: 'r', topic: '' }).length) });
    const body = sized(150_000, 'x');
    assert.equal(Buffer.byteLength(body), 150_000);
    const holder = raw(port, head(150_000), { data: body, afterMs: 1500 });
    await new Promise((r) => setTimeout(r, 300));
    const over = await raw(port, head(100_000));
    assert.equal(over.status, 503);
    assert.match(over.body, /"code":"unavailable"/);
    assert.match(over.headers, /retry-after: 1/i);
    assert.ok(over.ms < 1000, 'answered at once, not after the holder');
    assert.equal((await holder).status, 404, 'the holder was read and handled (no such room)');
    const after = await raw(port, head(100_000), { data: sized(100_000, 'y'), afterMs: 0 });
    assert.equal(after.status, 404, 'the budget was given back');
    assert.equal(await t.metric('auralink_signal_errors_total', { code: 'twirp_unavailable' }), 1);
  });
});
