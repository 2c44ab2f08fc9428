import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import YAML from 'yaml';
import { DEFAULT_CONFIG_PATH, merge } from '../src/config/load.js';
import type { Config } from '../src/config/schema.js';
import { TurnCredentials } from '../src/turn/credentials.js';
import { TurnService } from '../src/turn/turnService.js';
import { eventually, startServer } from './helpers.js';

const SECRET = 'turn-thread-test-secret';

function run(cmd: string, args: string[], timeoutMs = 20_000): Promise<string> {
  return new Promise((resolve) => {
    const p = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const timer = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
    p.on('exit', () => {
      clearTimeout(timer);
      resolve(out);
    });
  });
}

/** coturn's client through `turnPort` to an echo peer: messages sent and received back. */
async function relay(turnPort: number, peerPort: number, n = 20, size = 120): Promise<{ sent: number; received: number }> {
  const { username, credential } = new TurnCredentials(SECRET, 600).issue('thread-test');
  const out = await run('turnutils_uclient', ['-c', '-u', username, '-w', credential, '-p', String(turnPort), '-e', '127.0.0.1', '-r', String(peerPort), '-n', String(n), '-m', '1', '-l', String(size), '127.0.0.1']);
  const m = [...out.matchAll(/start_mclient: tot_send_msgs=(\d+), tot_recv_msgs=(\d+)/g)].at(-1);
  return { sent: Number(m?.[1] ?? 0), received: Number(m?.[2] ?? 0) };
}

/** Local UDP ports bound on this machine (/proc/net/udp), to see what a closed server left. */
function boundUdpPorts(): Set<number> {
  const ports = new Set<number>();
  for (const line of readFileSync('/proc/net/udp', 'utf8').split('\n').slice(1)) {
    const local = line.trim().split(/\s+/)[1];
    if (local) ports.add(parseInt(local.split(':')[1]!, 16));
  }
  return ports;
}

function turnConfig(port: number, over: Record<string, unknown> = {}): Config['turn'] {
  const defaults = (YAML.parse(readFileSync(DEFAULT_CONFIG_PATH, 'utf8')) as { turn: Record<string, unknown> }).turn;
  return merge(defaults, {
    secret: SECRET,
    listen_ip: '127.0.0.1',
    port,
    relay_min_port: port + 1,
    relay_max_port: port + 19,
    allowed_peer_cidrs: ['127.0.0.0/8'],
    ...over,
  }) as unknown as Config['turn'];
}

/** The registry's sample for `name` with exactly these labels (NaN when absent). */
async function sample(registry: Registry, name: string, labels: Record<string, string> = {}): Promise<number> {
  const m = (await registry.getMetricsAsJSON()).find((x) => x.name === name);
  const v = (m?.values as { value: number; labels: Record<string, string | number> }[] | undefined)?.find((x) =>
    Object.entries(labels).every(([k, want]) => String(x.labels[k]) === want),
  );
  return v ? v.value : Number.NaN;
}

describe('TURN thread (in-process TurnService)', () => {
  const base = 40000 + Math.floor(Math.random() * 200) * 25;
  const peerPort = base + 22;
  const logs: { level: number; msg: string }[] = [];
  const log = pino({ level: 'info' }, { write: (s: string) => logs.push(JSON.parse(s) as { level: number; msg: string }) });
  const registry = new Registry();
  let turn: TurnService;
  let peer: ReturnType<typeof spawn>;

  before(async () => {
    peer = spawn('turnutils_peer', ['-L', '127.0.0.1', '-p', String(peerPort)], { stdio: 'ignore' });
    turn = new TurnService(turnConfig(base), '127.0.0.1', registry, log);
    await turn.start();
  });
  after(async () => {
    peer?.kill('SIGKILL');
    await turn?.close();
  });

  test('relays both ways from its own thread and counts packets and bytes per direction', async () => {
    const before = {
      c2p: await sample(registry, 'auralink_turn_relayed_packets_total', { direction: 'client_to_peer' }),
      p2c: await sample(registry, 'auralink_turn_relayed_packets_total', { direction: 'peer_to_client' }),
      bytes: await sample(registry, 'auralink_turn_relayed_bytes_total', { direction: 'peer_to_client' }),
    };
    const r = await relay(base, peerPort, 20, 120);
    assert.equal(r.received, 20, 'every message came back through the relay');
    assert.equal(await sample(registry, 'auralink_turn_relayed_packets_total', { direction: 'client_to_peer' }), before.c2p + 20);
    assert.equal(await sample(registry, 'auralink_turn_relayed_packets_total', { direction: 'peer_to_client' }), before.p2c + 20);
    assert.equal(await sample(registry, 'auralink_turn_relayed_bytes_total', { direction: 'peer_to_client' }), before.bytes + 20 * 120);
    assert.equal(await sample(registry, 'auralink_turn_thread_up'), 1);
    assert.ok((await sample(registry, 'auralink_turn_eventloop_lag_seconds', { quantile: 'max' })) >= 0, 'TURN thread lag reported');
  });

  test('the kernel grants the asked-for buffers up to net.core.rmem_max (reported, not assumed)', async () => {
    const rmemMax = Number(readFileSync('/proc/sys/net/core/rmem_max', 'utf8'));
    const asked = turnConfig(base).listen_buffer_bytes;
    // Linux doubles what it grants (bookkeeping overhead) and caps the ask at rmem_max.
    assert.equal(await sample(registry, 'auralink_turn_socket_buffer_bytes', { socket: 'listen', direction: 'recv' }), 2 * Math.min(asked, rmemMax));
  });

  test('ChannelData it cannot relay is dropped and counted by cause', async () => {
    const dropped = (cause: string): Promise<number> => sample(registry, 'auralink_turn_dropped_packets_total', { cause });
    const noAlloc = await dropped('no_allocation');
    const malformed = await dropped('malformed');
    const s = createSocket('udp4');
    const send = (b: Buffer): Promise<void> => new Promise((r) => s.send(b, base, '127.0.0.1', () => r()));
    await send(Buffer.from([0x40, 0x00, 0x00, 0x04, 1, 2, 3, 4])); // well-formed, from no allocation
    await send(Buffer.from([0x40, 0x00, 0x00, 0x40, 1, 2])); // length past the datagram
    await send(Buffer.from([0x7f, 0xff, 0x00, 0x00])); // channel 0x7FFF: outside 0x4000-0x7FFE
    s.close();
    await eventually(async () => (await dropped('no_allocation')) === noAlloc + 1 && (await dropped('malformed')) === malformed + 2, 3000, 'drops counted');
    const r = await relay(base, peerPort, 5);
    assert.equal(r.received, 5, 'the server still relays');
  });

  test('a crashed TURN thread is restarted, logged and counted; counters keep their totals', async () => {
    const relayedBefore = await sample(registry, 'auralink_turn_relayed_packets_total', { direction: 'client_to_peer' });
    assert.ok(relayedBefore > 0);
    turn.embedded!.injectCrash();
    await eventually(async () => (await sample(registry, 'auralink_turn_thread_restarts_total')) === 1, 10_000, 'thread restarted');
    await eventually(() => turn.embedded!.up, 10_000, 'restarted thread listening');
    assert.ok(logs.some((l) => l.level === 50 && /TURN thread died/.test(l.msg)), 'the death is logged as an error');
    assert.equal(await sample(registry, 'auralink_turn_relayed_packets_total', { direction: 'client_to_peer' }), relayedBefore, 'no counter went back');
    const r = await relay(base, peerPort, 10);
    assert.equal(r.received, 10, 'the restarted thread relays');
    assert.equal(await sample(registry, 'auralink_turn_relayed_packets_total', { direction: 'client_to_peer' }), relayedBefore + 10);
  });

  test('close() ends the thread and releases the listening and relay sockets', async () => {
    // An allocation the client abandons (uclient's first one) is still live here.
    await relay(base, peerPort, 3);
    await eventually(() => turn.embedded!.allocationCount >= 1, 3000, 'an allocation live before close');
    await turn.close();
    assert.equal(turn.embedded!.up, false);
    assert.equal(await sample(registry, 'auralink_turn_thread_up'), 0);
    const bound = boundUdpPorts();
    for (let p = base; p <= base + 19; p++) assert.equal(bound.has(p), false, `UDP ${p} released`);
    // Nothing restarts a closed thread.
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(turn.embedded!.up, false);
  });
});

describe('TURN thread start and shutdown', () => {
  test('a taken TURN port fails start() with the reason, and leaves no thread running', async () => {
    const port = 45500 + Math.floor(Math.random() * 200) * 25;
    const squat = createSocket('udp4');
    await new Promise<void>((r) => squat.bind(port, '127.0.0.1', () => r()));
    const registry = new Registry();
    const turn = new TurnService(turnConfig(port), '127.0.0.1', registry, pino({ level: 'silent' }));
    await assert.rejects(turn.start(), /TURN cannot bind UDP 127\.0\.0\.1:\d+/);
    await eventually(() => !turn.embedded!.up, 3000, 'no thread');
    assert.equal(await sample(registry, 'auralink_turn_thread_restarts_total'), 0, 'a failed start is not retried behind the caller');
    await turn.close();
    squat.close();
  });

  test('SIGTERM stops a server with live TURN allocations: exit 0, TURN sockets released', async () => {
    const t = await startServer({ turn: { secret: SECRET, host: '127.0.0.1', allowed_peer_cidrs: ['127.0.0.0/8'] } });
    const peerPort = t.config.turn.relay_max_port + 2000;
    const peer = spawn('turnutils_peer', ['-L', '127.0.0.1', '-p', String(peerPort)], { stdio: 'ignore' });
    try {
      const r = await relay(t.config.turn.port, peerPort, 5);
      assert.equal(r.received, 5);
      assert.ok((await t.metric('auralink_turn_allocations')) >= 1);
    } finally {
      peer.kill('SIGKILL');
      await t.close(); // SIGTERM; throws unless the server exits with 0
    }
    const bound = boundUdpPorts();
    for (let p = t.config.turn.port; p <= t.config.turn.relay_max_port; p++) assert.equal(bound.has(p), false, `UDP ${p} released`);
  });
});
