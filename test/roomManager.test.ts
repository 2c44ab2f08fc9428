import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { pino } from 'pino';
import type { JoinGrant, VideoGrant } from '../src/auth/token.js';
import type { Participant } from '../src/rooms/participant.js';
import type { Connection, Fanout } from '../src/rooms/ports.js';
import type { Room } from '../src/rooms/room.js';
import { RoomManager, type RoomManagerOptions } from '../src/rooms/roomManager.js';
import type { ServerMessage } from '../src/signal/messages.js';
import { RoomDelivery } from '../src/rooms/delivery.js';
import { RoomMessaging } from '../src/rooms/messaging.js';
import { MemoryRoomMirror } from '../src/rooms/mirror.js';
import { sleep } from './helpers.js';

// The domain without sockets: fake connections record what they were sent.
class FakeConn implements Connection {
  readonly encoding = 'json' as const;
  sent: ServerMessage[] = [];
  closedWith: number | null = null;
  send(m: ServerMessage): void {
    if (this.closedWith === null) this.sent.push(m);
  }
  close(code: number): void {
    this.closedWith = code;
  }
}

class FakeFanout implements Fanout {
  private readonly subs = new Map<Room, Set<Participant>>();
  subscribe(room: Room, p: Participant): void {
    if (!this.subs.has(room)) this.subs.set(room, new Set());
    this.subs.get(room)!.add(p);
  }
  unsubscribe(room: Room, p: Participant): void {
    this.subs.get(room)?.delete(p);
  }
  publish(room: Room, msg: ServerMessage, except?: Participant): void {
    for (const p of this.subs.get(room) ?? []) if (p !== except && p.conn) p.conn.send(msg);
  }
}

const OPTS: RoomManagerOptions = {
  nodeId: 'n1', version: 'test', autoCreate: true, emptyTimeoutS: 0.05, maxParticipants: 0,
  maxMetadataBytes: 100, resumeWindowMs: 50, replayCapacity: 4, pingIntervalMs: 1000,
};

function grant(identity: string, room = 'r', video: Partial<VideoGrant> = {}): JoinGrant {
  const v = { roomJoin: true, room, ...video };
  return { claims: { iss: 'k', sub: identity, video: v }, identity, room, video: v };
}

const NO_EXTRAS = { iceServers: () => [], probeTargets: () => [], reconnectTargets: () => [] };

function setup(opts: Partial<RoomManagerOptions> = {}): { m: RoomManager; data: RoomMessaging; store: MemoryRoomMirror } {
  const store = new MemoryRoomMirror();
  const delivery = new RoomDelivery(new FakeFanout());
  const m = new RoomManager({ ...OPTS, ...opts }, delivery, NO_EXTRAS, store, pino({ level: 'silent' }));
  return { m, data: new RoomMessaging(delivery, { maxDataBytes: 100 }), store };
}

/** Timers the domain owns (rooms' empty timers, participants' resume timers) still armed. */
function armed(rooms: Room[], ps: Participant[]): number {
  return rooms.filter((r) => r.emptyTimer).length + ps.filter((p) => p.resumeTimer).length;
}

describe('RoomManager (no sockets)', () => {
  test('resume after the replay buffer overflowed is a fresh join, not a silent gap', async () => {
    const { m, data } = setup({ resumeWindowMs: 5000 });
    const events: string[] = [];
    m.on('resumed', (_r, _p, outcome) => events.push(outcome));
    const a = new FakeConn();
    const { room, participant: alice } = m.join(grant('alice'), a);
    const b = new FakeConn();
    const { participant: bob } = m.join(grant('bob'), b);
    const token = b.sent[0]!.join!.resumeToken;
    const seqAtDrop = room.seq;
    m.connectionClosed(room, bob, b);
    for (let i = 0; i < 10; i++) data.sendData(room, alice, { payload: new Uint8Array([i]) });
    const b2 = new FakeConn();
    const { participant: bob2 } = m.join(grant('bob'), b2, { token, lastSeq: seqAtDrop });
    assert.deepEqual(events, ['gap']);
    assert.notEqual(bob2.sid, bob.sid);
    assert.equal(b2.sent[0]!.join!.resumed, false);
    // Alice saw bob leave and join again, so her view is consistent.
    const kinds = a.sent.map((x) => Object.keys(x).find((k) => k !== 'seq'));
    assert.deepEqual(kinds.slice(-2), ['participantLeft', 'participantJoined']);
    m.closeAll('SERVER_SHUTDOWN', 1012);
    m.dispose();
  });

  test('resume inside the buffer replays exactly what the participant may see', () => {
    const { m, data } = setup({ resumeWindowMs: 5000, replayCapacity: 64 });
    const a = new FakeConn();
    const { room, participant: alice } = m.join(grant('alice'), a);
    const b = new FakeConn();
    const { participant: bob } = m.join(grant('bob'), b);
    const c = new FakeConn();
    m.join(grant('carol'), c);
    const last = room.seq;
    m.connectionClosed(room, bob, b);
    data.sendData(room, alice, { payload: new Uint8Array([1]) });
    data.sendData(room, alice, { payload: new Uint8Array([2]), destinationIdentities: ['carol'] });
    data.sendData(room, alice, { payload: new Uint8Array([3]), destinationIdentities: ['bob'] });
    const b2 = new FakeConn();
    m.join(grant('bob'), b2, { token: b.sent[0]!.join!.resumeToken, lastSeq: last });
    assert.equal(b2.sent[0]!.join!.resumed, true);
    assert.deepEqual(b2.sent.slice(1).map((x) => x.data!.payload[0]), [1, 3]);
    m.closeAll('SERVER_SHUTDOWN', 1012);
    m.dispose();
  });

  test('a wrong resume token never takes over a session', () => {
    const { m } = setup({ resumeWindowMs: 5000 });
    const b = new FakeConn();
    const { room, participant: bob } = m.join(grant('bob'), b);
    m.connectionClosed(room, bob, b);
    const thief = new FakeConn();
    const { participant } = m.join(grant('bob'), thief, { token: 'guess', lastSeq: 0 });
    assert.notEqual(participant.sid, bob.sid);
    assert.equal(thief.sent[0]!.join!.resumed, false);
    m.closeAll('SERVER_SHUTDOWN', 1012);
    m.dispose();
  });

  test('the resume window and the empty timeout end with the room closed and every timer gone', async () => {
    const { m, store } = setup();
    const finished: string[] = [];
    m.on('roomFinished', (r) => finished.push(r.name));
    const a = new FakeConn();
    const { room, participant } = m.join(grant('alice', 'short'), a);
    assert.equal((await store.listRooms()).length, 1);
    m.connectionClosed(room, participant, a);
    assert.equal(room.participants.size, 1, 'kept for the resume window');
    await sleep(80);
    assert.equal(room.participants.size, 0, 'removed after the resume window');
    await sleep(120);
    assert.deepEqual(finished, ['short']);
    assert.equal(m.rooms.size, 0);
    assert.equal((await store.listRooms()).length, 0);
    assert.equal(armed([room], [participant]), 0);
    m.dispose();
  });

  test('closeAll + dispose leave no rooms, participants or timers behind', () => {
    const { m } = setup({ resumeWindowMs: 60_000, emptyTimeoutS: 600 });
    const conns: FakeConn[] = [];
    const rooms: Room[] = [];
    const ps: Participant[] = [];
    for (let r = 0; r < 5; r++) {
      for (let i = 0; i < 4; i++) {
        const c = new FakeConn();
        conns.push(c);
        const { room, participant } = m.join(grant(`p${i}`, `room${r}`), c);
        rooms.push(room);
        ps.push(participant);
        if (i === 0) m.connectionClosed(room, participant, c); // one in its resume window per room
      }
    }
    assert.equal(armed(rooms, ps), 5);
    m.closeAll('SERVER_SHUTDOWN', 1012);
    m.dispose();
    assert.equal(m.rooms.size, 0);
    assert.equal(m.participantCount(), 0);
    assert.equal(armed(rooms, ps), 0);
    assert.ok(conns.filter((c) => c.closedWith === null).length === 5, 'only the already-closed ones were not closed again');
  });

  test('metadata over the limit is refused and changes nothing', () => {
    const { m } = setup();
    const a = new FakeConn();
    const { room, participant } = m.join(grant('a', 'r', { canUpdateOwnMetadata: true, roomAdmin: true }), a);
    assert.throws(() => m.updateOwnParticipant(room, participant, { metadata: 'x'.repeat(101) }), { code: 'TOO_LARGE' });
    assert.throws(() => m.updateRoomMetadataAsAdmin(room, participant, 'x'.repeat(101)), { code: 'TOO_LARGE' });
    assert.equal(participant.metadata, '');
    assert.equal(room.metadata, '');
    m.closeAll('SERVER_SHUTDOWN', 1012);
    m.dispose();
  });
});
