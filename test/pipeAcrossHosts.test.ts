// Spike for issue 13: mediasoup 3.12 PipeTransports between processes on different "hosts"
// (network namespaces, test/netns.ts), with SRTP and RTX, the pipe dance of
// Router.pipeToRouter done across processes by the test (test/pipeMedia.ts). A VP8 producer
// on A (ffmpeg into a PlainTransport), piped to B directly and then through a relay R, is
// consumed on B into a PlainTransport towards a UDP socket in B's namespace.
// docs/notes/pipe-transports.md writes down what this found.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { sweepNetns, TestNet } from './netns.js';
import { connectPipes, haveFfmpeg, MsHost, pipeProducer, startVp8Source, UdpSink, VP8_PRODUCER } from './pipeMedia.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const SSRC = 0x1234abcd;

async function until(check: () => boolean, timeoutMs: number, what: string): Promise<number> {
  const t0 = Date.now();
  while (!check()) {
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out (${timeoutMs} ms) waiting for ${what}`);
    await sleep(20);
  }
  return Date.now() - t0;
}

/** B's consumer's media stream at the sink: its SSRC and VP8 payload type. */
interface Stream {
  sink: UdpSink;
  ssrc: number;
  pt: number;
}

const streamOf = (sink: UdpSink, consumer: Record<string, any>): Stream => ({ sink, ssrc: consumer.rtpParameters.encodings[0].ssrc, pt: consumer.rtpParameters.codecs[0].payloadType }); // eslint-disable-line @typescript-eslint/no-explicit-any

/** Resolves with the ms it took for at least `n` more of the stream's packets to reach the sink. */
async function flowing(s: Stream, n = 30, timeoutMs = 5000, what = 'RTP at B'): Promise<number> {
  const start = s.sink.count(s.ssrc, s.pt);
  return until(() => s.sink.count(s.ssrc, s.pt) >= start + n, timeoutMs, what);
}

/** The stream's packets at the sink over `ms`, counted after `settleMs` (in-flight packets land first). */
async function arrivedOver(s: Stream, ms: number, settleMs = 300): Promise<number> {
  await sleep(settleMs);
  const a = s.sink.count(s.ssrc, s.pt);
  await sleep(ms);
  return s.sink.count(s.ssrc, s.pt) - a;
}

const timings: [string, number][] = [];
async function timed<T>(what: string, f: () => Promise<T>): Promise<T> {
  const t0 = performance.now();
  try {
    return await f();
  } finally {
    timings.push([what, Math.round((performance.now() - t0) * 10) / 10]);
  }
}

/** With PIPE_SPIKE_LOG_DIR set, keeps each host's mediasoup log (debug level) there. */
function keepLog(host: MsHost, scenario: string): void {
  const dir = process.env.PIPE_SPIKE_LOG_DIR;
  if (dir) writeFileSync(join(dir, `pipeAcrossHosts-${scenario}-${host.node}.log`), host.log);
}

/** Warnings worth knowing from a host's mediasoup log. */
function srtpAndNackLines(host: MsHost): string[] {
  return host.log.split('\n').filter((l) => /srtp|replay|DecryptSrtp|nack|rtx|retransmi/i.test(l));
}

/** The objects a worker still holds: its routers and every channel handler (transports, producers, consumers). */
async function leftovers(host: MsHost): Promise<{ routers: number; handlers: number; transports: number }> {
  const d = await host.request('dump');
  return {
    routers: d.worker?.routerIds?.length ?? 0,
    handlers: d.worker?.channelMessageHandlers?.channelRequestHandlers?.length ?? 0,
    transports: d.router?.transportIds?.length ?? 0,
  };
}

/** One stats entry of `type` of a host's object (getStats gives a list). */
async function stat(h: MsHost, name: string, type: string): Promise<Record<string, number>> {
  const all = (await h.request('getStats', { name })) as { type: string }[];
  return all.find((s) => s.type === type) as unknown as Record<string, number>;
}

/** Ten key-frame requests from B's subscriber 30 ms apart: how many PLIs each upstream pipe consumer got. */
async function pliBurst(b: MsHost, upstream: [MsHost, string][]): Promise<number[]> {
  const before = await Promise.all(upstream.map(([h, n]) => stat(h, n, 'outbound-rtp')));
  for (let i = 0; i < 10; i++) {
    await b.request('requestKeyFrame', { name: 'cB' });
    await sleep(30);
  }
  await sleep(300);
  const after = await Promise.all(upstream.map(([h, n]) => stat(h, n, 'outbound-rtp')));
  return after.map((x, i) => x.pliCount! - before[i]!.pliCount!);
}

let net: TestNet;

before(async () => {
  await sweepNetns();
  net = await timed('netns: 3 nodes, 3 links', () =>
    TestNet.create({
      nodes: ['A', 'B', 'R'],
      links: [
        { a: 'A', b: 'B' },
        { a: 'A', b: 'R' },
        { a: 'B', b: 'R' },
      ],
      hub: { isolated: true },
    }),
  );
  console.log(`# VP8 source: ${haveFfmpeg ? 'ffmpeg (libvpx, 400 kbit/s, key frame every 30 frames)' : 'replay of test/fixtures/rtp/vp8.rtpc (no ffmpeg on PATH, or PIPE_SPIKE_SOURCE=replay)'}`);
});

after(async () => {
  await net?.close();
  await sweepNetns();
  console.log(`# timings (ms, one run, indicative): ${timings.map(([w, ms]) => `${w} ${ms}`).join('; ')}`);
});

/** A with a VP8 producer fed by the source; B with a PlainTransport consumer-side towards a sink. */
async function origin(): Promise<{ a: MsHost; producerId: string }> {
  const a = new MsHost(net, 'A');
  await timed('A: worker + router', () => a.request('start'));
  const plain = await a.request('createPlainTransport', { name: 'aIn', listenIp: '127.0.0.1', comedia: true });
  const producer = await a.request('produce', { transport: 'aIn', name: 'prodA', kind: 'video', rtpParameters: VP8_PRODUCER(SSRC) });
  startVp8Source(net, 'A', plain.tuple.localPort, SSRC);
  return { a, producerId: producer.id };
}

async function receiver(): Promise<{ b: MsHost; sink: UdpSink }> {
  const b = new MsHost(net, 'B');
  await timed('B: worker + router', () => b.request('start'));
  const sink = await UdpSink.start(net, 'B');
  await b.request('createPlainTransport', { name: 'bOut', listenIp: '127.0.0.1' });
  await b.request('connectPlainTransport', { name: 'bOut', ip: '127.0.0.1', port: sink.port });
  return { b, sink };
}

describe('A → B over a direct link: PipeTransports with SRTP and RTX between two processes', () => {
  let a: MsHost;
  let b: MsHost;
  let sink: UdpSink;
  let producerId: string;
  let media: Stream;

  before(async () => {
    ({ a, producerId } = await origin());
    ({ b, sink } = await receiver());
  });
  after(async () => {
    for (const h of [a, b]) await h?.exit();
    for (const h of [a, b]) if (h) keepLog(h, 'direct');
    for (const h of [a, b]) if (h) console.log(`# ${h.node} SRTP/NACK/RTX log lines: ${JSON.stringify(srtpAndNackLines(h).slice(0, 8))}`);
  });

  test('RTP from A\'s producer arrives at B\'s receiver through the pipe', async () => {
    const t = await timed('A–B: create + connect pipe pair', () =>
      connectPipes({ host: a, name: 'pAB', ip: net.mediaIp('A') }, { host: b, name: 'pBA', ip: net.mediaIp('B') }),
    );
    assert.equal(t.x.tuple.localIp, net.mediaIp('A'), 'A\'s pipe listens on A\'s media address');
    assert.equal(t.y.tuple.localIp, net.mediaIp('B'));
    assert.ok(t.x.srtpParameters?.keyBase64 && t.y.srtpParameters?.keyBase64, 'both sides have SRTP parameters');
    assert.notEqual(t.x.srtpParameters.keyBase64, t.y.srtpParameters.keyBase64, 'each side its own key');
    const piped = await timed('A→B: pipe consume + produce', () => pipeProducer({ host: a, name: 'pAB' }, { host: b, name: 'pBA' }, producerId, { consumer: 'pcA', producer: 'ppB' }));
    assert.equal(piped.producer.id, producerId, 'the far producer has the origin\'s id');
    assert.equal(piped.consumer.type, 'pipe');
    assert.ok(piped.consumer.rtpParameters.codecs.some((c: { mimeType: string }) => c.mimeType === 'video/rtx'), 'RTX negotiated over the pipe');
    const consumerB = await timed('B: consume on PlainTransport', () => b.request('consume', { transport: 'bOut', name: 'cB', producerId }));
    media = streamOf(sink, consumerB);
    await timed('B: first 30 RTP packets at the sink after consume', () => flowing(media));
    // Besides the media: mediasoup's bandwidth probation (SSRC 1234, PT 127) on a consumer
    // that negotiated transport-cc (here: B's router capabilities given as the receiver's).
    const [toA] = await pliBurst(b, [[a, 'pcA']]);
    console.log(`# 10 key-frame requests on B's consumer in 300 ms, B's pipe producer without keyFrameRequestDelay: ${toA} PLIs reached A`);
    const others = Object.keys(sink.latest.streams).filter((k) => k !== `${media.ssrc}:${media.pt}`);
    console.log(`# streams at B's sink: ${JSON.stringify(sink.latest.streams)}`);
    assert.deepEqual(others.filter((k) => !k.startsWith('1234:')), [], 'nothing but the consumer\'s stream (and probation)');
    const [sa, sb] = [(await a.request('getStats', { name: 'pAB' }))[0], (await b.request('getStats', { name: 'pBA' }))[0]];
    console.log(`# pipe stats: A sent ${sa.rtpBytesSent} RTP bytes (rtx ${sa.rtxBytesSent}), B received ${sb.rtpBytesReceived} (rtx ${sb.rtxBytesReceived}); A tuple ${JSON.stringify(sa.tuple)}`);
    assert.ok(sa.rtpBytesSent > 0 && sb.rtpBytesReceived > 0);
    assert.equal(sb.tuple.remoteIp, net.mediaIp('A'), 'B receives from A\'s media address');
  });

  test('pausing the producer on A stops RTP at B (the pause carried to B\'s pipe producer); resume restarts it', async () => {
    const paused = b.next('producerpause', 'cB');
    await timed('pause A → producerpause at B\'s consumer', async () => {
      await a.request('pause', { name: 'prodA' });
      await paused;
    });
    const t0 = (await b.request('getStats', { name: 'pBA' }))[0];
    assert.equal(await arrivedOver(media, 1000), 0, 'no RTP at B while paused');
    const t1 = (await b.request('getStats', { name: 'pBA' }))[0];
    console.log(`# B's pipe transport over ~1.3 s of pause: bytesReceived +${t1.bytesReceived - t0.bytesReceived}, rtpBytesReceived +${t1.rtpBytesReceived - t0.rtpBytesReceived}`);
    const resumed = b.next('producerresume', 'cB');
    await a.request('resume', { name: 'prodA' });
    await resumed;
    await timed('resume A → 30 RTP packets at B (waits for a key frame)', () => flowing(media));
  });

  test('each side connecting with its OWN srtpParameters (swapped) delivers nothing: B cannot decrypt', async () => {
    const before = b.log.length;
    await connectPipes({ host: a, name: 'pAB2', ip: net.mediaIp('A') }, { host: b, name: 'pBA2', ip: net.mediaIp('B') }, { swapSrtp: true });
    // A second pipe of the same producer into B's router needs another id there.
    const piped = await pipeProducer({ host: a, name: 'pAB2' }, { host: b, name: 'pBA2' }, producerId, { consumer: 'pcA2', producer: 'ppB2' }, { id: crypto.randomUUID() });
    const sink2 = await UdpSink.start(net, 'B');
    try {
      await b.request('createPlainTransport', { name: 'bOut2', listenIp: '127.0.0.1' });
      await b.request('connectPlainTransport', { name: 'bOut2', ip: '127.0.0.1', port: sink2.port });
      const media2 = streamOf(sink2, await b.request('consume', { transport: 'bOut2', name: 'cB2', producerId: piped.producer.id }));
      await sleep(1500);
      const [sa, sb] = [(await a.request('getStats', { name: 'pAB2' }))[0], (await b.request('getStats', { name: 'pBA2' }))[0]];
      assert.ok(sa.rtpBytesSent > 0, 'A sends');
      assert.ok(sb.bytesReceived > 0, 'B gets the bytes');
      assert.equal(sb.rtpBytesReceived, 0, 'but no RTP it could decrypt');
      assert.equal(sink2.count(media2.ssrc), 0, 'nothing reaches the receiver');
      const warnings = b.log.slice(before).split('\n').filter((l) => l.includes('DecryptSrtp() failed'));
      console.log(`# swapped SRTP: ${warnings.length} "DecryptSrtp() failed" warnings at B in 1.5 s, first: ${warnings[0]?.replace(/^.*?WARN/, 'WARN')}`);
      assert.ok(warnings.length > 0, 'B logs the failed decryption');
    } finally {
      for (const n of ['cB2', 'ppB2', 'bOut2', 'pBA2']) await b.request('close', { name: n }).catch(() => undefined);
      for (const n of ['pcA2', 'pAB2']) await a.request('close', { name: n }).catch(() => undefined);
      sink2.proc.kill();
    }
  });

  test('asynchronous teardown (B drops its pipe producer while A still sends, mediasoup #435), then re-pipe over the same transports: RTP flows again', async () => {
    const logAt = b.log.length;
    const consumerClosed = b.next('producerclose', 'cB');
    await b.request('close', { name: 'ppB' });
    await consumerClosed; // B's consumer goes with the producer it consumed
    await sleep(700); // A's pipe consumer keeps sending into B's pipe transport meanwhile
    await a.request('close', { name: 'pcA' });
    await timed('re-pipe A→B on the existing pipe pair', () => pipeProducer({ host: a, name: 'pAB' }, { host: b, name: 'pBA' }, producerId, { consumer: 'pcA', producer: 'ppB' }));
    media = streamOf(sink, await b.request('consume', { transport: 'bOut', name: 'cB', producerId }));
    await timed('re-pipe: 30 RTP packets at B', () => flowing(media));
    const srtp = b.log.slice(logAt).split('\n').filter((l) => /replay|DecryptSrtp/.test(l));
    console.log(`# SRTP warnings at B around the asynchronous teardown and re-pipe: ${srtp.length}${srtp[0] ? `, first: ${srtp[0].replace(/^.*?WARN/, 'WARN')}` : ''}`);
  });

  test('teardown in a fixed order (B consumer, B pipe producer, A pipe consumer, pipe transports, routers, workers) leaves nothing', async () => {
    const logAt = [a.log.length, b.log.length];
    await timed('teardown A–B in order', async () => {
      await b.request('close', { name: 'cB' });
      await b.request('close', { name: 'ppB' });
      await a.request('close', { name: 'pcA' });
      await b.request('close', { name: 'pBA' });
      await a.request('close', { name: 'pAB' });
      await b.request('close', { name: 'bOut' });
      await a.request('close', { name: 'prodA' });
      await a.request('close', { name: 'aIn' });
    });
    for (const h of [a, b]) assert.equal((await leftovers(h)).transports, 0, `${h.node}: router holds no transport`);
    for (const h of [a, b]) await h.request('close', { name: 'router' });
    for (const h of [a, b]) assert.deepEqual(await leftovers(h), { routers: 0, handlers: 0, transports: 0 }, `${h.node}: worker holds nothing`);
    for (const h of [a, b]) await h.request('close', { name: 'worker' });
    const replay = [a.log.slice(logAt[0]), b.log.slice(logAt[1])].join('\n').split('\n').filter((l) => /replay|DecryptSrtp/.test(l));
    console.log(`# SRTP warnings during the ordered teardown: ${replay.length}`);
  });
});

describe('A → R → B: a relay with two pipe transports, no A–B link', () => {
  let a: MsHost;
  let r: MsHost;
  let b: MsHost;
  let sink: UdpSink;
  let producerId: string;
  let media: Stream;

  before(async () => {
    if (net.hasLink('A', 'B')) await net.removeLink('A', 'B');
    ({ a, producerId } = await origin());
    ({ b, sink } = await receiver());
    r = new MsHost(net, 'R');
    await r.request('start');
  });
  after(async () => {
    for (const h of [a, r, b]) await h?.exit();
    for (const h of [a, r, b]) if (h) keepLog(h, 'relay');
    for (const h of [a, r, b]) if (h) console.log(`# ${h.node} SRTP/NACK/RTX log lines: ${JSON.stringify(srtpAndNackLines(h).slice(0, 8))}`);
  });

  test('RTP from A arrives at B through R, and pause/resume is carried over both hops', async () => {
    await timed('A–R + R–B: two pipe pairs', () =>
      Promise.all([
        connectPipes({ host: a, name: 'pAR', ip: net.mediaIp('A') }, { host: r, name: 'pRA', ip: net.mediaIp('R') }),
        connectPipes({ host: r, name: 'pRB', ip: net.mediaIp('R') }, { host: b, name: 'pBR', ip: net.mediaIp('B') }),
      ]),
    );
    await timed('A→R→B: two pipe consume + produce', async () => {
      await pipeProducer({ host: a, name: 'pAR' }, { host: r, name: 'pRA' }, producerId, { consumer: 'pcA', producer: 'ppR' });
      await pipeProducer({ host: r, name: 'pRB' }, { host: b, name: 'pBR' }, producerId, { consumer: 'pcR', producer: 'ppB' }, { keyFrameRequestDelay: 1000 });
    });
    media = streamOf(sink, await b.request('consume', { transport: 'bOut', name: 'cB', producerId }));
    await timed('A→R→B: first 30 RTP packets at the sink after consume', () => flowing(media));
    const [ra, rb] = [(await r.request('getStats', { name: 'pRA' }))[0], (await r.request('getStats', { name: 'pRB' }))[0]];
    assert.equal(ra.tuple.remoteIp, net.mediaIp('A'), 'R receives from A');
    assert.equal(rb.tuple.remoteIp, net.mediaIp('B'), 'R sends to B');
    assert.ok(ra.rtpBytesReceived > 0 && rb.rtpBytesSent > 0, 'R forwards');
    console.log(`# relay R: received ${ra.rtpBytesReceived} RTP bytes from A, sent ${rb.rtpBytesSent} to B`);
    // B's pipe producer was made with keyFrameRequestDelay 1000, R's without. Not asserted:
    // with a source that never answers a PLI (ffmpeg), mediasoup already folds requests into
    // the pending one (KeyFrameRequestManager, re-sent after 1 s), with or without the delay.
    const [toR, toA] = await pliBurst(b, [[r, 'pcR'], [a, 'pcA']]);
    console.log(`# 10 key-frame requests on B's consumer in 300 ms: ${toR} PLIs reached R (B's pipe producer: keyFrameRequestDelay 1000), ${toA} reached A (R's: none)`);

    const paused = b.next('producerpause', 'cB');
    await timed('pause A → producerpause at B over two hops', async () => {
      await a.request('pause', { name: 'prodA' });
      await paused;
    });
    assert.equal(await arrivedOver(media, 800), 0, 'no RTP at B while paused');
    const resumed = b.next('producerresume', 'cB');
    await a.request('resume', { name: 'prodA' });
    await resumed;
    await flowing(media);
  });

  test('under loss on the A–R hop (tbf below the stream\'s rate), R NACKs and A retransmits over RTX', async () => {
    const a0 = await stat(a, 'pAR', 'pipe-transport');
    const c0 = await stat(a, 'pcA', 'outbound-rtp');
    const p0 = await stat(r, 'ppR', 'inbound-rtp');
    const r0 = await stat(r, 'pcR', 'outbound-rtp');
    const b0 = await stat(b, 'ppB', 'inbound-rtp');
    await net.setRate('A', 'R', 250);
    await sleep(3000);
    await net.setRate('A', 'R', undefined);
    await sleep(500);
    const a1 = await stat(a, 'pAR', 'pipe-transport');
    const c1 = await stat(a, 'pcA', 'outbound-rtp');
    const p1 = await stat(r, 'ppR', 'inbound-rtp');
    const r1 = await stat(r, 'pcR', 'outbound-rtp');
    const b1 = await stat(b, 'ppB', 'inbound-rtp');
    const d = (x: Record<string, number>, y: Record<string, number>, k: string): number => (y[k] ?? 0) - (x[k] ?? 0);
    console.log(
      `# 3 s at 250 kbit/s on A–R: R lost ${d(p0, p1, 'packetsLost')} packets, sent ${d(p0, p1, 'nackCount')} NACKs for ${d(p0, p1, 'nackPacketCount')} packets; ` +
        `A's pipe consumer got ${d(c0, c1, 'nackCount')} NACKs (${d(c0, c1, 'nackPacketCount')} packets), retransmitted ${d(c0, c1, 'packetsRetransmitted')}; ` +
        `A sent ${d(a0, a1, 'rtxBytesSent')} RTX bytes`,
    );
    // The hop behind the lossy one: B sees the gaps R had before repairing them and NACKs R,
    // whose pipe consumer can only resend what R itself got (mediasoup #906).
    console.log(
      `# R–B hop meanwhile (no tbf): B lost ${d(b0, b1, 'packetsLost')}, sent ${d(b0, b1, 'nackCount')} NACKs for ${d(b0, b1, 'nackPacketCount')} packets; ` +
        `R's pipe consumer got ${d(r0, r1, 'nackCount')} NACKs, retransmitted ${d(r0, r1, 'packetsRetransmitted')}`,
    );
    console.log(`# per-hop stats after the loss: A's pipe consumer ${JSON.stringify(c1)}; R's pipe producer ${JSON.stringify(p1)}`);
    assert.ok(d(p0, p1, 'nackCount') > 0, 'R asked for retransmissions');
    assert.ok(d(c0, c1, 'nackCount') > 0, 'A\'s pipe consumer got them');
    assert.ok(d(a0, a1, 'rtxBytesSent') > 0, 'A retransmitted over RTX');
    await flowing(media, 30, 5000, 'RTP at B after the loss');
  });

  test('teardown in a fixed order leaves no transport, router or handler on A, R or B', async () => {
    await timed('teardown A→R→B in order', async () => {
      await b.request('close', { name: 'cB' });
      await b.request('close', { name: 'ppB' });
      await r.request('close', { name: 'pcR' });
      await r.request('close', { name: 'ppR' });
      await a.request('close', { name: 'pcA' });
      await b.request('close', { name: 'pBR' });
      await r.request('close', { name: 'pRB' });
      await r.request('close', { name: 'pRA' });
      await a.request('close', { name: 'pAR' });
      await b.request('close', { name: 'bOut' });
      await a.request('close', { name: 'prodA' });
      await a.request('close', { name: 'aIn' });
    });
    for (const h of [a, r, b]) assert.equal((await leftovers(h)).transports, 0, `${h.node}: router holds no transport`);
    for (const h of [a, r, b]) await h.request('close', { name: 'router' });
    for (const h of [a, r, b]) assert.deepEqual(await leftovers(h), { routers: 0, handlers: 0, transports: 0 }, `${h.node}: worker holds nothing`);
    for (const h of [a, r, b]) await h.request('close', { name: 'worker' });
  });
});

describe('the relay dies mid-stream (SIGKILL of every process in R\'s namespace)', () => {
  let a: MsHost;
  let r: MsHost;
  let b: MsHost;
  let sink: UdpSink;
  let producerId: string;

  before(async () => {
    if (net.hasLink('A', 'B')) await net.removeLink('A', 'B');
    ({ a, producerId } = await origin());
    ({ b, sink } = await receiver());
    r = new MsHost(net, 'R');
    await r.request('start');
    await connectPipes({ host: a, name: 'pAR', ip: net.mediaIp('A') }, { host: r, name: 'pRA', ip: net.mediaIp('R') });
    await connectPipes({ host: r, name: 'pRB', ip: net.mediaIp('R') }, { host: b, name: 'pBR', ip: net.mediaIp('B') });
    await pipeProducer({ host: a, name: 'pAR' }, { host: r, name: 'pRA' }, producerId, { consumer: 'pcA', producer: 'ppR' });
    await pipeProducer({ host: r, name: 'pRB' }, { host: b, name: 'pBR' }, producerId, { consumer: 'pcR', producer: 'ppB' });
  });
  after(async () => {
    for (const h of [a, b]) await h?.exit();
    for (const h of [a, r, b]) if (h) keepLog(h, 'relaydeath');
  });

  test('nothing tells A or B: B keeps a silent pipe producer and consumer, A keeps sending; re-routing needs a new pipe producer on B', async () => {
    const media = streamOf(sink, await b.request('consume', { transport: 'bOut', name: 'cB', producerId }));
    await flowing(media);
    const closes: string[] = [];
    for (const n of ['cB', 'ppB', 'pBR']) b.once(`closed:${n}`, () => closes.push(n));
    for (const n of ['pcA', 'pAR']) a.once(`closed:${n}`, () => closes.push(n));
    // mediasoup's receive-stream inactivity check (score 0) runs only for simulcast producers
    // with several streams, never for a pipe producer: watch for a score event anyway.
    const scores: unknown[] = [];
    b.on('score:ppB', (m: { score: unknown }) => scores.push(m.score));
    const killedAt = Date.now();
    await net.kill('R');
    // What B can see: its pipe transport's bytesReceived (RTP and RTCP) stops growing.
    let last = -1;
    for (;;) {
      const now = (await b.request('getStats', { name: 'pBR' }))[0].bytesReceived as number;
      if (now === last) break;
      last = now;
      await sleep(250);
    }
    timings.push(['relay killed → B sees its pipe bytesReceived unchanged over 250 ms', Date.now() - killedAt]);
    assert.equal(await arrivedOver(media, 700), 0, 'media stops at B');
    const sent0 = (await a.request('getStats', { name: 'pAR' }))[0].rtpBytesSent as number;
    await sleep(500);
    const sent1 = (await a.request('getStats', { name: 'pAR' }))[0].rtpBytesSent as number;
    console.log(`# after R died: A still sent ${sent1 - sent0} RTP bytes to it in 500 ms; close events seen: ${JSON.stringify(closes)}`);
    assert.ok(sent1 > sent0, 'a pipe transport has no liveness check: A keeps sending into the dead relay');
    assert.deepEqual(closes, [], 'no close anywhere: pipe transports do not notice a dead peer');
    const dumpB = (await b.request('dump')).router;
    assert.equal(dumpB.transportIds.length, 2, 'B still has its pipe and plain transports');
    console.log(`# score events of B's pipe producer since R died: ${JSON.stringify(scores)}`);
    await assert.rejects(b.request('connectPipeTransport', { name: 'pBR', ip: net.mediaIp('A'), port: 9, srtpParameters: {} }), /connect\(\) already called/, 'a pipe transport connects once');

    // Re-route over a new direct link. The far producer cannot move to another transport and
    // its id is taken in B's router while the stale one lives: produce on the new pipe fails.
    const rerouteAt = Date.now();
    await net.addLink('A', 'B');
    await connectPipes({ host: a, name: 'pAB', ip: net.mediaIp('A') }, { host: b, name: 'pBA', ip: net.mediaIp('B') });
    const dup = await pipeProducer({ host: a, name: 'pAB' }, { host: b, name: 'pBA' }, producerId, { consumer: 'pcA2', producer: 'ppB2' }).then(
      () => '',
      (e: Error) => e.message,
    );
    console.log(`# produce with the same id while the stale pipe producer lives: ${dup}`);
    assert.match(dup, /already exists/);
    await a.request('close', { name: 'pcA2' }).catch(() => undefined);
    // Closing the stale producer closes B's consumer of it: what a subscriber would see.
    const consumerGone = b.next('producerclose', 'cB');
    await b.request('close', { name: 'ppB' });
    await consumerGone;
    await pipeProducer({ host: a, name: 'pAB' }, { host: b, name: 'pBA' }, producerId, { consumer: 'pcA2', producer: 'ppB2' });
    const media2 = streamOf(sink, await b.request('consume', { transport: 'bOut', name: 'cB2', producerId }));
    await flowing(media2, 30, 5000, 'RTP at B over the new path');
    timings.push(['re-route after the relay died: new link + pipe pair + pipe producer + consumer → 30 RTP packets at B (key frame wait included)', Date.now() - rerouteAt]);
    console.log(`# relay killed → media again at B: ${Date.now() - killedAt} ms, of which ~1.2 s are this test's own checks`);
    assert.notEqual(media2.ssrc, media.ssrc, 'the subscriber\'s consumer is a new one (new SSRC)');

    for (const [h, n] of [[b, 'cB2'], [b, 'ppB2'], [a, 'pcA2'], [a, 'pcA'], [b, 'pBA'], [b, 'pBR'], [a, 'pAB'], [a, 'pAR'], [b, 'bOut'], [a, 'prodA'], [a, 'aIn'], [a, 'router'], [b, 'router']] as const) {
      await h.request('close', { name: n });
    }
    for (const h of [a, b]) assert.deepEqual(await leftovers(h), { routers: 0, handlers: 0, transports: 0 }, `${h.node}: worker holds nothing`);
  });
});
