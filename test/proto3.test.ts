import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Packr } from 'msgpackr';
import protobuf from 'protobufjs';
import { codecs } from '../src/signal/codec.js';
import { descriptor } from '../src/signal/gen/descriptor.js';
import type { ServerMessage } from '../src/signal/messages.js';
import type { RequestKind } from '../src/signal/rpc.js';
import { REQUEST_KINDS } from '../src/signal/schema.js';
import { RawClient, startServer, type TestServer } from './helpers.js';
import { DTLS, opus } from './media.js';

// Standard proto3 encoders (Go's, @bufbuild/protobuf, protoc-generated code) leave default
// values off the wire; JSON and MessagePack clients leave them out. Each request kind, sent
// with its defaults written out and with them left out (protobuf, JSON, MessagePack), must
// get the same answer: absent means the default.

const root = protobuf.Root.fromJSON(descriptor as unknown as protobuf.INamespace);
const RequestType = root.lookupType('auralink.v1.Request');
const packr = new Packr({ useRecords: false, mapsAsObjects: true });

const isDefault = (v: unknown): boolean =>
  v === '' || v === 0 || v === false || (v instanceof Uint8Array && v.byteLength === 0) || (Array.isArray(v) && v.length === 0);

/** What a proto3 encoder puts on the wire: fields with their default value are dropped (not `optional` ones). */
function omitDefaults(type: protobuf.Type, obj: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(obj)) {
    const field = type.fields[name];
    assert.ok(field, `${type.name}.${name} is in the proto`);
    field.resolve();
    const explicitPresence = (field.options as { proto3_optional?: boolean } | undefined)?.proto3_optional === true;
    const sub = field.resolvedType instanceof protobuf.Type ? field.resolvedType : null;
    if (sub && field.repeated) out[name] = (value as Record<string, unknown>[]).map((v) => omitDefaults(sub, v));
    else if (sub) out[name] = omitDefaults(sub, value as Record<string, unknown>); // a set message field stays set
    else if (explicitPresence || !isDefault(value)) out[name] = value;
  }
  return out;
}

interface Ctx {
  produceOn: string;
  connectOn: string;
  ssrc: number;
}

// Every kind but leave (it ends the session; sent last, on its own), with defaults written out.
const REQUESTS: Record<Exclude<RequestKind, 'leave'>, (c: Ctx) => Record<string, unknown>> = {
  ping: () => ({ timestamp: 0, rtt: 0 }),
  sendData: () => ({ payload: new Uint8Array(0), topic: '', destinationIdentities: [] }),
  updateParticipant: () => ({ name: '', metadata: '' }),
  updateRoomMetadata: () => ({ metadata: '' }),
  relay: () => ({ identity: 'peer', kind: 'CANDIDATE', sdp: '', candidate: { candidate: '', sdpMid: '', sdpMLineIndex: 0, usernameFragment: '' }, callId: '', streams: '' }),
  listParticipants: () => ({}),
  getRouterCapabilities: () => ({}),
  createTransport: () => ({ producing: false, consuming: true, sctp: false, plain: false }),
  connectTransport: (c) => ({ transportId: c.connectOn, dtlsParameters: DTLS, plainIp: '', plainPort: 0 }),
  produce: (c) => ({ transportId: c.produceOn, kind: 'audio', rtpParameters: opus(c.ssrc), source: '', paused: false }),
  closeProducer: () => ({ producerId: 'no-such-producer' }),
  pauseProducer: () => ({ producerId: 'no-such-producer' }),
  resumeProducer: () => ({ producerId: 'no-such-producer' }),
  consume: () => ({ producerId: 'no-such-producer', transportId: 'x', rtpCapabilities: '{}' }),
  resumeConsumer: () => ({ consumerId: 'no-such-consumer' }),
  pauseConsumer: () => ({ consumerId: 'no-such-consumer' }),
  closeConsumer: () => ({ consumerId: 'no-such-consumer' }),
  setPreferredLayers: () => ({ consumerId: 'no-such-consumer', spatialLayer: 0 }),
  setPriority: () => ({ consumerId: 'no-such-consumer', priority: 1 }),
  trackSettings: () => ({ consumerId: 'no-such-consumer', producerId: '', width: 0, height: 0, hidden: false, fps: 0 }),
  restartIce: () => ({ transportId: 'no-such-transport' }),
  getStats: () => ({ id: 'no-such-id' }),
  produceData: (c) => ({ transportId: c.produceOn, sctpStreamParameters: JSON.stringify({ streamId: 0, ordered: true }), label: '', protocol: '' }),
  consumeData: () => ({ dataProducerId: 'no-such-data-producer', transportId: 'x' }),
  routeReport: () => ({ callId: 'c', tier: 'p2p', connected: false, rttMs: 0, lossPct: 0, quality: 0, candidateType: '' }),
  linkReport: () => ({ rtts: [{ nodeId: 'n', rttMs: 0, lossPct: 0 }] }),
};

const outcome = (m: ServerMessage): string => {
  const r = m.response!;
  return r.error ? `${r.error.code} ${r.error.field ?? ''}` : 'ok';
};

type Variant = 'explicit' | 'proto3' | 'json' | 'msgpack';
const VARIANTS: Variant[] = ['explicit', 'proto3', 'json', 'msgpack'];

function frame(v: Variant, req: Record<string, unknown>): Uint8Array | string {
  const stripped = omitDefaults(RequestType, req);
  if (v === 'explicit') return codecs.proto.encodeRequest(req);
  if (v === 'proto3') return RequestType.encode(RequestType.fromObject(stripped)).finish();
  if (v === 'json') return codecs.json.encodeRequest(stripped);
  return packr.pack(stripped);
}

describe('omitted proto3 defaults', () => {
  let t: TestServer;
  const clients = new Map<Variant, RawClient>();
  const ctx = new Map<Variant, Ctx>();
  let peer: RawClient;
  let nextId = 1;
  const send = async (v: Variant, kind: string, body: Record<string, unknown>): Promise<ServerMessage> => {
    const c = clients.get(v)!;
    const id = nextId++;
    c.send(frame(v, { id, [kind]: body }) as Uint8Array | string);
    return c.response(id);
  };

  before(async () => {
    t = await startServer();
    const grant = { canUpdateOwnMetadata: true, roomAdmin: true };
    peer = await RawClient.open(t.url, t.token('peer', 'defaults'), 'proto');
    let ssrc = 8000;
    for (const v of VARIANTS) {
      const enc = v === 'explicit' || v === 'proto3' ? 'proto' : v;
      const c = await RawClient.open(t.url, t.token(`p-${v}`, 'defaults', grant), enc);
      clients.set(v, c);
      await c.waitFor((m) => m.join !== undefined);
      const tr = async (): Promise<string> => (await send(v, 'createTransport', { producing: true, sctp: true })).response!.transport!.id;
      ctx.set(v, { produceOn: await tr(), connectOn: await tr(), ssrc: ssrc++ });
    }
  });
  after(async () => {
    await t.close();
  });

  test('the frames from the report: sendData with an empty payload, routeReport with connected=false', async () => {
    const c = clients.get('proto3')!;
    c.send(Buffer.from('08011a03120174', 'hex'));
    assert.equal(outcome(await c.response(1)), 'ok');
    c.send(Buffer.from('0802c2020d0a016312037032702500004041', 'hex'));
    assert.equal(outcome(await c.response(2)), 'ok');
  });

  for (const kind of REQUEST_KINDS.filter((k): k is Exclude<RequestKind, 'leave'> => k !== 'leave')) {
    test(`${kind}: the same answer with defaults written out or left out, in every encoding`, async () => {
      const got: Record<string, string> = {};
      for (const v of VARIANTS) got[v] = outcome(await send(v, kind, REQUESTS[kind](ctx.get(v)!)));
      assert.deepEqual(got, { explicit: got.explicit, proto3: got.explicit, json: got.explicit, msgpack: got.explicit }, JSON.stringify(got));
      assert.ok(!got.explicit!.startsWith('INVALID_FIELD') && !got.explicit!.startsWith('MALFORMED'), `${kind} with its defaults is well formed: ${got.explicit}`);
    });
  }

  test('leave: an empty body left out of the oneof is still a leave', async () => {
    for (const v of VARIANTS) {
      const c = clients.get(v)!;
      await send(v, 'leave', {});
      assert.equal((await c.waitClosed()).code, 1000);
    }
    peer.request({ id: 1, leave: {} });
    await peer.waitClosed();
  });
});
