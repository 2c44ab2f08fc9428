import { z } from 'zod';
import { fromBase64 } from './codec.js';
import { SignalError } from './errors.js';
import { unstorableText } from '../util/text.js';

// Validation of decoded requests. The codec gives an untrusted object; nothing reaches a
// handler before it passes here. Errors name the field (e.g. "sendData.topic").

const uint32 = z.number().int().min(0).max(0xffffffff);
// Bytes: binary in protobuf/MessagePack, base64 text in JSON.
const bytes = z.union([
  z.custom<Uint8Array>((v) => v instanceof Uint8Array, { message: 'must be bytes' }),
  z.base64().transform((s) => fromBase64(s)),
]);
// Text that may reach the database (names, metadata, identities, topics): NUL or a lone
// surrogate is the client's typed error here, not a failed write later (util/text.ts).
const storable = (max: number) =>
  z.string().max(max).superRefine((s, ctx) => {
    const why = unstorableText(s);
    if (why) ctx.addIssue({ code: 'custom', message: why });
  });
const identity = storable(256).pipe(z.string().min(1));
// mediasoup ids are UUIDs; anything else cannot name one of ours.
const mediaId = z.string().min(1).max(64);
/** mediasoup structures travel as JSON text: parsed here, shape-checked by mediasoup. */
const json = z
  .string()
  .max(65536)
  .transform((s, ctx) => {
    try {
      const v: unknown = JSON.parse(s);
      if (typeof v === 'object' && v !== null) return v as Record<string, unknown>;
    } catch {
      /* fall through */
    }
    ctx.addIssue({ code: 'custom', message: 'must be a JSON object' });
    return z.NEVER;
  });

// proto3 encoders leave default values off the wire (Go's, @bufbuild/protobuf, protoc's): a
// field whose default means something (an empty payload, layer 0, connected=false) is
// accepted absent, in every encoding, and means that default. Fields without a meaningful
// default (ids, kinds, JSON parameters) stay required: see docs/PROTOCOL.md.

const iceCandidate = z.strictObject({
  // Empty: end of candidates.
  candidate: z.string().max(4096).default(''),
  sdpMid: z.string().max(256).optional(),
  sdpMLineIndex: uint32.optional(),
  usernameFragment: z.string().max(256).optional(),
});

export const requestBodies = {
  ping: z.strictObject({
    timestamp: z.number().int().nonnegative().optional(),
    rtt: uint32.optional(),
  }),
  sendData: z.strictObject({
    payload: bytes.default(() => new Uint8Array(0)),
    topic: storable(256).optional(),
    destinationIdentities: z.array(identity).max(256).optional(),
  }),
  updateParticipant: z.strictObject({
    name: storable(256).optional(),
    metadata: storable(1 << 20).optional(),
  }),
  updateRoomMetadata: z.strictObject({ metadata: storable(1 << 20).default('') }),
  relay: z
    .strictObject({
      identity,
      kind: z.enum(['OFFER', 'ANSWER', 'CANDIDATE', 'HANGUP']),
      sdp: z.string().max(65536).optional(),
      candidate: iceCandidate.optional(),
      callId: z.string().max(128).optional(),
      streams: z.string().max(4096).optional(),
    })
    .refine((r) => (r.kind === 'OFFER' || r.kind === 'ANSWER' ? !!r.sdp : true), {
      message: 'OFFER and ANSWER need sdp',
      path: ['sdp'],
    })
    .refine((r) => (r.kind === 'CANDIDATE' ? !!r.candidate : true), {
      message: 'CANDIDATE needs candidate',
      path: ['candidate'],
    }),
  leave: z.strictObject({}),
  listParticipants: z.strictObject({}),
  // SFU
  getRouterCapabilities: z.strictObject({}),
  createTransport: z.strictObject({
    producing: z.boolean().optional(),
    consuming: z.boolean().optional(),
    sctp: z.boolean().optional(),
    plain: z.boolean().optional(),
  }),
  connectTransport: z.strictObject({
    transportId: mediaId,
    // '' and 0 are proto3's "not set": the same as absent.
    dtlsParameters: z.literal('').or(json).optional().transform((v) => v || undefined),
    plainIp: z.union([z.literal(''), z.ipv4(), z.ipv6()]).optional().transform((v) => v || undefined),
    plainPort: z.number().int().min(0).max(65535).optional().transform((v) => v || undefined),
  }),
  produce: z.strictObject({
    transportId: mediaId,
    kind: z.enum(['audio', 'video']),
    rtpParameters: json,
    source: z.enum(['camera', 'microphone', 'screen_share', 'screen_share_audio', '']).optional().transform((v) => v || undefined),
    paused: z.boolean().optional(),
    width: z.number().int().min(0).max(16384).default(0),
    height: z.number().int().min(0).max(16384).default(0),
  }),
  closeProducer: z.strictObject({ producerId: mediaId }),
  pauseProducer: z.strictObject({ producerId: mediaId }),
  resumeProducer: z.strictObject({ producerId: mediaId }),
  consume: z.strictObject({ producerId: mediaId, transportId: mediaId, rtpCapabilities: json }),
  resumeConsumer: z.strictObject({ consumerId: mediaId }),
  pauseConsumer: z.strictObject({ consumerId: mediaId }),
  closeConsumer: z.strictObject({ consumerId: mediaId }),
  setPreferredLayers: z.strictObject({ consumerId: mediaId, spatialLayer: z.number().int().min(0).max(15).default(0), temporalLayer: z.number().int().min(0).max(15).optional() }),
  setPriority: z.strictObject({ consumerId: mediaId, priority: z.number().int().min(1).max(255) }),
  trackSettings: z
    .strictObject({
      // '' is proto3's "not set".
      consumerId: z.literal('').or(mediaId).optional().transform((v) => v || undefined),
      producerId: z.literal('').or(mediaId).optional().transform((v) => v || undefined),
      width: z.number().int().min(0).max(16384).default(0),
      height: z.number().int().min(0).max(16384).default(0),
      hidden: z.boolean().default(false),
      fps: z.number().int().min(0).max(240).default(0),
    })
    .refine((b) => !!b.consumerId !== !!b.producerId, { message: 'name exactly one of consumerId and producerId', path: ['consumerId'] }),
  restartIce: z.strictObject({ transportId: mediaId }),
  getStats: z.strictObject({ id: mediaId }),
  produceData: z.strictObject({ transportId: mediaId, sctpStreamParameters: json, label: z.string().max(256).optional(), protocol: z.string().max(256).optional() }),
  consumeData: z.strictObject({ dataProducerId: mediaId, transportId: mediaId }),
  linkReport: z.strictObject({
    rtts: z
      .array(
        z.strictObject({
          nodeId: z.string().min(1).max(128),
          rttMs: z.number().nonnegative().max(60_000).default(0),
          lossPct: z.number().min(0).max(100).optional(),
        }),
      )
      .min(1)
      .max(32),
  }),
  routeReport: z.strictObject({
    callId: z.string().min(1).max(128),
    tier: z.enum(['p2p', 'turn', 'sfu']),
    connected: z.boolean().default(false),
    rttMs: z.number().nonnegative().max(60_000).optional(),
    lossPct: z.number().min(0).max(100).optional(),
    quality: z.number().min(0).max(100).optional(),
    candidateType: z.enum(['host', 'srflx', 'prflx', 'relay', '']).optional(),
  }),
} as const;

// zod compiles an object schema's fast path on its first parse; do it at load, not inside
// the first request of each kind.
for (const body of Object.values(requestBodies)) body.safeParse({});

export type RequestKind = keyof typeof requestBodies;
export const REQUEST_KINDS = Object.keys(requestBodies) as RequestKind[];

export type ValidRequest = {
  [K in RequestKind]: { id: number; kind: K; body: z.output<(typeof requestBodies)[K]> };
}[RequestKind];

const isPlainObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array);

/** Best-effort request id of an invalid message, so the error can still be matched. */
export function peekId(raw: unknown): number {
  if (isPlainObject(raw) && typeof raw.id === 'number' && Number.isInteger(raw.id) && raw.id >= 0 && raw.id <= 0xffffffff) {
    return raw.id;
  }
  return 0;
}

export function validateRequest(raw: unknown): ValidRequest {
  if (!isPlainObject(raw)) throw new SignalError('INVALID_FIELD', 'a request must be an object', '');
  let id = 0;
  if (raw.id !== undefined) {
    const r = uint32.safeParse(raw.id);
    if (!r.success) throw new SignalError('INVALID_FIELD', 'id must be an unsigned 32-bit integer', 'id');
    id = r.data;
  }
  const kinds = REQUEST_KINDS.filter((k) => raw[k] !== undefined && raw[k] !== null);
  if (kinds.length === 0) {
    const other = Object.keys(raw).filter((k) => k !== 'id');
    throw new SignalError(
      'UNKNOWN_MESSAGE',
      other.length ? `unknown request kind ${JSON.stringify(other[0])}` : 'request has no body',
      other[0] ?? '',
    );
  }
  if (kinds.length > 1) throw new SignalError('INVALID_FIELD', `request has more than one body: ${kinds.join(', ')}`, kinds[1]);
  const unknown = Object.keys(raw).find((k) => k !== 'id' && !(REQUEST_KINDS as string[]).includes(k));
  if (unknown) throw new SignalError('INVALID_FIELD', `unknown field ${JSON.stringify(unknown)}`, unknown);
  const kind = kinds[0]!;
  const parsed = requestBodies[kind].safeParse(raw[kind]);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const path = issue.path.map(String);
    if (issue.code === 'unrecognized_keys' && issue.keys[0]) path.push(issue.keys[0]);
    const field = [kind, ...path].join('.');
    throw new SignalError('INVALID_FIELD', `${field}: ${issue.message}`, field);
  }
  return { id, kind, body: parsed.data } as ValidRequest;
}
