// What an RTP hook tapping a producer through a mediasoup DirectTransport actually receives:
// real corpus packets with WebRTC-style header extensions go into a PlainTransport producer,
// come out of a DirectTransport consumer's 'rtp' event, and are parsed with the RTP parser.
// docs/AIC.md ("RTP parsing") states these results; this test keeps them true for mediasoup 3.12.
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { after, before, describe, test } from 'node:test';
import * as mediasoup from 'mediasoup';
import type { types } from 'mediasoup';
import { codecMap, ExtForm, F, RECORD_SIZE, Status } from '../src/aic/rtp/layout.js';
import { loadRtpParser } from '../src/aic/rtp/parser.js';
import { readStreams, withExtensions } from './rtpCorpus.js';

const URI = {
  mid: 'urn:ietf:params:rtp-hdrext:sdes:mid',
  rid: 'urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id',
  absSendTime: 'http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time',
  twcc: 'http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01',
  audioLevel: 'urn:ietf:params:rtp-hdrext:ssrc-audio-level',
  orientation: 'urn:3gpp:video-orientation',
  toffset: 'urn:ietf:params:rtp-hdrext:toffset',
  absCaptureTime: 'http://www.webrtc.org/experiments/rtp-hdrext/abs-capture-time',
  playoutDelay: 'http://www.webrtc.org/experiments/rtp-hdrext/playout-delay',
} as const;

// The publisher's ids: deliberately not mediasoup's own, to see them remapped.
const PUB_IDS: Record<keyof typeof URI, number> = { mid: 9, rid: 8, absSendTime: 7, twcc: 6, audioLevel: 5, orientation: 4, toffset: 3, absCaptureTime: 2, playoutDelay: 14 };

interface Tapped {
  packets: Buffer[];
  consumer: types.Consumer;
}

describe('RTP through a mediasoup 3.12 DirectTransport tap', () => {
  let worker: types.Worker;
  let router: types.Router;
  const parser = loadRtpParser({ logger: { info: () => {}, warn: () => {} } });
  const sock = dgram.createSocket('udp4');

  before(async () => {
    worker = await mediasoup.createWorker({ logLevel: 'warn', rtcMinPort: 47000, rtcMaxPort: 47999 });
    router = await worker.createRouter({
      mediaCodecs: [
        { kind: 'audio', mimeType: 'audio/opus', clockRate: 48000, channels: 2 },
        { kind: 'video', mimeType: 'video/VP8', clockRate: 90000 },
      ],
    });
    await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
  });
  after(async () => {
    sock.close();
    worker.close();
  });

  /** Sends `packets` (with the publisher's extensions) into a producer and collects the tap's output. */
  async function tap(kind: 'audio' | 'video', packets: Buffer[], exts: (keyof typeof URI)[]): Promise<Tapped> {
    const plain = await router.createPlainTransport({ listenIp: '127.0.0.1', rtcpMux: true, comedia: true });
    const pt = kind === 'video' ? 96 : 111;
    const producer = await plain.produce({
      kind,
      rtpParameters: {
        codecs: [kind === 'video' ? { mimeType: 'video/VP8', payloadType: pt, clockRate: 90000 } : { mimeType: 'audio/opus', payloadType: pt, clockRate: 48000, channels: 2 }],
        encodings: [{ ssrc: packets[0]!.readUInt32BE(8) }],
        headerExtensions: exts.map((e) => ({ uri: URI[e] as types.RtpHeaderExtensionParameters['uri'], id: PUB_IDS[e] })),
      },
    });
    const direct = await router.createDirectTransport();
    const consumer = await direct.consume({ producerId: producer.id, rtpCapabilities: router.rtpCapabilities });
    const got: Buffer[] = [];
    consumer.on('rtp', (b: Buffer) => got.push(Buffer.from(b)));
    for (const p of packets) {
      await new Promise<void>((r) => sock.send(p, plain.tuple.localPort, '127.0.0.1', () => r()));
    }
    const deadline = Date.now() + 3000;
    while (got.length < packets.length * 0.9 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    direct.close();
    plain.close();
    return { packets: got, consumer };
  }

  function extIds(t: Tapped): { ids: Map<number, number>; forms: Set<number>; pts: Set<number>; records: Int32Array; n: number } {
    const codecs = codecMap(Object.fromEntries(t.consumer.rtpParameters.codecs.map((c) => [c.payloadType, c.mimeType.toLowerCase() === 'video/vp8' ? 'vp8' : c.mimeType.toLowerCase() === 'audio/opus' ? 'opus' : 'rtx'])));
    const out = new Int32Array(RECORD_SIZE * t.packets.length);
    const ids = new Map<number, number>();
    const forms = new Set<number>();
    const pts = new Set<number>();
    t.packets.forEach((p, i) => {
      parser.parseBatch(p, new Uint32Array([0]), new Uint32Array([p.length]), 1, out.subarray(i * RECORD_SIZE), codecs);
      const b = i * RECORD_SIZE;
      assert.equal(out[b + F.STATUS], Status.OK);
      forms.add(out[b + F.EXT_FORM]!);
      pts.add(out[b + F.PAYLOAD_TYPE]!);
      for (let e = 0; e < out[b + F.EXT_COUNT]!; e++) {
        const v = out[b + F.EXT_0 + e]! >>> 0;
        ids.set(v >>> 24, (v >>> 16) & 0xff);
      }
    });
    return { ids, forms, pts, records: out, n: t.packets.length };
  }

  const mediasoupId = (t: Tapped, uri: string): number | undefined => t.consumer.rtpParameters.headerExtensions?.find((h) => h.uri === uri)?.id;

  test('video: mid, abs-send-time (rewritten), transport-cc (zero), video-orientation and toffset arrive, one-byte form, mediasoup ids; rid and unknown extensions do not', async () => {
    const exts: (keyof typeof URI)[] = ['mid', 'rid', 'absSendTime', 'twcc', 'orientation', 'toffset', 'playoutDelay'];
    const vp8 = readStreams().find((s) => s.name === 'vp8')!.packets.slice(0, 120);
    const sent = vp8.map((p, i) =>
      withExtensions(p, [
        [PUB_IDS.mid, [0x30]],
        [PUB_IDS.rid, [0x68]],
        [PUB_IDS.absSendTime, [0x12, 0x34, 0x56]],
        [PUB_IDS.twcc, [0xab, 0xcd]], // constant: mediasoup's counter is told apart
        [PUB_IDS.orientation, [0x01]], // 90 degrees
        [PUB_IDS.toffset, [0, 0, 7]],
        [PUB_IDS.playoutDelay, [0, 0x10, 0x20]],
      ], i % 2 ? 'two' : 'one'),
    );
    const t = await tap('video', sent, exts);
    assert.ok(t.packets.length >= 100, `${t.packets.length} packets tapped`);
    const r = extIds(t);
    assert.deepEqual([...r.forms], [ExtForm.ONE_BYTE], 'mediasoup re-writes every packet in the one-byte form');
    const want = [URI.mid, URI.absSendTime, URI.twcc, URI.orientation, URI.toffset].map((u) => mediasoupId(t, u));
    assert.ok(want.every((id) => id !== undefined), 'the consumer negotiated them');
    assert.deepEqual([...r.ids.keys()].sort((a, b) => a - b), [...(want as number[])].sort((a, b) => a - b));
    assert.equal(mediasoupId(t, URI.rid), undefined, 'rid is not even negotiated for the consumer');
    // Both are rewritten by the sending transport, a DirectTransport too: abs-send-time with
    // mediasoup's send time, transport-cc with the transport's own counter (mediasoup gives
    // any transport whose consumer negotiated transport-cc a TCC client). Never the publisher's.
    const absId = mediasoupId(t, URI.absSendTime)!;
    const twccId = mediasoupId(t, URI.twcc)!;
    let publisherAbs = 0;
    const twcc: number[] = [];
    for (let i = 0; i < r.n; i++) {
      const b = i * RECORD_SIZE;
      for (let e = 0; e < r.records[b + F.EXT_COUNT]!; e++) {
        const v = r.records[b + F.EXT_0 + e]! >>> 0;
        const id = v >>> 24;
        const value = t.packets[i]!.subarray(v & 0xffff, (v & 0xffff) + ((v >>> 16) & 0xff));
        if (id === twccId) twcc.push(value.readUInt16BE(0));
        if (id === absId && value.toString('hex') === '123456') publisherAbs++;
        if (id === mediasoupId(t, URI.orientation)) assert.equal(value[0], 0x01, 'video-orientation value kept');
        if (id === mediasoupId(t, URI.toffset)) assert.equal(value.toString('hex'), '000007', 'toffset value kept');
        if (id === mediasoupId(t, URI.mid)) assert.equal(value.toString(), t.consumer.rtpParameters.mid, 'mid is the consumer\'s');
      }
    }
    console.log(`# transport-cc on the tap: ${twcc.slice(0, 12).join(' ')} ...`);
    assert.ok(twcc.length === r.n && twcc.every((v, i) => v !== 0xabcd && (i === 0 || v > twcc[i - 1]!)), 'transport-cc: the tap transport\'s own increasing counter');
    assert.ok(publisherAbs < r.n / 2, `abs-send-time rewritten (${publisherAbs} of ${r.n} kept the publisher's value)`);
    // Payload type and SSRC are the consumer's.
    assert.deepEqual([...r.pts], [t.consumer.rtpParameters.codecs[0]!.payloadType]);
    assert.equal(r.records[F.SSRC]! >>> 0, t.consumer.rtpParameters.encodings![0]!.ssrc);
    // The VP8 payload descriptor survives: key frame and picture ids parse.
    assert.ok(Array.from({ length: r.n }, (_v, i) => r.records[i * RECORD_SIZE + F.KEY_FRAME]).includes(1));
  });

  test('audio: mid, ssrc-audio-level (value kept) and abs-capture-time arrive; abs-send-time and transport-cc are not added', async () => {
    const exts: (keyof typeof URI)[] = ['mid', 'audioLevel', 'absCaptureTime', 'absSendTime', 'twcc'];
    const opus = readStreams().find((s) => s.name === 'opus-voip')!.packets.slice(0, 60);
    const sent = opus.map((p, i) =>
      withExtensions(p, [
        [PUB_IDS.mid, [0x31]],
        [PUB_IDS.audioLevel, [0x80 | (i % 127)]],
        [PUB_IDS.absCaptureTime, [1, 2, 3, 4, 5, 6, 7, 8]],
        [PUB_IDS.absSendTime, [1, 2, 3]],
        [PUB_IDS.twcc, [0, i]],
      ], 'one'),
    );
    const t = await tap('audio', sent, exts);
    assert.ok(t.packets.length >= 50, `${t.packets.length} packets tapped`);
    const r = extIds(t);
    const level = mediasoupId(t, URI.audioLevel)!;
    const capture = mediasoupId(t, URI.absCaptureTime)!;
    assert.deepEqual([...r.ids.keys()].sort((a, b) => a - b), [mediasoupId(t, URI.mid)!, level, capture].sort((a, b) => a - b));
    for (let i = 0; i < r.n; i++) {
      const b = i * RECORD_SIZE;
      for (let e = 0; e < r.records[b + F.EXT_COUNT]!; e++) {
        const v = r.records[b + F.EXT_0 + e]! >>> 0;
        if (v >>> 24 !== level) continue;
        const seq = t.packets[i]!.readUInt16BE(2) - t.packets[0]!.readUInt16BE(2);
        assert.ok(t.packets[i]![v & 0xffff]! & 0x80, 'voice activity bit kept');
        assert.ok(seq >= 0);
      }
    }
    assert.equal(r.records[F.OPUS_CONFIG], 9, 'the Opus TOC is untouched');
  });
});
