import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { ChildProcess } from 'node:child_process';
import { createToken } from '../src/auth/token.js';
import type { SignalClient } from '../src/client/signalClient.js';
import { eventually, KEY, SECRET, sleep, startServer, type TestServer } from './helpers.js';
import { TestNet, sweepNetns, type NetSpec } from './netns.js';
import { fixture, UdpSink, VP8_PRODUCER } from './pipeMedia.js';
import type { Browser, Page } from 'playwright-core';
import { find, joinDemo, launchIn, mediaState, remoteStats } from './chromium.js';

// The cascade between real hosts: four nodes in network namespaces (test/netns.ts), edges A
// and B with NO direct link, both linked to relays R1 and R2. A publishes (plain RTP, VP8),
// B subscribes: media must go A → relay → B on the path the mesh measured; killing that relay
// moves it to the other; a direct A–B link, once measured, takes it.

const PORT = 7880;
const SSRC = 4321;
const mesh = createToken(KEY, SECRET, { identity: 'test', video: {}, mesh: true });

interface Route {
  room: string;
  producerId: string;
  path: string[];
}


/** Our server in each node's namespace; probes and media on the node's media address. */
async function startNodes(net: TestNet, redisUrl: string, names: string[], extra: Record<string, unknown>): Promise<Record<string, TestServer>> {
  const cfg = (node: string) => ({
    ...extra,
    node_id: node,
    bind_address: '0.0.0.0',
    port: PORT,
    redis: { url: redisUrl },
    turn: { mode: 'off' },
    sfu: {
      listen_ip: net.mediaIp(node),
      webrtc_port: 40000,
      rtc_min_port: 40010,
      rtc_max_port: 40100,
      allow_plain_transports: true,
      cascade_reroute_check_ms: 300,
      cascade_reroute_hold_ms: 1000,
    },
    // Probes go to the media address: the mesh measures the links media takes.
    mesh: { role: node.startsWith('R') ? 'relay' : 'edge', public_url: `http://${net.mediaIp(node)}:${PORT}`, redis_prefix: 'nsc:', heartbeat_ms: 200, probe_interval_ms: 300 },
  });
  const started = await Promise.all(names.map((n) => startServer(cfg(n), {}, { netns: net.ns(n), host: net.controlIp(n) })));
  return Object.fromEntries(names.map((n, i) => [n, started[i]!]));
}

const routesOf = async (t: TestServer): Promise<Route[]> =>
  ((await (await fetch(`${t.http}/internal/mesh/routes`, { headers: { authorization: `Bearer ${mesh}` } })).json()) as { routes: Route[] }).routes;

/**
 * B's subscriber: a plain consumer to the sink, and nothing else: a re-route must move its
 * consumer (consumerSwitched) without the track being taken away or announced again; what
 * it was told is returned.
 */
async function subscribe(bob: SignalClient, producerId: string, port: number): Promise<{ told: string[] }> {
  const recv = (await bob.request('createTransport', { consuming: true, plain: true })).transport!;
  await bob.request('connectTransport', { transportId: recv.id, plainIp: '127.0.0.1', plainPort: port });
  const consume = async (): Promise<void> => {
    const c = (await bob.request('consume', { producerId, transportId: recv.id, rtpCapabilities: await bob.routerCapabilities() })).consumer!;
    await bob.request('resumeConsumer', { consumerId: c.id });
  };
  await consume();
  const told: string[] = [];
  for (const ev of ['producerAdded', 'producerRemoved', 'consumerClosed'] as const) bob.on(ev, () => told.push(ev));
  bob.on('consumerSwitched', (s) => told.push(`consumerSwitched:${s.reason}`));
  return { told };
}

/** Alice on A publishes VP8 (the replayed capture, ~400 kbit/s) from inside A's namespace. */
async function publish(net: TestNet, alice: SignalClient, bob: SignalClient): Promise<{ producerId: string; source: ChildProcess }> {
  const send = (await alice.request('createTransport', { producing: true, plain: true })).transport!;
  assert.equal(send.plainIp, net.mediaIp('A'));
  const added = bob.next('producerAdded');
  const producerId = (await alice.request('produce', { transportId: send.id, kind: 'video', rtpParameters: JSON.stringify(VP8_PRODUCER(SSRC)) })).id!;
  await added;
  const source = net.run('A', process.execPath, [fixture('rtpReplay.js'), send.plainIp!, String(send.plainPort), String(SSRC)]);
  return { producerId, source };
}

const flowing = async (sink: UdpSink, what: string, ms = 5000): Promise<void> => {
  const n0 = sink.latest.rtp;
  await eventually(() => sink.latest.rtp > n0 + 30, ms, what);
};

/**
 * A topology for one describe: namespaces and links, a redis-server on the hub, our server on
 * every node; torn down (processes in `stray` killed) and swept after.
 */
function useHosts(spec: NetSpec, redisPort: number, extra: Record<string, unknown> = {}): { net: TestNet; nodes: Record<string, TestServer>; stray: ChildProcess[] } {
  const h = { net: undefined as unknown as TestNet, nodes: {} as Record<string, TestServer>, stray: [] as ChildProcess[] };
  before(async () => {
    await sweepNetns();
    h.net = await TestNet.create(spec);
    const redis = await h.net.startRedis(redisPort);
    Object.assign(h.nodes, await startNodes(h.net, redis.url, spec.nodes, extra));
  });
  after(async () => {
    for (const p of h.stray) p.kill('SIGKILL');
    await Promise.all(Object.values(h.nodes).map((s) => s.close().catch(() => undefined)));
    await h.net?.close();
    assert.deepEqual((await sweepNetns()).length, 0);
  });
  return h;
}

/** A and B with no link between them, each linked to relays R1 and R2. */
const THROUGH_RELAYS: NetSpec = {
  nodes: ['A', 'B', 'R1', 'R2'],
  links: [
    { a: 'A', b: 'R1' },
    { a: 'A', b: 'R2' },
    { a: 'B', b: 'R1' },
    { a: 'B', b: 'R2' },
  ],
};

describe('media between hosts through relay nodes', () => {
  const h = useHosts(
    THROUGH_RELAYS,
    6390,
  );
  const routes = (n: string): Promise<Route[]> => routesOf(h.nodes[n]!);

  test('A→relay→B on the measured path; the relay SIGKILLed: the other relay within 3 s; a direct link: the pipes move to it', async (t) => {
    // Every node has measured its links (no A–B link: A and B cannot probe each other).
    await eventually(async () => (await (await fetch(`${h.nodes.B!.http}/metrics`)).text()).includes('auralink_mesh'), 5000, 'mesh up');
    await sleep(1500);
    const alice = await h.nodes.A!.client('alice', 'xh');
    const bob = await h.nodes.B!.client('bob', 'xh');
    const pub = await publish(h.net, alice, bob);
    h.stray.push(pub.source);
    const producerId = pub.producerId;
    const sink = await UdpSink.start(h.net, 'B');
    h.stray.push(sink.proc);
    const sub = await subscribe(bob, producerId, sink.port);
    await flowing(sink, 'RTP from A at B, through a relay', 10_000);
    const [first] = await routes('B');
    assert.equal(first?.producerId, producerId);
    assert.equal(first!.path.length, 3, `A → relay → B (${first!.path.join(' → ')})`);
    const relay = first!.path[1]!;
    assert.ok(relay === 'R1' || relay === 'R2');
    assert.equal(await h.nodes[relay]!.metric('auralink_cascade_producers', { direction: 'in' }), 1, 'the relay carries it once');

    // The relay dies mid-stream: media comes again through the other one, no action of B's app.
    const other = relay === 'R1' ? 'R2' : 'R1';
    const killedAt = Date.now();
    await h.net.kill(relay);
    await flowing(sink, `RTP again through ${other}`, 3000);
    const failoverMs = Date.now() - killedAt;
    const [second] = await routes('B');
    assert.deepEqual(second!.path, ['A', other, 'B'], `re-routed through ${other} in ${failoverMs} ms`);
    t.diagnostic(`path ${first!.path.join('→')}, after SIGKILL of ${relay}: ${second!.path.join('→')}, media again after ${failoverMs} ms`);
    assert.deepEqual(sub.told, ['consumerSwitched:reroute'], 'the subscriber kept its track: its consumer was switched');

    // A direct link appears; once the mesh has measured it the pipes move there.
    await h.net.addLink('A', 'B');
    await eventually(async () => (await routes('B'))[0]?.path.join() === 'A,B', 10_000, 'path moved to the direct link');
    await flowing(sink, 'RTP over the direct link');
    assert.deepEqual(sub.told, ['consumerSwitched:reroute', 'consumerSwitched:reroute'], 'moved to the direct link the same way');
    assert.equal(await h.nodes.B!.metric('auralink_sfu_objects', { type: 'consumer' }), 1, 'one consumer at B');
    assert.equal(await h.nodes.B!.metric('auralink_sfu_objects', { type: 'producer' }), 1, 'one copy of the track at B');
    await eventually(async () => (await h.nodes[other]!.metric('auralink_cascade_links')) === 0, 5000, 'the relay released its links');
    await bob.leave();
    await alice.leave();
    for (const n of ['A', 'B', other]) {
      await eventually(async () => (await h.nodes[n]!.metric('auralink_cascade_links')) === 0, 5000, `${n}: no link left`);
      for (const type of ['transport', 'producer', 'consumer']) {
        await eventually(async () => (await h.nodes[n]!.metric('auralink_sfu_objects', { type })) === 0, 5000, `${n}: no ${type} left`);
      }
    }
    delete h.nodes[relay]; // killed: nothing to close
  });
});

describe('a bandwidth-starved direct link loses to a relayed path once media has measured it', () => {
  const h = useHosts(
    {
      nodes: ['A', 'B', 'R1'],
      links: [
        { a: 'A', b: 'R1' },
        { a: 'B', b: 'R1' },
        // Probes (a few bytes) pass it as well as any link; ~400 kbit/s of video does not.
        { a: 'A', b: 'B', rateKbit: 120 },
      ],
    },
    6391,
  );

  test('media starts on the direct link (cheapest by probes), its loss moves it through the relay', async (t) => {
    await sleep(1500); // probes measure every link
    const alice = await h.nodes.A!.client('alice', 'tbf');
    const bob = await h.nodes.B!.client('bob', 'tbf');
    const pub = await publish(h.net, alice, bob);
    h.stray.push(pub.source);
    const sink = await UdpSink.start(h.net, 'B');
    h.stray.push(sink.proc);
    const sub = await subscribe(bob, pub.producerId, sink.port);
    const first = (await routesOf(h.nodes.B!))[0]!;
    assert.deepEqual(first.path, ['A', 'B'], 'the probes rate the direct link best');
    const startedAt = Date.now();
    // The media congests the link: the probes crossing it see the loss and queueing (and the
    // pipe consumers' receiver reports, folded into the link's loss), so the planner moves it.
    await eventually(async () => (await routesOf(h.nodes.B!))[0]?.path.join() === 'A,R1,B', 15_000, 'moved through the relay');
    const movedMs = Date.now() - startedAt;
    t.diagnostic(`moved from A→B (120 kbit/s) to A→R1→B ${movedMs} ms after media started`);
    const n0 = sink.latest.rtp;
    await sleep(2000);
    const rate = (sink.latest.rtp - n0) / 2;
    t.diagnostic(`${rate} RTP packets/s at B through the relay`);
    await flowing(sink, 'RTP through the relay');
    assert.deepEqual(sub.told, ['consumerSwitched:reroute'], 'the subscriber kept its track: its consumer was switched');
    await bob.leave();
    await alice.leave();
  });
});

describe('real browsers on hosts A and B (no A–B link), media through relay nodes', () => {
  const browsers: Browser[] = [];
  // Registered first, so it runs before the hosts go.
  after(async () => {
    for (const b of browsers) await b.close().catch(() => undefined);
  });
  const h = useHosts(
    THROUGH_RELAYS,
    6392,
    { development: true },
  );

  test("Chromium on A publishes, Chromium on B receives through a relay; the relay SIGKILLed: the other one, the page keeping its tracks; a direct link: the pipes move to it", async (t) => {
    await sleep(1500); // probes measure every link
    const pages: Record<string, Page> = {};
    for (const [node, name] of [['A', 'alice'], ['B', 'bob']] as const) {
      const browser = await launchIn(h.net.ns(node), [h.nodes[node]!.http]);
      browsers.push(browser);
      Object.assign(pages, await joinDemo(browser, h.nodes[node]!, 'hostsb', [name]));
    }
    const bob = pages.bob!;
    const receiving = async (min: number): Promise<boolean> => {
      const s = await remoteStats(bob);
      return (find(s, 'alice', 'camera')?.framesDecoded ?? 0) > min && (find(s, 'alice', 'microphone')?.packetsReceived ?? 0) > min;
    };
    await eventually(() => receiving(10), 30_000, "bob's page receiving alice's camera and mic from host A").catch(async (e: Error) => {
      throw new Error(`${e.message}; bob: ${await mediaState(bob)}`);
    });
    const first = await routesOf(h.nodes.B!);
    assert.equal(first.length, 2, "alice's camera and mic piped to B");
    const relay = first[0]!.path[1]!;
    for (const r of first) assert.deepEqual(r.path, ['A', relay, 'B'], `through a relay: ${r.path.join(' → ')}`);
    const tracksBefore = await bob.evaluate(() => {
      const w = window as unknown as { auralinkRoom: import('../src/client/room.js').Room; moves?: string[] };
      const moves: string[] = (w.moves = []);
      w.auralinkRoom.on('trackSwitched', (r) => moves.push(`switched ${r.source}`));
      w.auralinkRoom.on('trackUnsubscribed', (r) => moves.push(`unsubscribed ${r.source}`));
      w.auralinkRoom.on('trackSubscribed', (r) => moves.push(`subscribed ${r.source}`));
      return [...w.auralinkRoom.remote.keys()].sort();
    });
    const moves = (): Promise<string[]> => bob.evaluate(() => (window as unknown as { moves?: string[] }).moves ?? []);
    const tracksNow = (): Promise<string[]> => bob.evaluate(() => [...(window as unknown as { auralinkRoom: import('../src/client/room.js').Room }).auralinkRoom.remote.keys()].sort());

    // The relay dies: the page's tracks are switched to copies through the other relay.
    const other = relay === 'R1' ? 'R2' : 'R1';
    const killedAt = Date.now();
    await h.net.kill(relay);
    delete h.nodes[relay];
    await eventually(async () => (await moves()).length >= 2 && (await receiving(5)), 10_000, `bob receiving alice again through ${other}`).catch(async (e: Error) => {
      throw new Error(`${e.message}; bob: ${await mediaState(bob)}; moves ${JSON.stringify(await moves())}`);
    });
    t.diagnostic(`${relay} SIGKILLed: frames decoded again at B ${Date.now() - killedAt} ms later, through ${other}`);
    for (const r of await routesOf(h.nodes.B!)) assert.deepEqual(r.path, ['A', other, 'B']);
    assert.deepEqual((await moves()).sort(), ['switched camera', 'switched microphone'], 'switched in place, never unsubscribed');
    assert.deepEqual(await tracksNow(), tracksBefore, 'the same remote tracks');

    // A direct link appears; once measured, the pipes move to it, the same way.
    await h.net.addLink('A', 'B');
    await eventually(async () => (await routesOf(h.nodes.B!)).every((r) => r.path.join() === 'A,B'), 15_000, 'pipes moved to the direct link');
    await eventually(async () => (await moves()).length >= 4, 10_000, 'switched again');
    await eventually(() => receiving(5), 10_000, 'bob receiving alice over the direct link');
    assert.deepEqual((await moves()).sort(), ['switched camera', 'switched camera', 'switched microphone', 'switched microphone']);
    assert.deepEqual(await tracksNow(), tracksBefore, 'still the same remote tracks');

    // Both leave: nothing left on any live host.
    for (const p of Object.values(pages)) await p.click('#leave');
    for (const n of ['A', 'B', other]) {
      await eventually(async () => (await h.nodes[n]!.metric('auralink_cascade_links')) === 0, 5000, `${n}: no link left`);
      for (const type of ['transport', 'producer', 'consumer']) {
        await eventually(async () => (await h.nodes[n]!.metric('auralink_sfu_objects', { type })) === 0, 5000, `${n}: no ${type} left`);
      }
    }
  });
});
