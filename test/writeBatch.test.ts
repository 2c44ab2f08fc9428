import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { describe, test } from 'node:test';
import { onBothDatabases } from './databases.js';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { recordCalls } from '../src/db/callRecorder.js';
import type { Database } from '../src/db/database.js';
import { WriteBehind } from '../src/db/writeBehind.js';
import { Participant, permissionFromGrant } from '../src/rooms/participant.js';
import type { Connection } from '../src/rooms/ports.js';
import { Room } from '../src/rooms/room.js';
import type { RoomManagerEvents } from '../src/rooms/types.js';
import { notifyWebhooks } from '../src/webhooks/notifier.js';

const quiet = pino({ level: 'silent' });

async function counter(registry: Registry, name: string): Promise<number> {
  const m = await registry.getSingleMetric(name)?.get();
  return m?.values.reduce((s, v) => s + v.value, 0) ?? 0;
}

/** The database as the write-behind queue sees it, with the statements of each batch kept. */
function watched(db: Database, failFirst = 0): Pick<Database, 'query' | 'batch'> & { batches: string[][] } {
  const batches: string[][] = [];
  let failuresLeft = failFirst;
  return {
    batches,
    query: (sql, params) => db.query(sql, params),
    batch: (ops) => {
      batches.push(ops.map((o) => o.sql));
      if (failuresLeft-- > 0) return Promise.reject(new Error('Connection terminated unexpectedly'));
      return db.batch(ops);
    },
  };
}

let seq = 0;
const room = (name: string): Room => new Room(`RM_${name}_${seq++}`, name, '', 0, 10, 0);
const person = (identity: string, name: string): Participant =>
  new Participant(`PA_${seq++}`, identity, name, '', permissionFromGrant({}), false, null as unknown as Connection, Date.now() - seq);

// Identities an array literal would mangle if a value were not quoted and escaped.
const AWKWARD = ['a"quote', 'back\\slash', 'comma,brace{}', 'NULL', '', ' spaced ', 'émoji 🎉', "it's"];

async function stormIsOneStatementPerRun(db: Database): Promise<void> {
  const w = watched(db);
  const registry = new Registry();
  const wb = new WriteBehind(w, { maxBuffered: 10_000 }, registry, quiet);
  const events = new EventEmitter<RoomManagerEvents>();
  recordCalls(events, wb, 'node-a');
  const a = room('storm-a');
  const b = room('storm-b');
  const joined: [Room, Participant][] = [];
  events.emit('roomStarted', a);
  for (let i = 0; i < 30; i++) joined.push([a, person(AWKWARD[i % AWKWARD.length]! + i, i % 3 ? `Name ${i}` : '')]);
  for (const [r, p] of joined.slice(0, 30)) events.emit('participantJoined', r, p);
  events.emit('roomStarted', b);
  for (let i = 0; i < 10; i++) {
    const p = person(`b${i}`, `B ${i}`);
    joined.push([b, p]);
    events.emit('participantJoined', b, p);
  }
  await wb.flush(20_000);
  assert.equal(wb.size, 0);
  // 42 rows in 4 runs (a call, its 30 participants, a call, its 10): 4 statements, in order.
  assert.equal(w.batches.length, 1, 'one transaction');
  assert.deepEqual(
    w.batches[0]!.map((s) => /^INSERT INTO (\w+)/.exec(s)![1]),
    ['calls', 'call_participants', 'calls', 'call_participants'],
  );
  assert.equal(await counter(registry, 'auralink_db_writes_total'), 42, 'rows are still counted as writes');
  const rows = (
    await db.query<{ id: string; call_id: string; identity: string; name: string; joined_at: Date }>(
      `SELECT id, call_id, identity, name, joined_at FROM call_participants WHERE call_id IN ($1, $2)`,
      [a.sid, b.sid],
    )
  ).rows;
  const byId = new Map(rows.map((r) => [r.id, r]));
  assert.equal(rows.length, 40);
  for (const [r, p] of joined) {
    const got = byId.get(p.sid);
    assert.ok(got, `${p.sid} written`);
    assert.deepEqual([got.call_id, got.identity, got.name, new Date(got.joined_at).getTime()], [r.sid, p.identity, p.name, p.joinedAt]);
  }
  const calls = (await db.query<{ id: string; node_id: string; status: string }>(`SELECT id, node_id, status FROM calls WHERE id IN ($1, $2) ORDER BY id`, [a.sid, b.sid])).rows;
  assert.deepEqual(calls.map((c) => [c.node_id, c.status]), [['node-a', 'active'], ['node-a', 'active']]);
  await wb.close();
}

async function badRowInARun(db: Database): Promise<void> {
  const w = watched(db);
  const registry = new Registry();
  const wb = new WriteBehind(w, { maxBuffered: 10_000 }, registry, quiet);
  const events = new EventEmitter<RoomManagerEvents>();
  recordCalls(events, wb, 'node-a');
  const r = room('poisoned');
  // A session started on another node (a cluster): this node writes its call row before its participant's.
  const ghost = room('started-elsewhere');
  events.emit('roomStarted', r);
  const good: Participant[] = [];
  let evil: Participant | undefined;
  let orphan: Participant | undefined;
  for (let i = 0; i < 20; i++) {
    if (i === 6) events.emit('participantJoined', r, (evil = person('evil\u0000user', 'Evil')));
    if (i === 13) events.emit('participantJoined', ghost, (orphan = person('orphan', 'Orphan')));
    const p = person(`user-${i}`, `User ${i}`);
    good.push(p);
    events.emit('participantJoined', r, p);
  }
  await wb.flush(20_000);
  assert.equal(wb.size, 0, 'the queue drained');
  assert.equal(w.batches[0]!.length, 4, 'the call, a run of 14 rows (the bad one among them), the other call, a run of 8 rows');
  const ids = (await db.query<{ id: string }>(`SELECT id FROM call_participants WHERE call_id = $1`, [r.sid])).rows.map((x) => x.id);
  assert.deepEqual(ids.sort(), good.map((p) => p.sid).sort(), 'every good row written, no bad one');
  const elsewhere = (await db.query<{ id: string }>(`SELECT id FROM call_participants WHERE call_id = $1`, [ghost.sid])).rows.map((x) => x.id);
  assert.deepEqual(elsewhere, [orphan!.sid], 'the participant of a session started elsewhere is written, with its call row');
  const dead = (
    await db.query<{ sql: string; params: string; sqlstate: string }>(`SELECT sql, params, sqlstate FROM dead_letters WHERE params LIKE $1 OR params LIKE $2 ORDER BY id`, [
      `%${evil!.sid}%`,
      `%${orphan!.sid}%`,
    ])
  ).rows;
  assert.deepEqual(dead.map((d) => d.sqlstate), ['22021'], 'the bad row dead-lettered alone');
  for (const d of dead) assert.match(d.sql, /^INSERT INTO call_participants \(id, call_id, identity, name, joined_at\) VALUES \(\$1, \$2, \$3, \$4, \$5\)/, 'recorded as its one-row statement');
  assert.deepEqual(JSON.parse(dead[0]!.params).slice(0, 4), [evil!.sid, r.sid, 'evil\u0000user', 'Evil']);
  assert.equal(await counter(registry, 'auralink_db_dead_letters_total'), 1);
  assert.equal(await counter(registry, 'auralink_db_writes_total'), 23);
  assert.equal(await counter(registry, 'auralink_db_write_failures_total'), 0);
  await wb.close();
}

/** Outbox rows (no conflict clause: a row written twice would show) through two failed attempts. */
async function outboxOrderAndRetry(db: Database): Promise<void> {
  const w = watched(db, 2);
  const registry = new Registry();
  const wb = new WriteBehind(w, { maxBuffered: 10_000 }, registry, quiet);
  const events = new EventEmitter<RoomManagerEvents>();
  const r = room(`hooks-${process.pid}-${seq}`);
  notifyWebhooks(events, wb, ['http://x.invalid/1', 'http://x.invalid/2']);
  const expected: string[] = [];
  const put = (event: string, who?: string): void => {
    expected.push(`${event}:${who ?? ''}@1`, `${event}:${who ?? ''}@2`);
  };
  events.emit('roomStarted', r);
  put('room_started');
  const ps = Array.from({ length: 8 }, (_, i) => person(`h${i}`, ''));
  for (const p of ps) {
    events.emit('participantJoined', r, p);
    put('participant_joined', p.identity);
  }
  for (const p of ps.slice(0, 3)) {
    events.emit('participantLeft', r, p, 'CLIENT_INITIATED');
    put('participant_left', p.identity);
  }
  await wb.flush(20_000);
  assert.equal(wb.size, 0);
  assert.equal(await counter(registry, 'auralink_db_write_failures_total'), 2, 'retried while the database was away');
  assert.deepEqual(new Set(w.batches.map((b) => b.length)), new Set([1]), 'the 24 rows are one statement');
  const got = (await db.query<{ event: string; url: string; body: string }>(`SELECT event, url, body FROM webhook_outbox WHERE room_name = $1 ORDER BY id`, [r.name])).rows;
  assert.deepEqual(
    got.map((g) => `${g.event}:${(JSON.parse(g.body) as { participant?: { identity: string } }).participant?.identity ?? ''}@${g.url.slice(-1)}`),
    expected,
    'each row once, ids in queue order',
  );
  await wb.close();
}

onBothDatabases('write-behind: a run of rows is one statement', (db) => {
  test('a storm of joins: one statement per run of same-table rows, every value as given', () => stormIsOneStatementPerRun(db()));
  test('a bad row in a run: bisected to that row, dead-lettered alone as its one-row statement', () => badRowInARun(db()));
  test('webhook outbox rows: retried whole while the database is away, written once, in queue order', () => outboxOrderAndRetry(db()));
});

describe('write-behind: coalescing', () => {
  test('rows queued while a batch is written wait for their own window: one transaction, not one each', async () => {
    const COALESCE = 400; // wide, so a loaded machine's scheduling cannot decide the result
    const batches: unknown[][] = [];
    let release: (() => void) | undefined;
    const db: Pick<Database, 'query' | 'batch'> = {
      query: () => Promise.resolve({ rows: [] }),
      batch: (ops) => {
        batches.push(ops.map((o) => o.params[0]));
        // The first batch is held until the test lets it go; later ones are written at once.
        return batches.length === 1 ? new Promise<void>((r) => (release = r)) : Promise.resolve();
      },
    };
    const wb = new WriteBehind(db, { maxBuffered: 100, coalesceMs: COALESCE }, new Registry(), quiet);
    const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
    wb.enqueue('UPDATE a', ['A']);
    while (!release) await sleep(5);
    wb.enqueue('UPDATE b', ['B']); // queued while A's batch is being written
    release();
    await sleep(20); // A's batch is done; before the change, B had been written alone by now
    wb.enqueue('UPDATE c', ['C']);
    await wb.flush(10_000);
    assert.equal(wb.size, 0);
    assert.deepEqual(batches, [['A'], ['B', 'C']]);
    await wb.close();
  });
});
