import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { find, joinDemo, launch, mediaState, remoteStats } from './chromium.js';
import { eventually, sleep, startServer, type TestServer } from './helpers.js';

// The TURN server a call goes through restarts (coturn upgraded, crashed, its host replaced):
// every allocation is gone, and so is every relayed path. Pages restricted to relay candidates
// must get their media back by themselves, through new allocations (the SDK's ICE restart).

const SECRET = 'ice-restart-secret';
// Below the test servers' media blocks (20000+) and the kernel's ephemeral range.
const base = 15000 + Math.floor(Math.random() * 40) * 100;
const TURN_PORT = base;

function udpBound(port: number): boolean {
  const hex = `:${port.toString(16).toUpperCase().padStart(4, '0')} `;
  return readFileSync('/proc/net/udp', 'latin1').includes(hex);
}

async function startCoturn(): Promise<ChildProcess> {
  // -n: no config file; loopback peers allowed (the SFU is on 127.0.0.1 in tests).
  const p = spawn(
    'turnserver',
    ['-n', '--no-tls', '--no-dtls', '--no-cli', '-L', '127.0.0.1', '-E', '127.0.0.1', '-p', String(TURN_PORT), '--min-port', String(base + 1), '--max-port', String(base + 99),
      '--use-auth-secret', '--static-auth-secret', SECRET, '--realm', 'auralink', '--allow-loopback-peers', '--no-stdout-log', '--log-file', '/dev/null'],
    { stdio: 'ignore' },
  );
  await eventually(() => udpBound(TURN_PORT), 10_000, 'coturn listening');
  return p;
}

async function stopCoturn(p: ChildProcess | undefined): Promise<void> {
  if (!p || p.exitCode !== null || p.signalCode !== null) return;
  const gone = new Promise((r) => p.once('exit', r));
  p.kill('SIGKILL');
  await gone;
}

type RoomHandle = { auralinkRoom: import('../src/client/room.js').Room };

describe('real browser: the TURN server restarts mid-call', () => {
  let t: TestServer;
  let browser: Browser;
  let coturn: ChildProcess | undefined;
  let pages: Record<string, Page> = {};

  before(async () => {
    coturn = await startCoturn();
    t = await startServer({ development: true, turn: { mode: 'external', secret: SECRET, urls: [`turn:127.0.0.1:${TURN_PORT}?transport=udp`] } });
    browser = await launch();
    // relay=1: iceTransportPolicy 'relay', TURN or nothing.
    pages = await joinDemo(browser, t, 'turn-restart', ['erin', 'frank'], 'relay=1');
  });

  after(async () => {
    await browser?.close();
    await t?.close();
    await stopCoturn(coturn);
  });

  const flowing = async (me: string, other: string, since: { v: number; a: number }): Promise<boolean> => {
    const s = await remoteStats(pages[me]!);
    return (find(s, other, 'camera')?.framesDecoded ?? 0) > since.v + 10 && (find(s, other, 'microphone')?.packetsReceived ?? 0) > since.a + 10;
  };
  const counts = async (me: string, other: string): Promise<{ v: number; a: number }> => {
    const s = await remoteStats(pages[me]!);
    return { v: find(s, other, 'camera')?.framesDecoded ?? 0, a: find(s, other, 'microphone')?.packetsReceived ?? 0 };
  };
  const pairs = [
    ['erin', 'frank'],
    ['frank', 'erin'],
  ] as const;

  test('media stops with the relay, then comes back through new allocations without user action', async () => {
    for (const [me, other] of pairs) {
      await eventually(() => flowing(me, other, { v: 0, a: 0 }), 30_000, `${me} receiving ${other} through coturn`);
      const types = await pages[me]!.evaluate(() => (window as unknown as RoomHandle).auralinkRoom.connectionTypes());
      assert.deepEqual(types, { producing: 'relay', consuming: 'relay' }, `${me}'s transports are relayed`);
    }
    await stopCoturn(coturn);
    coturn = await startCoturn();
    // The old allocations are gone with the old process: nothing gets through them any more.
    await sleep(1000);
    const stalled = await counts('erin', 'frank');
    await sleep(1000);
    assert.ok((await counts('erin', 'frank')).v - stalled.v < 5, 'no video through the lost relay');
    for (const [me, other] of pairs) {
      const from = await counts(me, other);
      await eventually(() => flowing(me, other, from), 30_000, `${me} receiving ${other} again`).catch(async (e: Error) => {
        throw new Error(`${e.message}; ${me}: ${await mediaState(pages[me]!)}; ${other}: ${await mediaState(pages[other]!)}`);
      });
      const types = await pages[me]!.evaluate(() => (window as unknown as RoomHandle).auralinkRoom.connectionTypes());
      assert.deepEqual(types, { producing: 'relay', consuming: 'relay' }, `${me} is relayed again`);
      const restarts = await pages[me]!.evaluate(() => (window as unknown as RoomHandle).auralinkRoom.sfu.iceRestarts());
      assert.ok(restarts.producing >= 1 && restarts.consuming >= 1, `${me}: both transports restarted ICE (${JSON.stringify(restarts)})`);
    }
    // Same session: the SDK did not rejoin or rebuild its media.
    assert.equal(await t.metric('auralink_sfu_objects', { type: 'producer' }), 4, 'the same four producers');
  });
});
