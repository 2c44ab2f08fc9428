import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ListRoomsRequest, ListRoomsResponse, TrackSource } from '@livekit/protocol';
import { RoomServiceClient, TwirpError } from 'livekit-server-sdk';
import { createToken } from '../src/auth/token.js';
import { bytes, eventually, KEY, SECRET, startServer, text, type TestServer } from './helpers.js';
import { publishAudio, subscribe } from './media.js';

// LiveKit's RoomService over Twirp, driven by livekit-server-sdk's RoomServiceClient as is.

describe('RoomService (Twirp) through livekit-server-sdk', () => {
  let t: TestServer;
  let svc: RoomServiceClient;
  before(async () => {
    t = await startServer();
    svc = new RoomServiceClient(t.http, KEY, SECRET);
  });
  after(async () => {
    await t.close();
  });

  test('CreateRoom, ListRooms (all and by name), DeleteRoom', async () => {
    const room = await svc.createRoom({ name: 'api-room', emptyTimeout: 120, maxParticipants: 7, metadata: 'm0' });
    assert.equal(room.name, 'api-room');
    assert.match(room.sid, /^RM_/);
    assert.equal(room.maxParticipants, 7);
    assert.equal(room.emptyTimeout, 120);
    assert.equal(room.metadata, 'm0');
    await svc.createRoom({ name: 'other-room' });
    assert.deepEqual((await svc.listRooms()).map((r) => r.name).sort(), ['api-room', 'other-room']);
    assert.deepEqual((await svc.listRooms(['other-room'])).map((r) => r.name), ['other-room']);
    const c = await t.client('in-deleted', 'api-room', { autoResume: false });
    const told = c.next('disconnect');
    const closed = c.next('closed');
    await svc.deleteRoom('api-room');
    assert.equal((await told)[0].reason, 'ROOM_DELETED');
    assert.equal((await closed)[0].code, 4003);
    assert.deepEqual((await svc.listRooms()).map((r) => r.name), ['other-room']);
    await svc.deleteRoom('other-room');
  });

  test('ListParticipants and GetParticipant show identity, name, metadata, permission and tracks', async () => {
    const a = await t.client('alice', 'people', { grant: { name: 'Alice', metadata: 'ma' } });
    await t.client('ghost', 'people', { grant: { hidden: true } });
    const b = await t.client('bob', 'people', { grant: { canPublishSources: ['microphone'] } as never });
    const producerId = await publishAudio(b);
    const list = await svc.listParticipants('people');
    assert.deepEqual(list.map((p) => p.identity).sort(), ['alice', 'bob'], 'hidden participants are not listed');
    const alice = await svc.getParticipant('people', 'alice');
    assert.equal(alice.sid, a.me.sid);
    assert.equal(alice.name, 'Alice');
    assert.equal(alice.metadata, 'ma');
    assert.ok(alice.joinedAt > 0n);
    const bob = await svc.getParticipant('people', 'bob');
    assert.deepEqual(bob.permission?.canPublishSources, [TrackSource.MICROPHONE]);
    assert.equal(bob.tracks.length, 1);
    assert.equal(bob.tracks[0]!.sid, producerId);
    assert.equal(bob.tracks[0]!.source, TrackSource.MICROPHONE);
    // A source name we do not know, even one every object has, is UNKNOWN (it was a 500).
    await t.client('odd', 'people', { grant: { canPublishSources: ['constructor', 'camera'] } as never });
    assert.deepEqual((await svc.getParticipant('people', 'odd')).permission?.canPublishSources, [TrackSource.UNKNOWN, TrackSource.CAMERA]);
    assert.equal((await svc.listParticipants('people')).length, 3);
    await assert.rejects(svc.getParticipant('people', 'nobody'), (e: TwirpError) => e.code === 'not_found' && e.status === 404);
    await assert.rejects(svc.listParticipants('no-such-room'), (e: TwirpError) => e.code === 'not_found');
  });

  test('UpdateParticipant changes name and metadata for everyone, and revoking canPublish unpublishes', async () => {
    const pub = await t.client('pub', 'upd');
    const watcher = await t.client('watcher', 'upd');
    const producerId = await publishAudio(pub);
    await eventually(() => watcher.producers.has(producerId));
    const updated = watcher.next('participantUpdated');
    const info = await svc.updateParticipant('upd', 'pub', { name: 'Publisher', metadata: '{"role":"host"}' });
    assert.equal(info.name, 'Publisher');
    const [u] = await updated;
    assert.equal(u.metadata, '{"role":"host"}');
    const removed = watcher.next('producerRemoved');
    const after = await svc.updateParticipant('upd', 'pub', {
      permission: { canPublish: false, canSubscribe: true, canPublishData: true } as never,
    });
    assert.equal(after.permission?.canPublish, false);
    assert.equal((await removed)[0].producerId, producerId);
    await assert.rejects(pub.request('createTransport', { producing: true }), { code: 'PERMISSION_DENIED' });
  });

  test('MutePublishedTrack pauses the track, tells its publisher and its subscribers', async () => {
    const pub = await t.client('pub', 'mute');
    const sub = await t.client('sub', 'mute');
    const producerId = await publishAudio(pub);
    const consumerId = await subscribe(sub, producerId);
    const toldPub = pub.next('trackMuted');
    const toldSub = sub.next('consumerPaused');
    const res = await svc.mutePublishedTrack('mute', 'pub', producerId, true);
    assert.equal(res.muted, true);
    assert.deepEqual((await toldPub)[0], { producerId, muted: true });
    assert.equal((await toldSub)[0].consumerId, consumerId);
    assert.equal((await svc.getParticipant('mute', 'pub')).tracks[0]!.muted, true);
    await svc.mutePublishedTrack('mute', 'pub', producerId, false);
    assert.equal((await svc.getParticipant('mute', 'pub')).tracks[0]!.muted, false);
    await assert.rejects(svc.mutePublishedTrack('mute', 'pub', 'no-such-track', true), (e: TwirpError) => e.code === 'not_found');
  });

  test('UpdateSubscriptions unsubscribes (and refuses re-subscribing) until subscribed again', async () => {
    const pub = await t.client('pub', 'subs');
    const sub = await t.client('sub', 'subs');
    const producerId = await publishAudio(pub);
    const consumerId = await subscribe(sub, producerId);
    const closed = sub.next('consumerClosed');
    await svc.updateSubscriptions('subs', 'sub', [producerId], false);
    assert.deepEqual((await closed)[0], { consumerId, reason: 'unsubscribed' });
    await assert.rejects(subscribe(sub, producerId), { code: 'PERMISSION_DENIED' });
    const again = sub.next('producerAdded');
    await svc.updateSubscriptions('subs', 'sub', [producerId], true);
    assert.equal((await again)[0].producerId, producerId);
    assert.ok(await subscribe(sub, producerId));
  });

  test('UpdateRoomMetadata and SendData reach the participants', async () => {
    const a = await t.client('a', 'meta');
    const b = await t.client('b', 'meta');
    const seen = a.next('roomUpdated');
    const room = await svc.updateRoomMetadata('meta', 'agenda: demo');
    assert.equal(room.metadata, 'agenda: demo');
    assert.equal((await seen)[0].metadata, 'agenda: demo');
    const toAll = [a.next('data'), b.next('data')];
    await svc.sendData('meta', bytes('hello all'), 0 as never, { topic: 'announce' });
    for (const [d] of await Promise.all(toAll)) {
      assert.equal(text(d.payload), 'hello all');
      assert.equal(d.topic, 'announce');
      assert.equal(d.participantIdentity ?? '', '');
    }
    let aGot = 0;
    a.on('data', () => aGot++);
    const onlyB = b.next('data');
    await svc.sendData('meta', bytes('just b'), 0 as never, { destinationIdentities: ['b'] });
    assert.equal(text((await onlyB)[0].payload), 'just b');
    assert.equal(aGot, 0);
  });

  test('RemoveParticipant disconnects them with a reason; the others see them leave', async () => {
    const a = await t.client('stays', 'kick');
    const b = await t.client('kicked', 'kick', { autoResume: false });
    const told = b.next('disconnect');
    const closed = b.next('closed');
    const left = a.next('participantLeft');
    await svc.removeParticipant('kick', 'kicked');
    assert.equal((await told)[0].reason, 'PARTICIPANT_REMOVED');
    assert.equal((await closed)[0].code, 4002);
    const [who, reason] = await left;
    assert.equal(who.identity, 'kicked');
    assert.equal(reason, 'PARTICIPANT_REMOVED');
  });
});

describe('RoomService: auth and bad requests (raw HTTP)', () => {
  let t: TestServer;
  before(async () => {
    t = await startServer();
  });
  after(async () => {
    await t.close();
  });

  const call = (method: string, body: string | Uint8Array, token?: string, type = 'application/json'): Promise<Response> =>
    fetch(`${t.http}/twirp/livekit.RoomService/${method}`, {
      method: 'POST',
      headers: { 'content-type': type, ...(token ? { authorization: `Bearer ${token}` } : {}) },
      body: body as BodyInit,
    });
  const tok = (video: Record<string, unknown>): string => createToken(KEY, SECRET, { identity: 'api', video });

  test('missing or bad tokens: 401 unauthenticated', async () => {
    const r = await call('ListRooms', '{}');
    assert.equal(r.status, 401);
    assert.equal(((await r.json()) as { code: string }).code, 'unauthenticated');
    const r2 = await call('ListRooms', '{}', createToken(KEY, 'wrong-secret-wrong-secret-wrong-secret!', { video: { roomList: true } }));
    assert.equal(r2.status, 401);
  });

  test('grants: ListRooms needs roomList, CreateRoom roomCreate, room methods roomAdmin for that room', async () => {
    const r1 = await call('ListRooms', '{}', tok({ roomJoin: true, room: 'x' }));
    assert.equal(r1.status, 403);
    assert.deepEqual(await r1.json(), { code: 'permission_denied', msg: 'token lacks roomList' });
    assert.equal((await call('CreateRoom', '{"name":"x"}', tok({ roomList: true }))).status, 403);
    assert.equal((await call('CreateRoom', '{"name":"x"}', tok({ roomCreate: true }))).status, 200);
    assert.equal((await call('ListParticipants', '{"room":"x"}', tok({ roomAdmin: true, room: 'other' }))).status, 403);
    assert.equal((await call('ListParticipants', '{"room":"x"}', tok({ roomAdmin: true, room: 'x' }))).status, 200);
  });

  test('malformed bodies, unknown methods and wrong verbs get Twirp errors', async () => {
    const admin = tok({ roomCreate: true, roomList: true });
    const bad = await call('CreateRoom', '{"name": ', admin);
    assert.equal(bad.status, 400);
    assert.equal(((await bad.json()) as { code: string }).code, 'malformed');
    const wrongType = await call('CreateRoom', '{"name": 42}', admin);
    assert.equal(((await wrongType.json()) as { code: string }).code, 'malformed');
    const noName = await call('CreateRoom', '{}', admin);
    assert.equal(((await noName.json()) as { code: string }).code, 'invalid_argument');
    const route = await call('Teleport', '{}', admin);
    assert.equal(route.status, 404);
    assert.equal(((await route.json()) as { code: string }).code, 'bad_route');
    // Names every object has (these were 500s: the method table's prototype answered).
    for (const inherited of ['toString', 'constructor', '__proto__', 'hasOwnProperty']) {
      const r = await call(inherited, '{}', admin);
      assert.equal(r.status, 404, inherited);
      assert.equal(((await r.json()) as { code: string }).code, 'bad_route');
    }
    const get = await fetch(`${t.http}/twirp/livekit.RoomService/ListRooms`);
    assert.equal(((await get.json()) as { code: string }).code, 'bad_route');
    const big = await call('CreateRoom', JSON.stringify({ name: 'x', metadata: 'x'.repeat(2 * 1024 * 1024) }), admin);
    assert.equal(((await big.json()) as { code: string }).code, 'invalid_argument');
    // And the server still answers.
    assert.equal((await call('ListRooms', '{}', admin)).status, 200);
  });

  test('protobuf bodies work like JSON ones', async () => {
    await call('CreateRoom', '{"name":"pb-room"}', tok({ roomCreate: true }));
    const r = await call('ListRooms', new ListRoomsRequest({ names: ['pb-room'] }).toBinary(), tok({ roomList: true }), 'application/protobuf');
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('content-type'), 'application/protobuf');
    const res = ListRoomsResponse.fromBinary(new Uint8Array(await r.arrayBuffer()));
    assert.deepEqual(res.rooms.map((x) => x.name), ['pb-room']);
  });
});
