/**
 * The parser interface both implementations offer, and what is built on it once for both:
 * argument checks (caller mistakes throw; packet contents never do) and parseOne.
 */
import { F, MAX_EXT, RECORD_SIZE, type CodecMap, type FieldName } from './layout.js';

/**
 * Parses packets buf[offsets[i], offsets[i] + lengths[i]) for i < count into
 * out[i * RECORD_SIZE ..] (see layout.ts). Returns how many have STATUS == OK.
 * Throws TypeError / RangeError only for wrong arguments (types, count beyond the arrays).
 */
export type ParseBatch = (buf: Uint8Array, offsets: Uint32Array, lengths: Uint32Array, count: number, out: Int32Array, codecs: CodecMap) => number;

export interface BatchParser {
  /** Which implementation the loader picked: 'native' when the addon loaded. */
  readonly impl: 'native' | 'ts';
  readonly parseBatch: ParseBatch;
  /** With impl 'native': smaller batches run in TypeScript (faster there, see parser.ts). */
  readonly nativeMinBatch?: number;
}

export interface RtpExtension {
  id: number;
  offset: number;
  length: number;
}

/** A record as an object (camelCase field names), for tests and tooling, not the hot path. */
export type ParsedRtp = { [K in FieldName as CamelCase<K>]: number } & { extensions: RtpExtension[] };

type CamelCase<S extends string> = S extends `${infer H}_${infer T}` ? `${Lowercase<H>}${Capitalize<CamelCase<Lowercase<T>>>}` : Lowercase<S>;

export interface RtpParser extends BatchParser {
  parseOne(packet: Uint8Array, codecs: CodecMap): ParsedRtp;
}

export function checkBatchArgs(buf: unknown, offsets: unknown, lengths: unknown, count: number, out: unknown, codecs: unknown): void {
  if (!(buf instanceof Uint8Array)) throw new TypeError('buf must be a Uint8Array or Buffer');
  if (!(offsets instanceof Uint32Array) || !(lengths instanceof Uint32Array)) throw new TypeError('offsets and lengths must be Uint32Arrays');
  if (!(out instanceof Int32Array)) throw new TypeError('out must be an Int32Array');
  if (!(codecs instanceof Uint8Array)) throw new TypeError('codecs must be a Uint8Array (codecMap)');
  if (!Number.isInteger(count) || count < 0) throw new RangeError('count must be a non-negative integer');
  if (count > offsets.length || count > lengths.length) throw new RangeError('count exceeds offsets/lengths');
  if (count * RECORD_SIZE > out.length) throw new RangeError(`out holds fewer than count records of ${RECORD_SIZE} slots`);
  if (codecs.length < 128) throw new RangeError('codecs must have 128 entries (payload types 0-127)');
}

const NAMES = (Object.keys(F) as FieldName[]).filter((k) => k !== 'EXT_0');
const KEYS = NAMES.map((k) => k.toLowerCase().replace(/_([a-z0-9])/g, (_m, c: string) => c.toUpperCase()));
const UNSIGNED = new Set<string>(['TIMESTAMP', 'SSRC', 'NAL_TYPES']);

/** The record at `base` as an object; 32-bit RTP fields as unsigned numbers. */
export function decodeRecord(out: Int32Array, base: number): ParsedRtp {
  const o: Record<string, unknown> = {};
  for (let i = 0; i < NAMES.length; i++) {
    const v = out[base + F[NAMES[i]!]]!;
    o[KEYS[i]!] = UNSIGNED.has(NAMES[i]!) ? v >>> 0 : v;
  }
  const exts: RtpExtension[] = [];
  const n = Math.min(out[base + F.EXT_COUNT]!, MAX_EXT);
  for (let i = 0; i < n; i++) {
    const v = out[base + F.EXT_0 + i]! >>> 0;
    exts.push({ id: v >>> 24, length: (v >>> 16) & 0xff, offset: v & 0xffff });
  }
  o.extensions = exts;
  return o as ParsedRtp;
}

/** Adds parseOne (one packet through the batch path) to a batch parser. */
export function withParseOne(p: BatchParser): RtpParser {
  const offsets = new Uint32Array(1);
  const lengths = new Uint32Array(1);
  const out = new Int32Array(RECORD_SIZE);
  return {
    impl: p.impl,
    parseBatch: p.parseBatch,
    ...(p.nativeMinBatch === undefined ? {} : { nativeMinBatch: p.nativeMinBatch }),
    parseOne(packet: Uint8Array, codecs: CodecMap): ParsedRtp {
      lengths[0] = packet.length;
      p.parseBatch(packet, offsets, lengths, 1, out, codecs);
      return decodeRecord(out, 0);
    },
  };
}
