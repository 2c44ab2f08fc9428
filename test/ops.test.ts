import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'node:net';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, test } from 'node:test';
import { TokenVerifier } from '../src/auth/token.js';
import { bytes, eventually, KEY, SECRET, startServer, upgradeStatus } from './helpers.js';

const CLI = fileURLToPath(new URL('../src/cli.js', import.meta.url));
const run = promisify(execFile);

describe('health, readiness, metrics', () => {
  test('endpoints answer; metrics count connections, messages by type and encoding, event-loop lag', async () => {
    const t = await startServer();
    try {
      assert.equal((await fetch(`${t.http}/liveness`)).status, 200);
      assert.equal((await fetch(`${t.http}/readiness`)).status, 200);
      const h = await t.health();
      assert.equal(h.draining, false);
      const nf = await fetch(`${t.http}/nope`);
      assert.equal(nf.status, 404);
      assert.equal(((await nf.json()) as { code: string }).code, 'NOT_FOUND');

      const a = await t.client('a', 'm', { encoding: 'json' });
      const b = await t.client('b', 'm', { encoding: 'msgpack' });
      await a.sendData(bytes('x'));
      await a.ping();
      assert.equal(await t.metric('auralink_signal_connections', { encoding: 'json' }), 1);
      assert.equal(await t.metric('auralink_signal_connections', { encoding: 'msgpack' }), 1);
      assert.equal(await t.metric('auralink_signal_messages_in_total', { type: 'sendData', encoding: 'json' }), 1);
      assert.equal(await t.metric('auralink_signal_messages_in_total', { type: 'ping', encoding: 'json' }), 1);
      // The data broadcast was encoded once for b's encoding.
      assert.equal(await t.metric('auralink_signal_messages_out_total', { type: 'data', encoding: 'msgpack' }), 1);
      assert.equal(await t.metric('auralink_participants'), 2);
      assert.equal(await t.metric('auralink_rooms'), 1);
      const text = await (await fetch(`${t.http}/metrics`)).text();
      assert.match(text, /auralink_nodejs_eventloop_lag_seconds \d/);
      await a.leave();
      await b.leave();
      await eventually(async () => (await t.health()).participants === 0);
    } finally {
      await t.close();
    }
  });
});

/**
 * HEAD on a raw socket; once its headers are in, GET /liveness on the same socket: whatever
 * came between the two is a body the HEAD response should not have had.
 */
function headThenGet(port: number, path: string): Promise<{ head: string; rest: string }> {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1');
    let buf = '';
    let head = '';
    s.on('data', (d: Buffer) => {
      buf += d.toString();
      if (!head) {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        head = buf.slice(0, end + 4);
        buf = buf.slice(end + 4);
        // A body, if one was wrongly sent, arrives with or right after the headers.
        setTimeout(() => s.write('GET /liveness HTTP/1.1\r\nHost: x\r\n\r\n'), 100);
        return;
      }
      if (buf.endsWith('{"status":"alive"}')) {
        s.destroy();
        resolve({ head, rest: buf });
      }
    });
    s.on('error', reject);
    s.write(`HEAD ${path} HTTP/1.1\r\nHost: x\r\n\r\n`);
  });
}

describe('HEAD', () => {
  test('every route answers HEAD like GET: same status and Content-Length, no body', async () => {
    const t = await startServer();
    try {
      const port = Number(new URL(t.http).port);
      for (const path of ['/health', '/readiness', '/metrics', '/', '/nope', '/api/v1/calls', '/twirp/livekit.RoomService/ListRooms']) {
        const get = await fetch(`${t.http}${path}`);
        const body = Buffer.from(await get.arrayBuffer());
        const { head, rest } = await headThenGet(port, path);
        assert.equal(Number(head.split(' ')[1]), get.status, path);
        assert.match(rest, /^HTTP\/1\.1 200 OK/, `${path}: no body between the HEAD response and the next one`);
        const length = Number(/content-length: (\d+)/i.exec(head)?.[1]);
        // /health and /metrics change between two calls, Twirp's bad_route names the verb; the
        // rest are byte for byte the same.
        if (path === '/health' || path === '/metrics' || path.startsWith('/twirp/')) assert.ok(length > 0, path);
        else assert.equal(length, body.length, path);
        assert.equal(head.match(/content-length/gi)?.length, 1, `${path}: one Content-Length`);
      }
    } finally {
      await t.close();
    }
  });
});

describe('graceful drain on SIGTERM', () => {
  test('refuses new joins, tells sessions to reconnect elsewhere, exits 0 once they are gone', async () => {
    const t = await startServer({ drain: { timeout_s: 20 } });
    const a = await t.client('a', 'd', { autoResume: false });
    const drained = a.next('drain');
    const t0 = Date.now();
    const exited = t.stop();
    const [d] = await drained;
    assert.equal(d.deadlineMs, 20_000);
    assert.equal((await fetch(`${t.http}/readiness`)).status, 503);
    const refused = await upgradeStatus(`${t.url}/rtc?access_token=${t.token('late', 'd')}`);
    assert.equal(refused.status, 503);
    assert.equal(refused.body.code, 'DRAINING');
    await a.leave();
    assert.equal(await exited, 0);
    assert.ok(Date.now() - t0 < 10_000, 'exited when empty, not at the deadline');
  });

  test('sessions still there at the deadline are closed with 1012 and told to reconnect', async () => {
    const t = await startServer({ drain: { timeout_s: 1 } });
    const a = await t.client('stubborn', 'd', { autoResume: false });
    const told = a.next('disconnect', 5000);
    const closed = a.next('closed', 5000);
    const exited = t.stop();
    const [d] = await told;
    assert.equal(d.reason, 'SERVER_SHUTDOWN');
    assert.equal(d.reconnect, true);
    assert.equal((await closed)[0].code, 1012);
    assert.equal(await exited, 0);
  });
});

describe('SIGTERM while starting', () => {
  test('a signal that comes before the server listens is acted on once it has started: drained, closed, exit 0', async () => {
    const base = 20000 + Math.floor(Math.random() * 300) * 40;
    const dir = mkdtempSync(join(tmpdir(), 'auralink-early-'));
    const file = join(dir, 'config.json');
    writeFileSync(file, JSON.stringify({
      keys: { [KEY]: SECRET }, port: 0, bind_address: '127.0.0.1',
      sfu: { workers: 1, webrtc_port: base, rtc_min_port: base + 4, rtc_max_port: base + 19 },
      turn: { port: base + 20, relay_min_port: base + 21, relay_max_port: base + 39 },
      database: { data_dir: join(dir, 'pglite') },
    }));
    const proc = spawn(process.execPath, [fileURLToPath(new URL('../src/cli.js', import.meta.url)), 'serve', '--config', file], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    proc.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const exit = new Promise<{ code: number | null; signal: string | null }>((r) => proc.once('exit', (code, signal) => r({ code, signal })));
    // Its first media worker is up: it is starting (the embedded database takes seconds more).
    await eventually(() => out.includes('"msg":"mediasoup worker started"'), 20_000, 'starting');
    assert.ok(!out.includes('"msg":"listening"'), 'signalled before listening');
    proc.kill('SIGTERM');
    const { code, signal } = await exit;
    assert.deepEqual({ code, signal }, { code: 0, signal: null }, out.slice(-2000));
    assert.match(out, /"msg":"stopped"/);
  });
});

describe('config and CLI', () => {
  test('an invalid value exits non-zero naming the key and the problem', async () => {
    const r = await run(process.execPath, [CLI, 'serve'], { env: { PATH: process.env.PATH, AURALINK_SIGNAL__MAX_FRAME_BYTES: 'lots' } }).then(
      () => ({ code: 0, stderr: '' }),
      (e: { code: number; stderr: string }) => e,
    );
    assert.equal(r.code, 2);
    assert.match(r.stderr, /signal\.max_frame_bytes: .*number/);
  });

  test('a short API secret is refused at start', async () => {
    const r = await run(process.execPath, [CLI, 'serve'], { env: { PATH: process.env.PATH, AURALINK_KEYS: '{k: short}' } }).then(
      () => ({ code: 0, stderr: '' }),
      (e: { code: number; stderr: string }) => e,
    );
    assert.equal(r.code, 2);
    assert.match(r.stderr, /keys\.k: API secrets must be at least 32 characters/);
  });

  test('environment overrides the file; flags override the environment', async () => {
    const t = await startServer({ room: { max_participants: 1 } }, { AURALINK_ROOM__MAX_PARTICIPANTS: '2' });
    try {
      await t.client('one', 'cap');
      await t.client('two', 'cap'); // env raised the file's 1 to 2
      const third = await upgradeStatus(`${t.url}/rtc?access_token=${t.token('three', 'cap')}`);
      assert.equal(third.status, 403);
      assert.equal(third.body.code, 'ROOM_FULL');
    } finally {
      await t.close();
    }
  });

  test('token create mints a verifiable LiveKit-format token with the asked grants', async () => {
    const secret = 'cli-secret-that-is-at-least-32-characters';
    const { stdout } = await run(process.execPath, [
      CLI, 'token', 'create', '--room', 'r1', '--identity', 'ann', '--name', 'Ann',
      '--grants', 'roomAdmin,canPublish=false', '--api-key', 'k1', '--api-secret', secret,
    ]);
    const g = new TokenVerifier({ k1: secret }).verifyJoin(stdout.trim(), 'r1');
    assert.equal(g.identity, 'ann');
    assert.equal(g.claims.name, 'Ann');
    assert.equal(g.video.roomAdmin, true);
    assert.equal(g.video.canPublish, false);
    const bad = await run(process.execPath, [CLI, 'token', 'create', '--room', 'r', '--identity', 'i', '--grants', 'fly', '--dev']).then(
      () => ({ code: 0, stderr: '' }),
      (e: { code: number; stderr: string }) => e,
    );
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /unknown grant fly/);
  });

  test('--help lists the commands', async () => {
    const { stdout } = await run(process.execPath, [CLI, '--help']);
    assert.match(stdout, /serve/);
    assert.match(stdout, /token/);
  });
});
