import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { SignalClient } from '../src/client/signalClient.js';
import { bytes, ENCODINGS, eventually, sleep, startServer, text, type TestServer } from './helpers.js';

for (const encoding of ENCODINGS) {
  describe(`signalling over ${encoding}`, () => {
    let t: TestServer;
    let room = 0;
    const nextRoom = (): string => `room-${encoding}-${++room}`;
    before(async () => {
      t = await startServer({ signal: { resume_window_s: 2 } });
    });
    after(async () => {
      await t.close();
    });
    const join = (id: string, r: string, grant = {}): Promise<SignalClient> => t.client(id, r, { encoding, grant });

    test('join returns room, self and others; presence events reach the room', async () => {
      const r = nextRoom();
      const alice = await join('alice', r, { name: 'Alice', metadata: '{"a":1}' });
      assert.equal(alice.join.room.name, r);
      assert.match(alice.join.room.sid, /^RM_/);
      assert.equal(alice.me.identity, 'alice');
      assert.equal(alice.me.name, 'Alice');
      assert.equal(alice.me.metadata, '{"a":1}');
      assert.equal(alice.participants.size, 0);
      const joined = alice.next('participantJoined');
      const bob = await join('bob', r);
      const [info] = await joined;
      assert.equal(info.identity, 'bob');
      assert.deepEqual([...bob.participants.keys()], ['alice']);
      assert.ok(bob.participants.get('alice')!.joinedAt > 0);
      assert.equal(bob.participants.get('alice')!.permission.canPublish, true);

      const left = alice.next('participantLeft');
      await bob.leave();
      const [who, reason] = await left;
      assert.equal(who.identity, 'bob');
      assert.equal(reason, 'CLIENT_INITIATED');
      assert.equal(alice.participants.size, 0);
      const list = await alice.listParticipants();
      assert.deepEqual(list.map((p) => p.identity), ['alice']);
    });

    test('participant metadata needs canUpdateOwnMetadata; room metadata needs roomAdmin', async () => {
      const r = nextRoom();
      const admin = await join('admin', r, { roomAdmin: true, canUpdateOwnMetadata: true });
      const plain = await join('plain', r);
      await assert.rejects(plain.updateParticipant({ metadata: 'x' }), { code: 'PERMISSION_DENIED' });
      await assert.rejects(plain.updateRoomMetadata('x'), { code: 'PERMISSION_DENIED' });

      const seen = plain.next('participantUpdated');
      await admin.updateParticipant({ name: 'The Admin', metadata: 'm1' });
      const [u] = await seen;
      assert.equal(u.identity, 'admin');
      assert.equal(u.name, 'The Admin');
      assert.equal(plain.participants.get('admin')!.metadata, 'm1');

      const roomSeen = plain.next('roomUpdated');
      await admin.updateRoomMetadata('topic: launch');
      const [info] = await roomSeen;
      assert.equal(info.metadata, 'topic: launch');
      assert.equal(plain.join.room.metadata, 'topic: launch');
      // A late joiner sees the current metadata in its join response.
      const late = await join('late', r);
      assert.equal(late.join.room.metadata, 'topic: launch');
      assert.equal(late.participants.get('admin')!.name, 'The Admin');
    });

    test('data reaches everyone but the sender, in order; targeted data only its targets', async () => {
      const r = nextRoom();
      const a = await join('a', r);
      const b = await join('b', r);
      const c = await join('c', r);
      const got: Record<string, string[]> = { a: [], b: [], c: [] };
      for (const [id, cl] of [['a', a], ['b', b], ['c', c]] as const) {
        cl.on('data', (d) => got[id]!.push(`${d.participantIdentity}:${d.topic ?? ''}:${text(d.payload)}`));
      }
      for (let i = 0; i < 20; i++) a.publishData(bytes(`m${i}`), { topic: 'chat' });
      await a.sendData(bytes('to-c'), { destinationIdentities: ['c'] });
      await eventually(() => got.b!.length === 20 && got.c!.length === 21, 3000, 'data delivery');
      const expected = Array.from({ length: 20 }, (_, i) => `a:chat:m${i}`);
      assert.deepEqual(got.b, expected);
      assert.deepEqual(got.c, [...expected, 'a::to-c']);
      assert.deepEqual(got.a, []);
      await assert.rejects(a.sendData(bytes('x'), { destinationIdentities: ['nobody'] }), {
        code: 'NOT_FOUND',
        field: 'sendData.destinationIdentities',
      });
      const noData = await join('nodata', r, { canPublishData: false });
      await assert.rejects(noData.sendData(bytes('x')), { code: 'PERMISSION_DENIED' });
    });

    test('P2P relay forwards offer, answer and ICE candidates to the named peer only', async () => {
      const r = nextRoom();
      const a = await join('caller', r);
      const b = await join('callee', r);
      const c = await join('bystander', r);
      let bystanderGot = 0;
      c.on('relay', () => bystanderGot++);
      const offer = b.next('relay');
      await a.relay({ identity: 'callee', kind: 'OFFER', sdp: 'v=0 offer', callId: 'call-1' });
      const [o] = await offer;
      assert.equal(o.identity, 'caller');
      assert.equal(o.kind, 'OFFER');
      assert.equal(o.sdp, 'v=0 offer');
      assert.equal(o.callId, 'call-1');
      const answer = a.next('relay');
      await b.relay({ identity: 'caller', kind: 'ANSWER', sdp: 'v=0 answer' });
      assert.equal((await answer)[0].sdp, 'v=0 answer');
      const cand = a.next('relay');
      await b.relay({ identity: 'caller', kind: 'CANDIDATE', candidate: { candidate: 'candidate:1 1 udp 1 127.0.0.1 5000 typ host', sdpMid: '0', sdpMLineIndex: 0 } });
      const [ci] = await cand;
      assert.equal(ci.candidate!.candidate, 'candidate:1 1 udp 1 127.0.0.1 5000 typ host');
      assert.equal(ci.candidate!.sdpMid, '0');
      await assert.rejects(a.relay({ identity: 'ghost', kind: 'OFFER', sdp: 'x' }), { code: 'NOT_FOUND', field: 'relay.identity' });
      await assert.rejects(a.relay({ identity: 'callee', kind: 'OFFER' }), { code: 'INVALID_FIELD', field: 'relay.sdp' });
      await sleep(50);
      assert.equal(bystanderGot, 0);
    });

    test('resume inside the window restores the session without leave/join and replays missed messages', async () => {
      const r = nextRoom();
      const a = await join('stayer', r);
      const b = await join('dropper', r);
      const sidBefore = b.me.sid;
      await eventually(() => a.participants.has('dropper'));
      const aEvents: string[] = [];
      a.on('participantLeft', (p) => aEvents.push(`left:${p.identity}`));
      a.on('participantJoined', (p) => aEvents.push(`joined:${p.identity}`));
      const bData: string[] = [];
      b.on('data', (d) => bData.push(text(d.payload)));

      await a.sendData(bytes('before'));
      await eventually(() => bData.length === 1);
      const reconnected = b.next('reconnected', 5000);
      b.simulateDrop();
      // While b is away: broadcast, targeted and metadata traffic it must not miss.
      await sleep(30);
      await a.sendData(bytes('during-1'));
      await a.sendData(bytes('during-2'), { destinationIdentities: ['dropper'] });
      const [{ resumed }] = await reconnected;
      assert.equal(resumed, true);
      assert.equal(b.me.sid, sidBefore);
      await eventually(() => bData.length === 3, 3000, 'replay');
      assert.deepEqual(bData, ['before', 'during-1', 'during-2']);
      // Live traffic continues after the replay, without duplicates.
      await a.sendData(bytes('after'));
      await eventually(() => bData.length === 4);
      assert.deepEqual(bData, ['before', 'during-1', 'during-2', 'after']);
      assert.deepEqual(aEvents, []);
    });

    test('a participant gone longer than the resume window leaves with RESUME_EXPIRED', async () => {
      const r = nextRoom();
      const a = await join('watcher', r);
      const b = await join('vanisher', r);
      const left = a.next('participantLeft', 5000);
      b.close();
      const [who, reason] = await left;
      assert.equal(who.identity, 'vanisher');
      assert.equal(reason, 'RESUME_EXPIRED');
    });

    test('a second connection with the same identity replaces the first, which is told why', async () => {
      const r = nextRoom();
      const watcher = await join('watcher', r);
      const first = await join('dup', r);
      await eventually(() => watcher.participants.has('dup'));
      const told = first.next('disconnect');
      const closed = first.next('closed');
      const events: string[] = [];
      watcher.on('participantLeft', (p, reason) => events.push(`left:${p.identity}:${reason}`));
      watcher.on('participantJoined', (p) => events.push(`joined:${p.identity}`));
      const second = await join('dup', r);
      const [d] = await told;
      assert.equal(d.reason, 'DUPLICATE_IDENTITY');
      assert.equal((await closed)[0].code, 4001);
      assert.notEqual(second.me.sid, first.me.sid);
      await eventually(() => events.length === 2);
      assert.deepEqual(events, ['left:dup:DUPLICATE_IDENTITY', 'joined:dup']);
      const got = second.next('data');
      await watcher.sendData(bytes('hello second'));
      assert.equal(text((await got)[0].payload), 'hello second');
    });

    test('hidden participants are not announced nor listed', async () => {
      const r = nextRoom();
      const a = await join('visible', r);
      let joins = 0;
      a.on('participantJoined', () => joins++);
      const h = await join('ghost', r, { hidden: true });
      assert.deepEqual([...h.participants.keys()], ['visible']);
      const b = await join('visible2', r);
      assert.deepEqual([...b.participants.keys()], ['visible']);
      assert.deepEqual((await a.listParticipants()).map((p) => p.identity).sort(), ['visible', 'visible2']);
      await h.leave();
      await sleep(50);
      assert.equal(joins, 1);
      // The hidden participant still receives room data.
    });
  });
}

describe('room limits', () => {
  let t: TestServer;
  before(async () => {
    t = await startServer({ room: { max_participants: 2, auto_create: false } });
  });
  after(async () => {
    await t.close();
  });

  test('unknown rooms are refused without roomCreate; a full room refuses with 403', async () => {
    await assert.rejects(t.client('x', 'nope'), /closed before join|Unexpected server response: 404/);
    const a = await t.client('a', 'capped', { grant: { roomCreate: true } });
    await t.client('b', 'capped');
    await assert.rejects(t.client('c', 'capped'), /403/);
    assert.equal(a.participants.size, 1);
  });
});
