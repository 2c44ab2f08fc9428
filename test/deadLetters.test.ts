import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { describe, test } from 'node:test';
import { onBothDatabases } from './databases.js';
import pg from 'pg';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import type { Database } from '../src/db/database.js';
import { WriteBehind } from '../src/db/writeBehind.js';
import { createToken } from '../src/auth/token.js';
import { eventually, KEY, SECRET, startServer } from './helpers.js';

const quiet = pino({ level: 'silent' });

async function counter(registry: Registry, name: string): Promise<number> {
  const m = await registry.getSingleMetric(name)?.get();
  return m?.values.reduce((s, v) => s + v.value, 0) ?? 0;
}

const INSERT_CALL = `INSERT INTO calls (id, room_name, node_id, started_at, status) VALUES ($1, $2, 'n', $3, 'active')`;
const END_CALL = `UPDATE calls SET status = 'ended', peak_participants = $2 WHERE id = $1`;
const INSERT_PART = `INSERT INTO call_participants (id, call_id, identity, name, joined_at) VALUES ($1, $2, $3, $4, now())`;

/**
 * The write queue with poison among good statements: a NUL in a participant's identity
 * (22021, the repro injected at the write-behind level), a reference to a call that
 * does not exist (23503) and a value of the wrong type (22P02). Each good call is inserted
 * and then updated: the update only lands if the order was kept.
 */
async function poisonedQueue(db: Database): Promise<void> {
  const registry = new Registry();
  const wb = new WriteBehind(db, { maxBuffered: 10_000 }, registry, quiet);
  const good: string[] = [];
  for (let i = 0; i < 40; i++) {
    const id = `RM_good_${i}`;
    good.push(id);
    wb.enqueue(INSERT_CALL, [id, `room-${i}`, new Date()]);
    if (i === 7) wb.enqueue(INSERT_PART, ['PA_evil', id, 'evil\u0000user', 'Evil']);
    if (i === 20) wb.enqueue(INSERT_PART, ['PA_orphan', 'RM_missing', 'orphan', null]);
    if (i === 33) wb.enqueue(END_CALL, [id, 'many']);
    wb.enqueue(INSERT_PART, [`PA_${i}`, id, `user-${i}`, `User ${i}`]);
    wb.enqueue(END_CALL, [id, i]);
  }
  await wb.flush(20_000);
  assert.equal(wb.size, 0, 'the queue drained');
  const calls = (await db.query<{ id: string; status: string; peak_participants: number }>(`SELECT id, status, peak_participants FROM calls ORDER BY id`)).rows;
  assert.deepEqual(calls.map((c) => c.id).sort(), [...good].sort(), 'every good call written');
  assert.ok(calls.every((c) => c.status === 'ended' && c.peak_participants === Number(c.id.slice('RM_good_'.length))), 'updates applied after their inserts');
  const parts = (await db.query<{ id: string }>(`SELECT id FROM call_participants`)).rows.map((r) => r.id);
  assert.equal(parts.length, 40);
  assert.ok(!parts.includes('PA_evil') && !parts.includes('PA_orphan'));
  const dead = (await db.query<{ source: string; sql: string; params: string; error: string; sqlstate: string }>(`SELECT * FROM dead_letters ORDER BY id`)).rows;
  assert.deepEqual(dead.map((d) => d.sqlstate), ['22021', '23503', '22P02']);
  assert.ok(dead.every((d) => d.source === 'write_behind'));
  assert.equal(dead[0]!.sql, INSERT_PART);
  assert.match(dead[0]!.error, /0x00/);
  // The original values, escaped: the NUL is the six characters \u0000, and they parse back.
  assert.ok(dead[0]!.params.includes('evil\\u0000user'));
  assert.deepEqual(JSON.parse(dead[0]!.params), ['PA_evil', 'RM_good_7', 'evil\u0000user', 'Evil']);
  assert.deepEqual(JSON.parse(dead[2]!.params), ['RM_good_33', 'many']);
  assert.equal(await counter(registry, 'auralink_db_dead_letters_total'), 3);
  assert.equal(await counter(registry, 'auralink_db_writes_total'), 40 * 3);
  assert.equal(await counter(registry, 'auralink_db_write_failures_total'), 0, 'no retry: row-level failures are not the connection');
  await wb.close();
}

/** The connection fails (no SQLSTATE): the batch waits and is retried whole, nothing dead-lettered. */
async function connectionFailure(db: Database): Promise<void> {
  let failuresLeft = 2;
  const flaky: Database = {
    kind: db.kind,
    query: (sql, params) => db.query(sql, params),
    batch: (ops) => (failuresLeft-- > 0 ? Promise.reject(new Error('Connection terminated unexpectedly')) : db.batch(ops)),
    exclusive: (key, fn) => db.exclusive(key, fn),
    close: () => db.close(),
  };
  const registry = new Registry();
  const wb = new WriteBehind(flaky, { maxBuffered: 10_000 }, registry, quiet);
  for (let i = 0; i < 10; i++) wb.enqueue(INSERT_CALL, [`RM_conn_${i}`, `conn-${i}`, new Date()]);
  await wb.flush(10_000);
  assert.equal(wb.size, 0);
  const n = (await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM calls WHERE id LIKE 'RM_conn_%'`)).rows[0]!.n;
  assert.equal(n, 10);
  assert.equal(await counter(registry, 'auralink_db_write_failures_total'), 2);
  assert.equal(await counter(registry, 'auralink_db_dead_letters_total'), 0);
  assert.equal(await counter(registry, 'auralink_db_writes_total'), 10);
  await wb.close();
}

onBothDatabases('write-behind: a bad row never stops the queue', (db) => {
  test('poison among good statements: all good ones written in order, each bad one dead-lettered and counted', () => poisonedQueue(db()));
  test('a connection-level failure is retried whole', () => connectionFailure(db()));
});

/** A receiver that can never accept events about participant "refused" (HTTP 400), and takes the rest. */
async function pickyReceiver(): Promise<{ url: string; got: string[]; close(): Promise<void> }> {
  const got: string[] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', () => {
      const ev = JSON.parse(body) as { event: string; participant?: { identity: string } };
      if (ev.participant?.identity === 'refused') return res.writeHead(400).end();
      got.push(ev.participant ? `${ev.event}:${ev.participant.identity}` : ev.event);
      res.writeHead(200).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    url: `http://127.0.0.1:${(server.address() as { port: number }).port}/hook`,
    got,
    close: () => new Promise((r) => server.close(() => r())),
  };
}

async function poisonedWebhooks(database: Record<string, unknown>): Promise<void> {
  const rx = await pickyReceiver();
  const t = await startServer({ webhook: { urls: [rx.url], max_attempts: 2 }, database, room: { empty_timeout_s: 0.2 } });
  try {
    const a = await t.client('alice', 'hooks');
    const bad = await t.client('refused', 'hooks');
    const b = await t.client('bob', 'hooks');
    await bad.leave();
    await b.leave();
    await a.leave();
    const expected = ['room_started', 'participant_joined:alice', 'participant_joined:bob', 'participant_left:bob', 'participant_left:alice', 'room_finished'];
    await eventually(() => rx.got.length === expected.length, 15_000, 'every acceptable event delivered');
    assert.deepEqual(rx.got, expected, 'in order, past the two dead ones');
    assert.equal(await t.metric('auralink_webhooks_dead_total'), 2);
    assert.equal(await t.metric('auralink_webhooks_pending'), 0);
    const get = (path: string, token?: string): Promise<Response> =>
      fetch(`${t.http}${path}`, { headers: token ? { authorization: `Bearer ${token}` } : {} });
    assert.equal((await get('/api/v1/webhooks/dead')).status, 401);
    const admin = createToken(KEY, SECRET, { identity: 'dash', video: { roomList: true } });
    const r = (await (await get('/api/v1/webhooks/dead?room=hooks', admin)).json()) as { webhooks: { event: string; attempts: number; last_error: string; body: string }[] };
    assert.deepEqual(r.webhooks.map((w) => w.event), ['participant_joined', 'participant_left']);
    assert.ok(r.webhooks.every((w) => w.attempts === 2 && w.last_error === 'HTTP 400' && w.body.includes('"refused"')));
  } finally {
    await t.close();
    await rx.close();
  }
}

describe('webhook outbox: an event its receiver never accepts is dead after max_attempts, the room queue moves on', () => {
  test('PGlite', () => poisonedWebhooks({}));
  test('PostgreSQL', async () => {
    const dbName = `auralink_wh_${process.pid}_${Date.now()}`;
    const admin = new pg.Client({ connectionString: 'postgres://postgres@127.0.0.1:5432/postgres' });
    await admin.connect();
    await admin.query(`CREATE DATABASE ${dbName}`);
    try {
      await poisonedWebhooks({ url: `postgres://postgres@127.0.0.1:5432/${dbName}` });
    } finally {
      await admin.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
      await admin.end();
    }
  });
});
