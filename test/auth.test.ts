import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { AccessToken } from 'livekit-server-sdk';
import WebSocket from 'ws';
import { createToken } from '../src/auth/token.js';
import { SignalClient, type WebSocketCtor } from '../src/client/signalClient.js';
import { KEY, SECRET, startServer, upgradeStatus, type TestServer } from './helpers.js';

const b64 = (o: unknown): string => Buffer.from(JSON.stringify(o)).toString('base64url');
function handMade(header: object, payload: unknown, secret = SECRET): string {
  const body = `${b64(header)}.${b64(payload)}`;
  return `${body}.${createHmac('sha256', secret).update(body).digest('base64url')}`;
}
const now = (): number => Math.floor(Date.now() / 1000);

describe('access tokens at upgrade', () => {
  let t: TestServer;
  before(async () => {
    t = await startServer();
  });
  after(async () => {
    await t.close();
  });

  test("a token minted by livekit-server-sdk's AccessToken joins unchanged, grants and all", async () => {
    const at = new AccessToken(KEY, SECRET, { identity: 'lk-user', name: 'From LiveKit SDK', metadata: '{"team":"x"}' });
    at.addGrant({ roomJoin: true, room: 'lk-room', canPublishData: false, canUpdateOwnMetadata: true });
    const jwt = await at.toJwt();
    const c = await SignalClient.connect(t.url, jwt, { WebSocket: WebSocket as unknown as WebSocketCtor, autoPing: false });
    assert.equal(c.me.identity, 'lk-user');
    assert.equal(c.me.name, 'From LiveKit SDK');
    assert.equal(c.me.metadata, '{"team":"x"}');
    assert.equal(c.join.room.name, 'lk-room');
    assert.equal(c.me.permission.canPublishData, false);
    assert.equal(c.me.permission.canUpdateMetadata, true);
    await assert.rejects(c.sendData(new Uint8Array([1])), { code: 'PERMISSION_DENIED' });
    await c.leave();
  });

  test('the token may come in an Authorization header', async () => {
    const r = await upgradeStatus(`${t.url}/rtc`, { Authorization: `Bearer ${createToken(KEY, SECRET, { identity: 'hdr', video: { roomJoin: true, room: 'h' } })}` });
    assert.equal(r.status, 101);
  });

  const cases: [string, () => string, string][] = [
    ['missing token', () => '', 'TOKEN_MISSING'],
    ['garbage', () => 'not.a.jwt', 'TOKEN_MALFORMED'],
    // Found by test/fuzz.test.ts: these ended the upgrade with no answer at all (socket hang up).
    ['a JWT header over a payload that is not JSON', () => `${b64({ alg: 'HS256', typ: 'JWT' })}.${Buffer.from('{"iss":').toString('base64url')}.sig`, 'TOKEN_MALFORMED'],
    ['a payload of null', () => handMade({ alg: 'HS256', typ: 'JWT' }, null), 'TOKEN_MALFORMED'],
    ['a payload that is an array', () => handMade({ alg: 'HS256', typ: 'JWT' }, [KEY]), 'TOKEN_MALFORMED'],
    ['wrong secret', () => createToken(KEY, 'another-secret-that-is-32-characters-long!!', { identity: 'x', video: { roomJoin: true, room: 'r' } }), 'TOKEN_BAD_SIGNATURE'],
    ['unknown API key', () => createToken('nokey', SECRET, { identity: 'x', video: { roomJoin: true, room: 'r' } }), 'TOKEN_UNKNOWN_KEY'],
    ['expired', () => handMade({ alg: 'HS256', typ: 'JWT' }, { iss: KEY, sub: 'x', exp: now() - 3600, video: { roomJoin: true, room: 'r' } }), 'TOKEN_EXPIRED'],
    ['not yet valid', () => handMade({ alg: 'HS256', typ: 'JWT' }, { iss: KEY, sub: 'x', nbf: now() + 3600, exp: now() + 7200, video: { roomJoin: true, room: 'r' } }), 'TOKEN_NOT_YET_VALID'],
    ['alg none (unsigned)', () => `${b64({ alg: 'none', typ: 'JWT' })}.${b64({ iss: KEY, sub: 'x', exp: now() + 60, video: { roomJoin: true, room: 'r' } })}.`, 'TOKEN_ALG_NOT_ALLOWED'],
    ['HS512', () => handMade({ alg: 'HS512', typ: 'JWT' }, { iss: KEY, sub: 'x', exp: now() + 60, video: { roomJoin: true, room: 'r' } }), 'TOKEN_ALG_NOT_ALLOWED'],
    ['no roomJoin grant', () => createToken(KEY, SECRET, { identity: 'x', video: { room: 'r', roomList: true } }), 'TOKEN_NO_JOIN_GRANT'],
    ['no identity', () => createToken(KEY, SECRET, { video: { roomJoin: true, room: 'r' } }), 'TOKEN_INVALID_CLAIMS'],
    ['grant of the wrong type', () => handMade({ alg: 'HS256' }, { iss: KEY, sub: 'x', exp: now() + 60, video: { roomJoin: 'yes', room: 'r' } }), 'TOKEN_INVALID_CLAIMS'],
  ];
  for (const [name, make, code] of cases) {
    test(`${name}: HTTP 401 ${code} before upgrade`, async () => {
      const tok = make();
      const r = await upgradeStatus(`${t.url}/rtc${tok ? `?access_token=${tok}` : ''}`);
      assert.equal(r.status, 401);
      assert.equal(r.body.code, code);
      assert.ok(r.body.message && r.body.message.length > 0);
    });
  }

  test('a token for another room than the one asked for: 401 TOKEN_WRONG_ROOM', async () => {
    const tok = createToken(KEY, SECRET, { identity: 'x', video: { roomJoin: true, room: 'mine' } });
    const r = await upgradeStatus(`${t.url}/rtc?access_token=${tok}&room=theirs`);
    assert.equal(r.status, 401);
    assert.equal(r.body.code, 'TOKEN_WRONG_ROOM');
  });

  test('an unsupported subprotocol: 400 before upgrade', async () => {
    const tok = createToken(KEY, SECRET, { identity: 'x', video: { roomJoin: true, room: 'r' } });
    const r = await upgradeStatus(`${t.url}/rtc?access_token=${tok}`, {}, 'chat.v9');
    assert.equal(r.status, 400);
    assert.equal(r.body.code, 'UNSUPPORTED_SUBPROTOCOL');
  });

  test('refusals are counted by code in /metrics, and nothing was joined', async () => {
    assert.ok((await t.metric('auralink_signal_errors_total', { code: 'TOKEN_EXPIRED' })) >= 1);
    assert.ok((await t.metric('auralink_signal_errors_total', { code: 'TOKEN_ALG_NOT_ALLOWED' })) >= 2);
    const h = await t.health();
    assert.equal(h.connections, 0);
  });
});

describe('per-IP connection rate', () => {
  let t: TestServer;
  before(async () => {
    t = await startServer({ signal: { ip_connect_limit: { per_s: 1, burst: 3 } } });
  });
  after(async () => {
    await t.close();
  });

  test('past the burst, upgrades from one address get 429; another address is not affected', async () => {
    const tok = createToken(KEY, SECRET, { identity: 'x', video: { roomJoin: true, room: 'r' } });
    const statuses: number[] = [];
    for (let i = 0; i < 5; i++) statuses.push((await upgradeStatus(`${t.url}/rtc?access_token=${tok}`)).status);
    assert.deepEqual(statuses.slice(0, 3), [101, 101, 101]);
    assert.equal(statuses[4], 429);
    // 127.0.0.2 is another source address on loopback.
    const other = await new Promise<number>((resolve, reject) => {
      const ws = new WebSocket(`${t.url}/rtc?access_token=${tok}`, { localAddress: '127.0.0.2' });
      ws.on('open', () => {
        ws.close();
        resolve(101);
      });
      ws.on('unexpected-response', (_q, res) => resolve(res.statusCode ?? 0));
      ws.on('error', reject);
    });
    assert.equal(other, 101);
  });
});
