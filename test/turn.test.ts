import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { TurnCredentials } from '../src/turn/credentials.js';
import { PeerFilter, DEFAULT_DENIED_PEER_CIDRS } from '../src/turn/peerFilter.js';
import { eventually, startServer, type TestServer } from './helpers.js';

const TURN_SECRET = 'turn-shared-secret-for-tests';

describe('TURN REST credentials', () => {
  test('username is expiry:identity and the password is base64(HMAC-SHA1(secret, username))', () => {
    const now = 1_700_000_000_000;
    const c = new TurnCredentials(TURN_SECRET, 3600, () => now);
    const { username, credential } = c.issue('alice');
    assert.equal(username, `${now / 1000 + 3600}:alice`);
    assert.equal(credential, createHmac('sha1', TURN_SECRET).update(username).digest('base64'));
    assert.ok(c.verify(username, credential));
  });

  test('expired, forged, malformed and foreign-secret credentials are refused', () => {
    let now = 1_700_000_000_000;
    const c = new TurnCredentials(TURN_SECRET, 60, () => now);
    const { username, credential } = c.issue('alice');
    assert.equal(c.verify(username, 'AAAA' + credential.slice(4)), false, 'forged password');
    assert.equal(c.verify(username.replace('alice', 'mallory'), credential), false, 'identity swapped');
    const other = new TurnCredentials('another-secret', 60, () => now).issue('alice');
    assert.equal(c.verify(other.username, other.credential), false, 'signed with another secret');
    for (const bad of ['alice', ':alice', 'x:alice', '-5:alice', '']) assert.equal(c.passwordFor(bad), undefined, bad);
    assert.equal(c.msUntilExpiry(username), 60_000);
    for (const bad of ['alice', 'x:alice', '']) assert.equal(c.msUntilExpiry(bad), 0, bad);
    now += 61_000;
    assert.equal(c.verify(username, credential), false, 'expired');
    assert.equal(c.msUntilExpiry(username), 0);
  });
});

describe('TURN peer filter', () => {
  const f = new PeerFilter([], DEFAULT_DENIED_PEER_CIDRS);
  test('loopback, private, link-local, CGNAT, multicast and ULA peers are denied by default', () => {
    for (const ip of ['127.0.0.1', '10.1.2.3', '172.16.0.9', '192.168.1.1', '169.254.169.254', '100.64.0.1', '224.0.0.251', '0.0.0.0', '::1', 'fd00::1', 'fe80::1', '::ffff:127.0.0.1']) {
      assert.equal(f.permits(ip), false, ip);
    }
  });
  test('public peers are allowed, and allowed CIDRs override denied ones', () => {
    for (const ip of ['8.8.8.8', '203.0.113.7', '2001:db8::1']) assert.equal(f.permits(ip), true, ip);
    const g = new PeerFilter(['10.20.0.0/16'], DEFAULT_DENIED_PEER_CIDRS);
    assert.equal(g.permits('10.20.3.4'), true);
    assert.equal(g.permits('10.21.3.4'), false);
    assert.equal(g.permits('not-an-ip'), false);
  });
});

interface Run {
  code: number | null;
  out: string;
}
function run(cmd: string, args: string[], timeoutMs = 20_000): Promise<Run> {
  return new Promise((resolve) => {
    const p = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const timer = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
    p.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, out });
    });
  });
}

/** coturn's test client: allocates on `turnPort`, relays `n` messages to a peer and back. */
function uclient(turnPort: number, peerPort: number, username: string, password: string, n = 20): Promise<Run> {
  // -c: no RTCP allocation pair (EVEN-PORT with the R bit + RESERVATION-TOKEN, unsupported).
  return run('turnutils_uclient', ['-c', '-u', username, '-w', password, '-p', String(turnPort), '-e', '127.0.0.1', '-r', String(peerPort), '-n', String(n), '-m', '1', '-l', '120', '127.0.0.1']);
}

/** The final "start_mclient: tot_send_msgs=N, tot_recv_msgs=M" line (messages echoed back). */
function relayed(out: string): { sent: number; received: number } {
  const all = [...out.matchAll(/start_mclient: tot_send_msgs=(\d+), tot_recv_msgs=(\d+)/g)];
  const last = all.at(-1);
  return { sent: Number(last?.[1] ?? 0), received: Number(last?.[2] ?? 0) };
}

describe('embedded TURN server with a real TURN client (coturn turnutils_uclient)', () => {
  let t: TestServer;
  let strict: TestServer;
  let peer: ReturnType<typeof spawn>;
  let peerPort: number;
  const creds = new TurnCredentials(TURN_SECRET, 600);

  before(async () => {
    // Loopback peers allowed here (the peer runs on this machine); `strict` keeps the defaults.
    t = await startServer({ turn: { secret: TURN_SECRET, host: '127.0.0.1', allowed_peer_cidrs: ['127.0.0.0/8'] } });
    strict = await startServer({ turn: { secret: TURN_SECRET, host: '127.0.0.1' } });
    peerPort = t.config.turn.relay_max_port + 2000;
    peer = spawn('turnutils_peer', ['-L', '127.0.0.1', '-p', String(peerPort)], { stdio: 'ignore' });
  });
  after(async () => {
    peer?.kill('SIGKILL');
    await t?.close();
    await strict?.close();
  });

  test('allocates and relays both ways with credentials from the shared secret', async () => {
    const refusedBefore = await t.metric('auralink_turn_refused_total', { reason: 'credentials' });
    const { username, credential } = creds.issue('uclient');
    const r = await uclient(t.config.turn.port, peerPort, username, credential);
    const { sent, received } = relayed(r.out);
    assert.equal(r.code, 0, r.out.slice(-2000));
    assert.equal(sent, 20, r.out.slice(-2000));
    assert.equal(received, 20, `every message came back through the relay\n${r.out.slice(-2000)}`);
    // uclient makes two allocations: one it abandons (it expires later) and the relaying one,
    // which it ends with Refresh lifetime 0: that one is gone at once.
    await eventually(async () => (await t.metric('auralink_turn_allocations')) === 1, 5000, 'the released allocation removed');
    // Each allocation began with the long-term challenge (401 with a nonce): not a refusal.
    assert.equal(await t.metric('auralink_turn_refused_total', { reason: 'credentials' }), refusedBefore);
  });

  test('forged and expired credentials are refused (401), nothing relayed', async () => {
    const refusals = (): Promise<number> => t.metric('auralink_turn_refused_total', { reason: 'credentials' });
    const before = await refusals();
    const { username } = creds.issue('uclient');
    const forged = await uclient(t.config.turn.port, peerPort, username, 'bm90LXRoZS1wYXNzd29yZA==', 3);
    assert.notEqual(forged.code, 0);
    assert.equal(relayed(forged.out).received, 0);
    // A well-formed, unexpired username with the wrong password is an operator-visible refusal.
    const afterForged = await refusals();
    assert.ok(afterForged > before, `forged password counted (${before} -> ${afterForged})`);
    const expiredName = `${Math.floor(Date.now() / 1000) - 10}:uclient`;
    const expired = await uclient(t.config.turn.port, peerPort, expiredName, creds.password(expiredName), 3);
    assert.notEqual(expired.code, 0);
    assert.equal(relayed(expired.out).received, 0);
    assert.ok((await refusals()) > afterForged, 'expired username counted');
  });

  test('relaying to a loopback peer is refused by default (403)', async () => {
    const { username, credential } = creds.issue('uclient');
    const r = await uclient(strict.config.turn.port, peerPort, username, credential, 3);
    assert.notEqual(r.code, 0);
    assert.equal(relayed(r.out).received, 0);
    assert.ok((await strict.metric('auralink_turn_refused_total', { reason: 'peer' })) >= 1);
  });

  test('every join response carries TURN iceServers with fresh, valid credentials', async () => {
    const c = await t.client('alice');
    const ice = c.join.iceServers ?? [];
    assert.equal(ice.length, 1);
    assert.deepEqual(ice[0]!.urls, [`turn:127.0.0.1:${t.config.turn.port}?transport=udp`]);
    const [expiry, identity] = ice[0]!.username!.split(':');
    assert.equal(identity, 'alice');
    assert.ok(Number(expiry) > Date.now() / 1000 + 3600, 'valid for the configured TTL');
    assert.ok(creds.verify(ice[0]!.username!, ice[0]!.credential!));
    c.close();
  });
});

describe('external TURN (coturn) mode', () => {
  let t: TestServer;
  before(async () => {
    t = await startServer({ turn: { mode: 'external', secret: TURN_SECRET, urls: ['turn:turn.example.com:3478?transport=udp', 'turns:turn.example.com:5349?transport=tcp'] } });
  });
  after(async () => t?.close());

  test('join responses carry the configured URLs with credentials coturn accepts', async () => {
    const c = await t.client('bob');
    const ice = c.join.iceServers!;
    assert.deepEqual(ice[0]!.urls, ['turn:turn.example.com:3478?transport=udp', 'turns:turn.example.com:5349?transport=tcp']);
    assert.equal(ice[0]!.credential, createHmac('sha1', TURN_SECRET).update(ice[0]!.username!).digest('base64'));
    assert.equal(((await t.health()) as unknown as { turn: { mode: string } }).turn.mode, 'external');
    c.close();
  });
});
