import protobuf from 'protobufjs/light.js';
import { Packr } from 'msgpackr';
import { descriptor } from './gen/descriptor.js';
import { jsonDeeperThan, msgpackDeeperThan } from '../util/nesting.js';
import type { ServerMessage } from './messages.js';
import { protoServerEncoder } from './protoServer.js';

export type Encoding = 'proto' | 'msgpack' | 'json';
export const ENCODINGS: readonly Encoding[] = ['proto', 'msgpack', 'json'];

/** WebSocket subprotocol names; a client that offers none gets protobuf. */
export const SUBPROTOCOL: Record<Encoding, string> = {
  proto: 'auralink.v1.proto',
  msgpack: 'auralink.v1.msgpack',
  json: 'auralink.v1.json',
};

// Clients send a handful of distinct headers: each is parsed once (bounded, so a client
// sending a new one per upgrade costs a parse, not memory).
const negotiated = new Map<string, { encoding: Encoding; subprotocol: string } | null>();

export function encodingForSubprotocols(header: string | undefined): { encoding: Encoding; subprotocol: string } | null {
  if (!header) return { encoding: 'proto', subprotocol: '' };
  const known = negotiated.get(header);
  if (known !== undefined) return known;
  const found = parseSubprotocols(header);
  if (negotiated.size < 64) negotiated.set(header, found);
  return found;
}

function parseSubprotocols(header: string): { encoding: Encoding; subprotocol: string } | null {
  const offered = header.split(',').map((s) => s.trim());
  for (const name of offered) {
    for (const enc of ENCODINGS) if (SUBPROTOCOL[enc] === name) return { encoding: enc, subprotocol: name };
  }
  return null;
}

/** The bytes of a frame could not be turned into an object in the connection's encoding. */
export class DecodeError extends Error {
  override name = 'DecodeError';
}

const root = protobuf.Root.fromJSON(descriptor as unknown as protobuf.INamespace);
// protobufjs generates a type's encoder and decoder on its first use: ~20 ms inside the first
// join after start (a CPU profile showed it). Generate them all at load instead.
(function setupAll(ns: protobuf.NamespaceBase): void {
  for (const o of ns.nestedArray) {
    if (o instanceof protobuf.Type) o.setup();
    if (o instanceof protobuf.Namespace) setupAll(o); // a Type is a Namespace too (nested types)
  }
})(root);
const RequestType = root.lookupType('auralink.v1.Request');
const ServerMessageType = root.lookupType('auralink.v1.ServerMessage');
const encodeServerProto = protoServerEncoder(root);
const toObjectOpts: protobuf.IConversionOptions = { enums: String, longs: Number, defaults: false, oneofs: false };

// Plain MessagePack maps (no msgpackr records) so any MessagePack library can talk to us.
const packr = new Packr({ useRecords: false, mapsAsObjects: true, moreTypes: false });

const textDecoder = new TextDecoder('utf-8', { fatal: true });

/**
 * Deepest nesting a JSON or MessagePack request frame may have, checked before decoding. The deepest
 * legitimate request is linkReport: request {1} > linkReport {2} > rtts [3] > entry {4}
 * (relay's candidate is 3); twice that leaves room for new fields. Deeper frames were refused
 * only by overflowing the decoder's stack. (Protobuf nests only as deep as its schema.)
 */
export const MAX_DEPTH = 8;
const tooDeep = (): DecodeError => new DecodeError(`nesting deeper than ${MAX_DEPTH} levels (the deepest request has 4)`);

function toBase64(u8: Uint8Array): string {
  if (typeof Buffer !== 'undefined') return Buffer.from(u8.buffer, u8.byteOffset, u8.byteLength).toString('base64');
  let s = '';
  for (let i = 0; i < u8.length; i++) s += String.fromCharCode(u8[i]!);
  return btoa(s);
}

export function fromBase64(s: string): Uint8Array {
  if (typeof Buffer !== 'undefined') return Buffer.from(s, 'base64');
  const bin = atob(s);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

// Buffer#toJSON runs before a replacer sees the value, so look at the holder's original.
function jsonReplacer(this: Record<string, unknown>, key: string, value: unknown): unknown {
  const orig = this[key];
  return orig instanceof Uint8Array ? toBase64(orig) : value;
}

function asBytes(data: ArrayBuffer | Uint8Array): Uint8Array {
  return data instanceof Uint8Array ? data : new Uint8Array(data);
}

function decodeProto(type: protobuf.Type, data: ArrayBuffer | Uint8Array | string): Record<string, unknown> {
  if (typeof data === 'string') throw new DecodeError('expected a binary frame (protobuf encoding)');
  try {
    return type.toObject(type.decode(asBytes(data)), toObjectOpts);
  } catch (err) {
    throw new DecodeError(`invalid protobuf: ${(err as Error).message}`);
  }
}

function decodeMsgpack(data: ArrayBuffer | Uint8Array | string, maxDepth = Infinity): unknown {
  if (typeof data === 'string') throw new DecodeError('expected a binary frame (MessagePack encoding)');
  const bytes = asBytes(data);
  if (maxDepth !== Infinity && msgpackDeeperThan(bytes, maxDepth)) throw tooDeep();
  try {
    return packr.unpack(bytes);
  } catch (err) {
    throw new DecodeError(`invalid MessagePack: ${(err as Error).message}`);
  }
}

function decodeJson(data: ArrayBuffer | Uint8Array | string, maxDepth = Infinity): unknown {
  let text: string;
  try {
    text = typeof data === 'string' ? data : textDecoder.decode(asBytes(data));
  } catch (err) {
    throw new DecodeError(`invalid JSON: ${(err as Error).message}`);
  }
  if (maxDepth !== Infinity && jsonDeeperThan(text, maxDepth)) throw tooDeep();
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new DecodeError(`invalid JSON: ${(err as Error).message}`);
  }
}

export interface Codec {
  readonly encoding: Encoding;
  /** true: frames are binary; false: text (JSON). */
  readonly binary: boolean;
  /** Server side: a frame into an untrusted object (validated by schema.ts next). */
  decodeRequest(data: ArrayBuffer | Uint8Array | string): unknown;
  encodeServer(msg: ServerMessage): Uint8Array | string;
  /** Client side. */
  /** Client side: `{ id, <kind>: body }` (typed by the caller: client/signalClient.ts). */
  encodeRequest(req: object): Uint8Array | string;
  decodeServer(data: ArrayBuffer | Uint8Array | string): ServerMessage;
}

function normalizeJsonServer(msg: ServerMessage): ServerMessage {
  const data = msg.data as (Omit<NonNullable<ServerMessage['data']>, 'payload'> & { payload: unknown }) | undefined;
  if (data && typeof data.payload === 'string') (data as { payload: unknown }).payload = fromBase64(data.payload);
  return msg;
}

export const codecs: Record<Encoding, Codec> = {
  proto: {
    encoding: 'proto',
    binary: true,
    decodeRequest: (data) => decodeProto(RequestType, data),
    encodeServer: encodeServerProto,
    encodeRequest: (req) => RequestType.encode(RequestType.fromObject(req as Record<string, unknown>)).finish(),
    decodeServer: (data) => decodeProto(ServerMessageType, data) as ServerMessage,
  },
  msgpack: {
    encoding: 'msgpack',
    binary: true,
    decodeRequest: (data) => decodeMsgpack(data, MAX_DEPTH),
    encodeServer: (msg) => packr.pack(msg),
    encodeRequest: (req) => packr.pack(req),
    decodeServer: (data) => decodeMsgpack(data) as ServerMessage,
  },
  json: {
    encoding: 'json',
    binary: false,
    decodeRequest: (data) => decodeJson(data, MAX_DEPTH),
    encodeServer: (msg) => JSON.stringify(msg, jsonReplacer),
    encodeRequest: (req) => JSON.stringify(req, jsonReplacer),
    decodeServer: (data) => normalizeJsonServer(decodeJson(data) as ServerMessage),
  },
};
