import { createSocket, type Socket } from 'node:dgram';
import { after } from 'node:test';
import type { SignalClient } from '../src/client/signalClient.js';
import { eventually, sleep, type TestServer } from './helpers.js';

// Plain-RTP clients for the cascade tests (no WebRTC stack): a subscriber is a UDP socket a
// consuming plain transport sends to; a publisher sends RTP from its own socket to a producing
// plain transport (comedia, rtcpMux: the SFU's RTCP for it comes back to that socket).

/** RTCP payload types 72–76 (SR, RR, SDES, BYE, APP) in the second byte, marker bit aside. */
export const isRtp = (m: Buffer): boolean => (m[1]! & 0x7f) < 72 || (m[1]! & 0x7f) > 76;

export interface PlainSubscriber {
  got: Buffer[];
  consumerId: string;
  consumerIds: string[];
  /** Each consumer's SSRC, in the order of the producer ids. */
  ssrcs: number[];
  sock: Socket;
  /** Sends an RTCP PLI for the i-th consumer from the subscriber's socket (what a decoder does on a loss). */
  pli(i?: number): void;
  /** Consumes (again, e.g. after the producer was announced anew) on the same transport; resolves with the consumer id. */
  consume(producerId: string): Promise<string>;
}

/**
 * What a plain-RTP receiver can take of the router's capabilities: everything but bandwidth
 * estimation (transport-cc, REMB). It sends no such feedback, and a consumer that negotiated
 * it would have its layers chosen by an estimate that never moves past its initial value:
 * a simulcast consumer whose layers all cost more than that ends with no layer at all.
 */
export function plainReceiverCapabilities(routerCaps: string): string {
  const caps = JSON.parse(routerCaps) as { codecs?: { rtcpFeedback?: { type: string }[] }[]; headerExtensions?: { uri: string }[] };
  const bwe = new Set(['transport-cc', 'goog-remb']);
  for (const c of caps.codecs ?? []) c.rtcpFeedback = (c.rtcpFeedback ?? []).filter((f) => !bwe.has(f.type));
  caps.headerExtensions = (caps.headerExtensions ?? []).filter((h) => !/transport-wide-cc|abs-send-time/.test(h.uri));
  return JSON.stringify(caps);
}

/** A plain-RTP subscriber: a UDP socket, a consuming plain transport to it, its consumers of `producerIds` (resumed). */
export async function plainSubscriber(c: SignalClient, ...producerIds: string[]): Promise<PlainSubscriber> {
  const sock = createSocket('udp4');
  const got: Buffer[] = [];
  sock.on('message', (m) => {
    if (isRtp(m)) got.push(m);
  });
  await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
  const recv = (await c.request('createTransport', { consuming: true, plain: true })).transport!;
  await c.request('connectTransport', { transportId: recv.id, plainIp: '127.0.0.1', plainPort: sock.address().port });
  const caps = plainReceiverCapabilities(await c.routerCapabilities());
  const ids: string[] = [];
  const ssrcs: number[] = [];
  const consume = async (producerId: string): Promise<string> => {
    const consumer = (await c.request('consume', { producerId, transportId: recv.id, rtpCapabilities: caps })).consumer!;
    await c.request('resumeConsumer', { consumerId: consumer.id });
    ids.push(consumer.id);
    ssrcs.push((JSON.parse(consumer.rtpParameters) as { encodings: { ssrc: number }[] }).encodings[0]!.ssrc);
    return consumer.id;
  };
  for (const producerId of producerIds) await consume(producerId);
  const pli = (i = 0): void => {
    const p = Buffer.alloc(12);
    p[0] = 0x81; // V=2, FMT=1 (PLI)
    p[1] = 206; // PSFB
    p.writeUInt16BE(2, 2);
    p.writeUInt32BE(0x5ee0 + i, 4);
    p.writeUInt32BE(ssrcs[i]!, 8);
    sock.send(p, recv.plainPort!, recv.plainIp!);
  };
  return { got, consumerId: ids[0]!, consumerIds: ids, ssrcs, sock, pli, consume };
}

/**
 * plainSubscriber for a test file: every socket it opens that is still open at the end of the
 * file (a test failed half-way) is closed then; an open one keeps the process alive until the
 * runner's timeout.
 */
export function closingSubscribers(): (...args: Parameters<typeof plainSubscriber>) => Promise<PlainSubscriber> {
  const open = new Set<Socket>();
  after(() => {
    for (const s of open) s.close();
  });
  return async (...args) => {
    const s = await plainSubscriber(...args);
    open.add(s.sock);
    s.sock.once('close', () => open.delete(s.sock));
    return s;
  };
}

/** Sends opus-shaped RTP to a producing plain transport until stopped. */
export function rtpSource(ip: string, port: number, ssrc: number): { stop(): void } {
  const src = createSocket('udp4');
  let seq = 0;
  const timer = setInterval(() => {
    const pkt = Buffer.alloc(12 + 40, 7);
    pkt[0] = 0x80;
    pkt[1] = 111;
    pkt.writeUInt16BE(seq & 0xffff, 2);
    pkt.writeUInt32BE((960 * seq) >>> 0, 4);
    pkt.writeUInt32BE(ssrc, 8);
    seq++;
    src.send(pkt, port, ip);
  }, 10);
  return {
    stop() {
      clearInterval(timer);
      src.close();
    },
  };
}

/** A VP8 producer's parameters for a plain-RTP publisher: PLI and FIR feedback, one stream. */
export const vp8 = (ssrc: number): string =>
  JSON.stringify({
    codecs: [{ mimeType: 'video/VP8', payloadType: 96, clockRate: 90000, rtcpFeedback: [{ type: 'nack' }, { type: 'nack', parameter: 'pli' }, { type: 'ccm', parameter: 'fir' }] }],
    headerExtensions: [],
    encodings: [{ ssrc }],
    rtcp: { cname: `v${ssrc}` },
  });

export interface Vp8KeyFrameSource {
  /** PLI and FIR packets the SFU sent this publisher so far. */
  readonly keyFrameRequests: number;
  stop(): void;
}

/**
 * A VP8 publisher as a browser behaves towards key-frame requests: ~30 one-packet frames a
 * second, and a key frame at once for every PLI or FIR the SFU sends it (so each request the
 * SFU lets through costs a key frame). Sends from one socket: comedia learns it, and rtcpMux
 * brings the SFU's RTCP back to it, where the requests are counted.
 */
export async function vp8KeyFrameSource(ip: string, port: number, ssrc: number): Promise<Vp8KeyFrameSource> {
  const sock = createSocket('udp4');
  await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
  let seq = 0;
  let frame = 0;
  let requests = 0;
  const send = (key: boolean): void => {
    const pkt = Buffer.alloc(12 + 3 + 60, 0);
    pkt[0] = 0x80;
    pkt[1] = 0x80 | 96; // marker: one packet per frame
    pkt.writeUInt16BE(seq++ & 0xffff, 2);
    pkt.writeUInt32BE((3000 * frame++) >>> 0, 4);
    pkt.writeUInt32BE(ssrc, 8);
    pkt[12] = 0x90; // VP8 payload descriptor: X, S, partition 0
    pkt[13] = 0x00; // no picture id / TL0PICIDX / TID
    pkt[14] = key ? 0x00 : 0x01; // VP8 payload header: P bit clear = key frame
    sock.send(pkt, port, ip);
  };
  sock.on('message', (m) => {
    if (m[1]! < 192 || m[1]! > 223) return; // RTCP only (RFC 5761 payload types)
    // A compound RTCP packet: walk its packets (length in 32-bit words minus one).
    for (let off = 0; off + 4 <= m.length; off += (m.readUInt16BE(off + 2) + 1) * 4) {
      const fmt = m[off]! & 0x1f;
      if (m[off + 1] === 206 && (fmt === 1 || fmt === 4)) {
        requests++;
        send(true);
      }
    }
  });
  send(true);
  const timer = setInterval(() => send(false), 33);
  return {
    get keyFrameRequests() {
      return requests;
    },
    stop() {
      clearInterval(timer);
      sock.close();
    },
  };
}

let nextSsrc = 30_000;

export interface StormOptions {
  /** Viewers per subscribing node. */
  viewers: number;
  /** How long every viewer keeps asking (a PLI every 50 ms each). */
  windowMs: number;
  /** Waited before the window, so the viewers' first requests (each consumer asks once when made) are over. */
  settleMs: number;
}

/**
 * A VP8 publisher (vp8KeyFrameSource) on `pub`, `viewers` plain-RTP viewers on each of `subs`
 * receiving it; then for `windowMs` every viewer sends a PLI every 50 ms. Resolves with the
 * key-frame requests the publisher got in that window (and 100 ms after, for those in flight).
 */
export async function requestStorm(pub: TestServer, subs: TestServer[], room: string, o: StormOptions): Promise<number> {
  const ssrc = nextSsrc++;
  const alice = await pub.client('storm-pub', room);
  const send = (await alice.request('createTransport', { producing: true, plain: true })).transport!;
  const producerId = (await alice.request('produce', { transportId: send.id, kind: 'video', rtpParameters: vp8(ssrc) })).id!;
  const source = await vp8KeyFrameSource(send.plainIp!, send.plainPort!, ssrc);
  const clients: SignalClient[] = [];
  const viewers: PlainSubscriber[] = [];
  try {
    for (const [n, sub] of subs.entries()) {
      for (let i = 0; i < o.viewers; i++) {
        const c = await sub.client(`storm-viewer${n}-${i}`, room);
        clients.push(c);
        viewers.push(await plainSubscriber(c, producerId));
      }
    }
    await eventually(() => viewers.every((v) => v.got.length >= 5), 10_000, 'every viewer receives the video');
    await sleep(o.settleMs);
    const before = source.keyFrameRequests;
    const storm = setInterval(() => viewers.forEach((v) => v.pli()), 50);
    await sleep(o.windowMs);
    clearInterval(storm);
    await sleep(100);
    return source.keyFrameRequests - before;
  } finally {
    source.stop();
    for (const v of viewers) v.sock.close();
    await Promise.all(clients.map((c) => c.leave()));
    await alice.leave();
  }
}
