import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, test } from 'node:test';
import { decodeRecord, type RtpParser } from '../src/aic/rtp/api.js';
import { Codec, codecMap, ExtForm, ExtStatus, F, findExt, MAX_EXT, OpusBandwidth, OpusMode, PayloadStatus, RECORD_SIZE, Status } from '../src/aic/rtp/layout.js';
import { DEFAULT_ADDON_PATH, layoutMismatch, loadAddon, loadRtpParser, NATIVE_MIN_BATCH } from '../src/aic/rtp/parser.js';
import { corpusPackets, CORPUS_CODECS, readStreams, rtp, syntheticPackets, withExtensions } from './rtpCorpus.js';
import { fuzzPackets } from './rtpFuzz.js';

const SEED = Number(process.env.FUZZ_SEED ?? 20261201);
const FUZZ_COUNT = 12000;
const silent = { info: (): void => {}, warn: (): void => {} };
const ts = loadRtpParser({ logger: silent, prefer: 'ts' });
const addon = loadAddon(DEFAULT_ADDON_PATH);
// nativeMinBatch 0: every batch goes to the addon, however small (the loader's default sends
// batches under NATIVE_MIN_BATCH to TypeScript, which is faster there).
const native: RtpParser | null = 'addon' in addon ? loadRtpParser({ logger: silent, nativeMinBatch: 0 }) : null;
const NATIVE_SKIP = 'error' in addon ? `native addon not loaded (${addon.error}); build it with npm run build:native` : false;
if (NATIVE_SKIP) console.log(`# rtpParser: native/TS equality SKIPPED: ${NATIVE_SKIP}`);
/** Every implementation this machine has: the known-value tests run on each. */
const impls: RtpParser[] = native ? [ts, native] : [ts];

const streams = readStreams();
const stream = (name: string): Buffer[] => streams.find((s) => s.name === name)!.packets;

/** Packs packets into one buffer at odd offsets (a gap before each), as a hook chain would. */
function pack(packets: Buffer[]): { buf: Buffer; offsets: Uint32Array; lengths: Uint32Array } {
  const offsets = new Uint32Array(packets.length);
  const lengths = new Uint32Array(packets.length);
  let size = 0;
  packets.forEach((p, i) => {
    size += 3;
    offsets[i] = size;
    lengths[i] = p.length;
    size += p.length;
  });
  const buf = Buffer.alloc(size + 3, 0xee);
  packets.forEach((p, i) => p.copy(buf, offsets[i]));
  return { buf, offsets, lengths };
}

function fieldName(slot: number): string {
  if (slot >= F.EXT_0) return `EXT_${slot - F.EXT_0}`;
  return Object.entries(F).find(([, v]) => v === slot)![0];
}

describe('rtp parser loader', () => {
  test('a missing addon falls back to the TypeScript parser, says so once, and parses', () => {
    const logs: { level: string; obj: Record<string, unknown>; msg: string }[] = [];
    const logger = {
      info: (obj: object, msg: string) => logs.push({ level: 'info', obj: obj as Record<string, unknown>, msg }),
      warn: (obj: object, msg: string) => logs.push({ level: 'warn', obj: obj as Record<string, unknown>, msg }),
    };
    const p = loadRtpParser({ logger, addonPath: '/nonexistent/auralink_rtp.node' });
    assert.equal(p.impl, 'ts');
    assert.equal(logs.length, 1);
    assert.equal(logs[0]!.level, 'warn');
    assert.equal(logs[0]!.obj.impl, 'ts');
    assert.match(String(logs[0]!.obj.reason), /Cannot find module|nonexistent/);
    const r = p.parseOne(stream('vp8')[0]!, CORPUS_CODECS);
    assert.equal(r.status, Status.OK);
    assert.equal(r.keyFrame, 1);
    assert.equal(logs.length, 1, 'parsing logs nothing');
  });

  test('an addon whose compiled layout differs from layout.ts is refused', () => {
    const fields = Object.fromEntries(Object.entries(F));
    assert.equal(layoutMismatch({ fields, recordSize: RECORD_SIZE, maxExt: MAX_EXT }), null);
    assert.match(layoutMismatch({ fields: { ...fields, SID: 99 }, recordSize: RECORD_SIZE, maxExt: MAX_EXT })!, /field SID/);
    assert.match(layoutMismatch({ fields: { ...fields, EXTRA: 70 }, recordSize: RECORD_SIZE, maxExt: MAX_EXT })!, /field EXTRA/);
    assert.match(layoutMismatch({ fields, recordSize: RECORD_SIZE + 1, maxExt: MAX_EXT })!, /record size/);
    assert.match(layoutMismatch(undefined)!, /no layout/);
  });

  test('the built addon (when it loads) is chosen and reports the same layout', { skip: NATIVE_SKIP }, () => {
    const logs: string[] = [];
    const p = loadRtpParser({ logger: { info: (_o, m) => logs.push(m), warn: (_o, m) => logs.push(`WARN ${m}`) } });
    assert.equal(p.impl, 'native');
    assert.equal(p.nativeMinBatch, NATIVE_MIN_BATCH);
    assert.deepEqual(logs, ['rtp parser: native addon']);
    // Below and above the threshold the records are the same (TS below, C above).
    const pkts = stream('h264').slice(0, NATIVE_MIN_BATCH + 1);
    const { buf, offsets, lengths } = pack(pkts);
    const small = new Int32Array(RECORD_SIZE * pkts.length);
    const big = new Int32Array(RECORD_SIZE * pkts.length);
    for (let i = 0; i < pkts.length; i++) p.parseBatch(buf, offsets.subarray(i), lengths.subarray(i), 1, small.subarray(i * RECORD_SIZE), CORPUS_CODECS);
    p.parseBatch(buf, offsets, lengths, pkts.length, big, CORPUS_CODECS);
    assert.deepEqual(small, big);
  });
});

for (const p of impls) {
  describe(`rtp parser known values (${p.impl})`, () => {
    test('VP8 key frame from ffmpeg: header, descriptor, 15-bit picture id, frame size', () => {
      const pkt = stream('vp8')[0]!;
      // Hand-decoded: 80 60 .. header (V=2, PT 96), descriptor 90 80 80 00 = X S PID0 | I | M pic 0.
      assert.equal(pkt.subarray(12, 16).toString('hex'), '90808000');
      const r = p.parseOne(pkt, CORPUS_CODECS);
      assert.equal(r.status, Status.OK);
      assert.equal(r.version, 2);
      assert.equal(r.payloadType, 96);
      assert.equal(r.sequence, pkt.readUInt16BE(2));
      assert.equal(r.timestamp, pkt.readUInt32BE(4));
      assert.equal(r.ssrc, 0x1000 + 96);
      assert.equal(r.codec, Codec.VP8);
      assert.equal(r.keyFrame, 1);
      assert.equal(r.start, 1);
      assert.equal(r.partitionId, 0);
      assert.equal(r.nonReference, 0);
      assert.equal(r.pictureId, 0);
      assert.equal(r.pictureIdBits, 15);
      assert.equal(r.tl0picidx, -1);
      assert.equal(r.tid, -1);
      assert.equal(r.descriptorLength, 4);
      assert.equal(r.width, 640);
      assert.equal(r.height, 360);
      assert.equal(r.payloadOffset, 12);
      assert.equal(r.payloadLength, pkt.length - 12);
      // A continuation packet of the same frame: not a start, not a key frame.
      const next = p.parseOne(stream('vp8')[1]!, CORPUS_CODECS);
      assert.deepEqual([next.start, next.keyFrame, next.pictureId], [0, 0, 0]);
    });

    test('VP8 with TL0PICIDX, TID/Y/KEYIDX and a 7-bit picture id', () => {
      // X=1 N=1 S=1 PID=0; I L T K; pic 0x25 (M=0); TL0PICIDX 7; TID 2 Y 1 KEYIDX 5; then a delta frame (P=1).
      const r = p.parseOne(rtp({ pt: 96, payload: [0xb0, 0xf0, 0x25, 0x07, 0xa5, 0x01, 0, 0] }), CORPUS_CODECS);
      assert.deepEqual(
        [r.nonReference, r.start, r.pictureId, r.pictureIdBits, r.tl0picidx, r.tid, r.layerSync, r.keyidx, r.keyFrame, r.descriptorLength],
        [1, 1, 0x25, 7, 7, 2, 1, 5, 0, 5],
      );
    });

    test('H264 FU-A start of an IDR and the STAP-A with SPS/PPS, from ffmpeg', () => {
      const [stap, fu] = stream('h264');
      // STAP-A: 18 = NRI 0, type 24; first NAL 0x0019 bytes, header 67 = SPS.
      assert.equal(stap!.subarray(12, 16).toString('hex'), '18001967');
      const s = p.parseOne(stap!, CORPUS_CODECS);
      assert.equal(s.nalType, 24);
      assert.equal(s.nalTypes, (1 << 6) | (1 << 7) | (1 << 8)); // SEI, SPS, PPS
      assert.equal(s.nalCount, 3);
      assert.equal(s.keyFrame, 1);
      assert.equal(s.payloadStatus, PayloadStatus.OK);
      // FU-A: indicator 7c (NRI 3, type 28), FU header 85 (S=1, E=0, type 5 IDR).
      assert.equal(fu!.subarray(12, 14).toString('hex'), '7c85');
      const f = p.parseOne(fu!, CORPUS_CODECS);
      assert.deepEqual(
        [f.nalType, f.nalTypes, f.start, f.end, f.keyFrame, f.nonReference, f.descriptorLength, f.payloadStatus],
        [28, 1 << 5, 1, 0, 1, 0, 2, 0],
      );
      // A middle fragment of the same IDR carries type 5 but does not start the key frame.
      const mid = p.parseOne(stream('h264')[2]!, CORPUS_CODECS);
      assert.deepEqual([mid.nalTypes, mid.start, mid.keyFrame], [1 << 5, 0, 0]);
    });

    test('Opus TOC: SILK wideband 20 ms mono, CELT fullband 10 ms stereo, code 3, DTX', () => {
      const silk = p.parseOne(stream('opus-voip')[0]!, CORPUS_CODECS);
      assert.equal(silk.descriptorFlags, 0x48); // config 9 << 3, s 0, c 0
      assert.deepEqual(
        [silk.opusConfig, silk.opusMode, silk.opusBandwidth, silk.opusFrameUs, silk.opusStereo, silk.opusFrameCode, silk.opusFrames, silk.dtx],
        [9, OpusMode.SILK, OpusBandwidth.WB, 20000, 0, 0, 1, 0],
      );
      const celt = p.parseOne(stream('opus-celt-stereo')[0]!, CORPUS_CODECS);
      assert.equal(celt.descriptorFlags, 0xf4); // config 30, s 1, c 0
      assert.deepEqual([celt.opusMode, celt.opusBandwidth, celt.opusFrameUs, celt.opusStereo], [OpusMode.CELT, OpusBandwidth.FB, 10000, 1]);
      // Code 3 with 3 frames of 20 ms (config 1: SILK NB 20 ms).
      const c3 = p.parseOne(rtp({ pt: 111, payload: [(1 << 3) | 3, 3, 1, 2, 3, 4] }), CORPUS_CODECS);
      assert.deepEqual([c3.opusBandwidth, c3.opusFrameCode, c3.opusFrames, c3.payloadStatus], [OpusBandwidth.NB, 3, 3, 0]);
      // 7 x 20 ms = 140 ms > 120 ms: invalid frame count.
      assert.equal(p.parseOne(rtp({ pt: 111, payload: [(1 << 3) | 3, 7, 1, 2] }), CORPUS_CODECS).payloadStatus, PayloadStatus.BAD_FRAME_COUNT);
      // A 1-byte packet (TOC only) is DTX.
      const dtx = p.parseOne(rtp({ pt: 111, payload: [0x48] }), CORPUS_CODECS);
      assert.deepEqual([dtx.dtx, dtx.opusConfig, dtx.payloadLength], [1, 9, 1]);
    });

    test('VP9: picture id, layer indices, TL0PICIDX, scalability structure, flexible mode', () => {
      // I P=0 L F=0 B E=0 V: pic 0x8123 (15 bit); TID 0 U 1 SID 0 D 0; TL0 9; SS N_S=2 Y G:
      // 320x180, 640x360, 1280x720; N_G 1: TID 0 U 0 R 1 + one P_DIFF; then data.
      const payload = [0xaa, 0x81, 0x23, 0x10, 0x09, 0x58, 0x01, 0x40, 0x00, 0xb4, 0x02, 0x80, 0x01, 0x68, 0x05, 0x00, 0x02, 0xd0, 0x01, 0x04, 0x01, 0xaa, 0xbb];
      const r = p.parseOne(rtp({ pt: 98, payload }), CORPUS_CODECS);
      assert.deepEqual(
        [r.pictureId, r.pictureIdBits, r.tid, r.layerSync, r.sid, r.interLayer, r.tl0picidx, r.keyFrame, r.start, r.end],
        [0x0123, 15, 0, 1, 0, 0, 9, 1, 1, 0],
      );
      assert.deepEqual([r.spatialLayers, r.width, r.height, r.descriptorLength, r.payloadStatus], [3, 1280, 720, 21, 0]);
      // Flexible, inter-predicted, SID 1 E: two P_DIFFs (N set on the first); not a key frame.
      const f = p.parseOne(rtp({ pt: 98, payload: [0xf4, 0x05, 0x22, 0x03, 0x04, 0xcc] }), CORPUS_CODECS);
      assert.deepEqual([f.flexible, f.interPicture, f.sid, f.tid, f.tl0picidx, f.keyFrame, f.end, f.descriptorLength], [1, 1, 1, 1, -1, 0, 1, 5]);
      // Four P_DIFFs (N set on the third) is more than the spec allows.
      assert.equal(p.parseOne(rtp({ pt: 98, payload: [0x50, 0x03, 0x03, 0x03, 0x03, 0x00] }), CORPUS_CODECS).payloadStatus, PayloadStatus.TOO_MANY_PDIFF);
      // ffmpeg's packetizer (draft 06) never sets P, so each of its frame starts reads as a key frame.
      const starts = stream('vp9').map((x) => p.parseOne(x, CORPUS_CODECS)).filter((x) => x.start === 1);
      assert.ok(starts.length > 50 && starts.every((x) => x.keyFrame === 1 && x.interPicture === 0));
    });

    test('header extensions: one-byte and two-byte forms give id, offset and length; CSRCs; padding', () => {
      const base = rtp({ pt: 111, csrcs: [0xdeadbeef, 7], payload: [0x48, 1, 2, 3], padding: 4 });
      const one = withExtensions(base, [[1, [0x30]], [10, [0x9e]], [3, [1, 2, 3]]], 'one');
      const r = p.parseOne(one, CORPUS_CODECS);
      assert.equal(r.status, Status.OK);
      assert.deepEqual([r.csrcCount, r.csrcOffset, one.readUInt32BE(r.csrcOffset)], [2, 12, 0xdeadbeef]);
      assert.deepEqual([r.extension, r.extProfile, r.extForm, r.extOffset, r.extLength, r.extStatus], [1, 0xbede, ExtForm.ONE_BYTE, 24, 8, 0]);
      assert.deepEqual(r.extensions, [
        { id: 1, offset: 25, length: 1 },
        { id: 10, offset: 27, length: 1 },
        { id: 3, offset: 29, length: 3 },
      ]);
      assert.equal(one[27], 0x9e, 'audio level value at the reported offset');
      assert.deepEqual([r.payloadOffset, r.payloadLength, r.padding, r.paddingLength, r.opusConfig], [32, 4, 1, 4, 9]);
      const two = withExtensions(base, [[1, [0x30]], [200, []], [77, new Array(20).fill(5)]], 'two');
      const t = p.parseOne(two, CORPUS_CODECS);
      assert.equal(t.extForm, ExtForm.TWO_BYTE);
      assert.deepEqual(t.extensions, [
        { id: 1, offset: 26, length: 1 },
        { id: 200, offset: 29, length: 0 },
        { id: 77, offset: 31, length: 20 },
      ]);
      // The batch accessor finds the same value offset.
      const out = new Int32Array(RECORD_SIZE);
      p.parseBatch(two, new Uint32Array([0]), new Uint32Array([two.length]), 1, out, CORPUS_CODECS);
      assert.equal(findExt(out, 0, 77), 31);
      assert.equal(findExt(out, 0, 9), -1);
      // RTX: original sequence number first.
      assert.equal(p.parseOne(rtp({ pt: 97, payload: [0x12, 0x34, 0x90] }), CORPUS_CODECS).rtxOsn, 0x1234);
    });

    test('malformed packets give a status, never a throw', () => {
      const ok = stream('vp8')[5]!;
      const cases: [string, Buffer, keyof typeof F, number][] = [
        ['empty', Buffer.alloc(0), 'STATUS', Status.TRUNCATED],
        ['11 bytes', ok.subarray(0, 11), 'STATUS', Status.TRUNCATED],
        ['version 1', Buffer.from([0x40, ...ok.subarray(1, 20)]), 'STATUS', Status.BAD_VERSION],
        ['15 CSRCs in 20 bytes', Buffer.from([0x8f, ...ok.subarray(1, 20)]), 'STATUS', Status.CSRC_OVERRUN],
        ['X set, no room for the extension header', Buffer.from([0x90, ...ok.subarray(1, 14)]), 'STATUS', Status.EXT_OVERRUN],
        ['extension longer than the packet', Buffer.from([0x90, ...ok.subarray(1, 12), 0xbe, 0xde, 0x00, 0x09, 1, 2]), 'STATUS', Status.EXT_OVERRUN],
        ['padding length 0', Buffer.from([0xa0, ...ok.subarray(1, 19), 0]), 'STATUS', Status.BAD_PADDING],
        ['padding longer than the payload', Buffer.from([0xa0, ...ok.subarray(1, 19), 200]), 'STATUS', Status.BAD_PADDING],
        ['one-byte element past the block', withExtensions(ok, [[1, [1, 2, 3, 4]]], 'one', false).fill(0x1f, 16, 17), 'EXT_STATUS', ExtStatus.ELEMENT_OVERRUN],
        ['one-byte id 15', withExtensions(ok, [[15, [1]]], 'one'), 'EXT_STATUS', ExtStatus.RESERVED_ID],
        ['17 extensions', withExtensions(ok, Array.from({ length: 17 }, (_v, i): [number, number[]] => [i + 1, [i]]), 'two'), 'EXT_STATUS', ExtStatus.TOO_MANY],
        ['VP8 X set, descriptor cut', rtp({ pt: 96, payload: [0x90] }), 'PAYLOAD_STATUS', PayloadStatus.TRUNCATED],
        ['VP8 15-bit picture id cut', rtp({ pt: 96, payload: [0x90, 0x80, 0x80] }), 'PAYLOAD_STATUS', PayloadStatus.TRUNCATED],
        ['VP8 descriptor only', rtp({ pt: 96, payload: [0x10] }), 'PAYLOAD_STATUS', PayloadStatus.NO_DATA],
        ['VP9 SS sizes cut', rtp({ pt: 98, payload: [0x0a, 0x50, 0x01] }), 'PAYLOAD_STATUS', PayloadStatus.TRUNCATED],
        ['H264 STAP-A size past the end', rtp({ pt: 102, payload: [0x18, 0x00, 0x09, 0x67] }), 'PAYLOAD_STATUS', PayloadStatus.BAD_AGGREGATE],
        ['H264 FU-A with S and E', rtp({ pt: 102, payload: [0x7c, 0xc5, 1] }), 'PAYLOAD_STATUS', PayloadStatus.BAD_FRAGMENT],
        ['H264 FU-B', rtp({ pt: 102, payload: [0x7d, 0x85, 0, 1] }), 'PAYLOAD_STATUS', PayloadStatus.UNSUPPORTED],
        ['Opus code 3 without the count byte', rtp({ pt: 111, payload: [0x4b] }), 'PAYLOAD_STATUS', PayloadStatus.TRUNCATED],
      ];
      for (const [name, pkt, field, want] of cases) {
        const r = decodeRecord(parseRecord(p, pkt), 0) as unknown as Record<string, number>;
        const key = field.toLowerCase().replace(/_([a-z])/g, (_m, c: string) => c.toUpperCase());
        assert.equal(r[key], want, `${name}: ${field}`);
        if (field !== 'STATUS') assert.equal(r.status, Status.OK, `${name}: the header stays usable`);
      }
      // A padding-only probe (payload 0 after padding) is valid and has no codec fields.
      const probe = p.parseOne(rtp({ pt: 96, payload: [], padding: 200 }), CORPUS_CODECS);
      assert.deepEqual([probe.status, probe.payloadStatus, probe.payloadLength, probe.start, probe.keyFrame], [0, 0, 0, -1, 0]);
      // A caller's offset/length outside the buffer is that packet's status, not a throw.
      const out = new Int32Array(2 * RECORD_SIZE);
      const n = p.parseBatch(ok, new Uint32Array([0, 10]), new Uint32Array([ok.length, ok.length]), 2, out, CORPUS_CODECS);
      assert.equal(n, 1);
      assert.deepEqual([out[F.STATUS], out[RECORD_SIZE + F.STATUS]], [Status.OK, Status.OUT_OF_RANGE]);
    });

    test('wrong arguments throw TypeError / RangeError before anything is written', () => {
      const out = new Int32Array(RECORD_SIZE).fill(123);
      const one = new Uint32Array([0]);
      const pkt = stream('vp8')[0]!;
      const len = new Uint32Array([pkt.length]);
      const call = (...a: unknown[]) => (p.parseBatch as (...x: unknown[]) => number)(...a);
      assert.throws(() => call('x', one, len, 1, out, CORPUS_CODECS), TypeError);
      assert.throws(() => call(pkt, [0], len, 1, out, CORPUS_CODECS), TypeError);
      assert.throws(() => call(pkt, one, len, 1, new Uint32Array(RECORD_SIZE), CORPUS_CODECS), TypeError);
      assert.throws(() => call(pkt, one, len, 1, out, {}), TypeError);
      assert.throws(() => call(pkt, one, len, 2, out, CORPUS_CODECS), RangeError);
      assert.throws(() => call(pkt, one, len, 1.5, out, CORPUS_CODECS), RangeError);
      assert.throws(() => call(pkt, one, len, -1, out, CORPUS_CODECS), RangeError);
      assert.throws(() => call(pkt, one, len, 1, new Int32Array(RECORD_SIZE - 1), CORPUS_CODECS), RangeError);
      assert.throws(() => call(pkt, one, len, 1, out, new Uint8Array(127)), RangeError);
      assert.ok(out.every((v) => v === 123));
      assert.throws(() => codecMap({ 128: 'vp8' }), RangeError);
    });
  });
}

function parseRecord(p: RtpParser, pkt: Buffer): Int32Array {
  const out = new Int32Array(RECORD_SIZE);
  p.parseBatch(pkt, new Uint32Array([0]), new Uint32Array([pkt.length]), 1, out, CORPUS_CODECS);
  return out;
}

describe('rtp parser on the corpus and fuzzed packets', () => {
  const corpus = corpusPackets();
  // Half the mutations start from the hand-built descriptors, which the ffmpeg corpus lacks.
  const synthetic = syntheticPackets();
  const fuzz = [...fuzzPackets(SEED, FUZZ_COUNT / 2, corpus), ...fuzzPackets(SEED + 1, FUZZ_COUNT / 2, synthetic)];

  test('the fuzz set reaches the error paths (so equality on it means something)', () => {
    const out = new Int32Array(fuzz.length * RECORD_SIZE);
    const { buf, offsets, lengths } = pack(fuzz);
    ts.parseBatch(buf, offsets, lengths, fuzz.length, out, CORPUS_CODECS);
    const seen = (field: number): Set<number> => new Set(Array.from({ length: fuzz.length }, (_v, i) => out[i * RECORD_SIZE + field]!));
    const status = seen(F.STATUS);
    const payload = seen(F.PAYLOAD_STATUS);
    const ext = seen(F.EXT_STATUS);
    for (const s of [Status.OK, Status.TRUNCATED, Status.BAD_VERSION, Status.CSRC_OVERRUN, Status.EXT_OVERRUN, Status.BAD_PADDING]) assert.ok(status.has(s), `status ${s}`);
    for (const s of [PayloadStatus.OK, PayloadStatus.TRUNCATED, PayloadStatus.UNSUPPORTED, PayloadStatus.BAD_AGGREGATE]) assert.ok(payload.has(s), `payload status ${s}`);
    for (const s of [ExtStatus.OK, ExtStatus.ELEMENT_OVERRUN, ExtStatus.RESERVED_ID]) assert.ok(ext.has(s), `ext status ${s}`);
    assert.ok(seen(F.CODEC).size >= 5, 'every codec parser is fed mutated payloads');
  });

  test('every valid record stays inside its packet (TypeScript parser, corpus + fuzz)', () => {
    const all = [...corpus, ...fuzz];
    const out = new Int32Array(all.length * RECORD_SIZE);
    const { buf, offsets, lengths } = pack(all);
    const valid = ts.parseBatch(buf, offsets, lengths, all.length, out, CORPUS_CODECS);
    assert.ok(valid > corpus.length, `${valid} valid`);
    // Every slot is written: a record does not depend on what the array held before.
    const dirty = new Int32Array(out.length).fill(-0x21524111);
    ts.parseBatch(buf, offsets, lengths, all.length, dirty, CORPUS_CODECS);
    assert.deepEqual(dirty, out);
    for (let i = 0; i < all.length; i++) {
      const b = i * RECORD_SIZE;
      if (out[b + F.STATUS] !== Status.OK) continue;
      const len = lengths[i]!;
      assert.equal(out[b + F.PAYLOAD_OFFSET]! + out[b + F.PAYLOAD_LENGTH]! + out[b + F.PADDING_LENGTH]!, len, `packet ${i} sizes add up`);
      for (let e = 0; e < out[b + F.EXT_COUNT]!; e++) {
        const v = out[b + F.EXT_0 + e]! >>> 0;
        assert.ok((v & 0xffff) + ((v >>> 16) & 0xff) <= out[b + F.PAYLOAD_OFFSET]!, `packet ${i} extension ${e} inside the header`);
      }
      assert.ok(out[b + F.DESCRIPTOR_LENGTH]! <= out[b + F.PAYLOAD_LENGTH]!, `packet ${i} descriptor inside the payload`);
    }
  });

  test(`native and TypeScript records are equal, field for field (${FUZZ_COUNT} fuzzed + corpus)`, { skip: NATIVE_SKIP }, () => {
    const all = [...corpus, ...synthetic, ...fuzz];
    assert.ok(corpus.length > 2000 && fuzz.length >= 10000);
    const { buf, offsets, lengths } = pack(all);
    // Batches of varied size over one buffer; native writes over garbage, TS over zeros,
    // so a slot either side forgets to write shows up.
    const a = new Int32Array(all.length * RECORD_SIZE);
    const b = new Int32Array(all.length * RECORD_SIZE).fill(0x5eadbeef);
    const rnd = ((s) => () => (s = (s * 1103515245 + 12345) >>> 0) / 2 ** 32)(SEED);
    let validA = 0;
    let validB = 0;
    for (let i = 0; i < all.length; ) {
      const n = Math.min(all.length - i, 1 + Math.floor(rnd() * 300));
      const o = offsets.subarray(i);
      const l = lengths.subarray(i);
      validA += ts.parseBatch(buf, o, l, n, a.subarray(i * RECORD_SIZE), CORPUS_CODECS);
      validB += native!.parseBatch(buf, o, l, n, b.subarray(i * RECORD_SIZE), CORPUS_CODECS);
      i += n;
    }
    assert.equal(validB, validA);
    for (let i = 0; i < all.length; i++) {
      for (let f = 0; f < RECORD_SIZE; f++) {
        const x = a[i * RECORD_SIZE + f];
        const y = b[i * RECORD_SIZE + f];
        if (x !== y) assert.fail(`packet ${i} (${all[i]!.subarray(0, 24).toString('hex')}): ${fieldName(f)} ts ${x} native ${y}`);
      }
    }
  });
});

describe('rtp parser C code memory safety', () => {
  const gcc = spawnSync('gcc', ['--version']).status === 0;
  test('parse.c under AddressSanitizer + UBSan: corpus, fuzz set, truncations, mutations', { skip: gcc ? false : 'gcc not installed' }, () => {
    const script = fileURLToPath(new URL('../../native/rtp/test/sanitize.sh', import.meta.url));
    const r = spawnSync('bash', [script, '5'], { encoding: 'utf8', timeout: 110_000 });
    assert.equal(r.status, 0, `${r.stdout}\n${r.stderr.slice(-3000)}`);
    assert.match(r.stdout, /sanitize: \d+ packets, \d+ parses, no sanitizer report/);
  });
});
