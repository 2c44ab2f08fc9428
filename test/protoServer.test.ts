import assert from 'node:assert/strict';
import { test } from 'node:test';
import protobuf from 'protobufjs/light.js';
import { Participant, permissionFromGrant } from '../src/rooms/participant.js';
import type { Connection } from '../src/rooms/ports.js';
import { codecs } from '../src/signal/codec.js';
import { descriptor } from '../src/signal/gen/descriptor.js';
import type { ParticipantInfo, ServerMessage } from '../src/signal/messages.js';
import { prng } from './helpers.js';

// The reference: protobufjs encoding each message whole, from a Root of its own.
const Server = protobuf.Root.fromJSON(descriptor as unknown as protobuf.INamespace).lookupType('auralink.v1.ServerMessage');
const reference = (msg: ServerMessage): Buffer => Buffer.from(Server.encode(Server.fromObject(msg as unknown as Record<string, unknown>)).finish());
const encode = (msg: ServerMessage): Buffer => Buffer.from(codecs.proto.encodeServer(msg) as Uint8Array);

const TEXTS = ['', 'a', 'Ünïcode 🎉', 'x'.repeat(127), 'y'.repeat(128), 'z'.repeat(20_000)];

function randomInfo(rnd: () => number, i: number): ParticipantInfo {
  const t = (): string => TEXTS[Math.floor(rnd() * TEXTS.length)]!;
  const grant = { canPublish: rnd() < 0.5, hidden: rnd() < 0.2, canPublishSources: rnd() < 0.5 ? ['camera', 'microphone'] : [] };
  const p = new Participant(`PA_${i}`, `id-${i}-${t()}`, t(), t(), permissionFromGrant(grant), false, null as unknown as Connection, 1_700_000_000_000 + i);
  // Frozen infos (a live participant's) keep their bytes; plain ones (another node's) do not.
  return rnd() < 0.7 ? p.info() : { ...p.info(), permission: { ...p.info().permission } };
}

test('protobuf ServerMessages are byte for byte what encoding them whole gives: joins, announcements, the rest (seeded)', () => {
  const rnd = prng(42);
  const pool = Array.from({ length: 60 }, (_, i) => randomInfo(rnd, i));
  const pick = (): ParticipantInfo => pool[Math.floor(rnd() * pool.length)]!;
  const seq = (): { seq?: number } => (rnd() < 0.3 ? {} : { seq: [0, 1, 127, 128, 2 ** 40][Math.floor(rnd() * 5)]! });
  let composed = 0;
  for (let n = 0; n < 600; n++) {
    const r = rnd();
    let msg: ServerMessage;
    if (r < 0.5) {
      msg = {
        ...seq(),
        join: {
          room: { sid: 'RM_x', name: TEXTS[n % TEXTS.length]!, metadata: '', createdAt: 1_700_000_000_000, maxParticipants: n % 3, numParticipants: n % 50, emptyTimeout: 300 },
          participant: pick(),
          otherParticipants: Array.from({ length: Math.floor(rnd() * 40) }, pick),
          resumeToken: `tok${n}`,
          resumeWindowMs: 30_000,
          roomSeq: n,
          resumed: rnd() < 0.5,
          server: { version: '0.1.0', nodeId: 'node-a', protocol: 2 },
          pingIntervalMs: 5000,
          ...(rnd() < 0.7 ? { iceServers: [{ urls: ['turn:127.0.0.1:3478'], username: `u${n}`, credential: 'c' }] } : {}),
          ...(rnd() < 0.3 ? { probeTargets: [{ nodeId: 'b', url: 'http://b/probe' }] } : {}),
        },
      };
      composed++;
    } else if (r < 0.7) {
      msg = { ...seq(), participantJoined: pick() };
      composed++;
    } else if (r < 0.8) {
      msg = { ...seq(), participantUpdated: pick() };
      composed++;
    } else if (r < 0.9) {
      msg = { ...seq(), participantLeft: { sid: 'PA_1', identity: 'a', reason: 'CLIENT_INITIATED' } };
    } else {
      msg = { response: { requestId: n, participants: { participants: [pick(), pick()] } } };
    }
    assert.ok(encode(msg).equals(reference(msg)), `message #${n}: ${Object.keys(msg).join(',')}`);
    // Again: the second time the infos' bytes come from what was kept.
    assert.ok(encode(msg).equals(reference(msg)), `message #${n} again`);
  }
  assert.ok(composed > 400);
});

test("a participant's encoded info follows its changes: name, metadata, permission (even when the caller's object changes later)", () => {
  const p = new Participant('PA_c', 'carol', 'Carol', '', permissionFromGrant({}), false, null as unknown as Connection);
  const decode = (msg: ServerMessage): ServerMessage => codecs.proto.decodeServer(codecs.proto.encodeServer(msg));
  const announced = (): ParticipantInfo => decode({ participantUpdated: p.info() }).participantUpdated!;
  assert.equal(announced().name, 'Carol');
  p.name = 'Caroline';
  p.metadata = '{"desk":4}';
  assert.equal(announced().name, 'Caroline');
  assert.equal(announced().metadata, '{"desk":4}');
  const perm = { canPublish: false, canSubscribe: true, canPublishData: false, canUpdateMetadata: false, hidden: false, canPublishSources: ['microphone'] };
  p.permission = perm;
  assert.equal(announced().permission.canPublish ?? false, false);
  perm.canPublish = true; // the caller's object, changed after the fact, is not the participant's
  perm.canPublishSources.push('camera');
  assert.equal(announced().permission.canPublish ?? false, false);
  assert.deepEqual(announced().permission.canPublishSources, ['microphone']);
  const join = decode({
    join: {
      room: { sid: 'RM_c', name: 'r', metadata: '', createdAt: 1, maxParticipants: 0, numParticipants: 1, emptyTimeout: 1 },
      participant: p.info(),
      otherParticipants: [p.info()],
      resumeToken: '',
      resumeWindowMs: 0,
      roomSeq: 0,
      resumed: false,
      server: { version: '', nodeId: '', protocol: 2 },
      pingIntervalMs: 0,
    },
  }).join!;
  assert.deepEqual([join.participant.name, join.otherParticipants[0]!.name], ['Caroline', 'Caroline']);
  // Another node's participant (cluster roster): a plain object, changed in place on updates.
  const remote: ParticipantInfo = { ...p.info(), sid: 'PA_r', name: 'Remote', permission: { ...p.info().permission } };
  assert.equal(decode({ participantJoined: remote }).participantJoined!.name, 'Remote');
  remote.name = 'Renamed';
  assert.equal(decode({ participantJoined: remote }).participantJoined!.name, 'Renamed');
});
