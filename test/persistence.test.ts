import assert from 'node:assert/strict';
import { execSync } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import { mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { PGlite } from '@electric-sql/pglite';
import { WebhookReceiver } from 'livekit-server-sdk';
import pg from 'pg';
import { eventually, KEY, SECRET, sleep, startServer } from './helpers.js';
import { publishAudio } from './media.js';

/** A call: two participants, one publishes, both leave; the room closes (empty timeout). */
async function aCall(t: Awaited<ReturnType<typeof startServer>>, room: string): Promise<{ roomSid: string; sids: string[] }> {
  const a = await t.client('alice', room, { grant: { name: 'Alice' } });
  const b = await t.client('bob', room);
  await publishAudio(b, 777);
  const out = { roomSid: a.join.room.sid, sids: [a.me.sid, b.me.sid] };
  await b.leave();
  await a.leave();
  return out;
}

interface CallRow {
  room_name: string;
  status: string;
  peak_participants: number;
  ended_at: Date | null;
  duration_seconds: number | null;
}
interface PartRow {
  identity: string;
  name: string;
  left_at: Date | null;
  leave_reason: string;
  media_state: { published?: string[] };
}

describe('persistence: calls and participants', () => {
  const dbName = `auralink_t_${process.pid}_${Date.now()}`;
  let admin: pg.Client;
  before(async () => {
    admin = new pg.Client({ connectionString: 'postgres://postgres@127.0.0.1:5432/postgres' });
    await admin.connect();
    await admin.query(`CREATE DATABASE ${dbName}`);
  });
  after(async () => {
    await admin.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
    await admin.end();
  });

  test('in the real PostgreSQL: the call, its peak, and each participant with join/leave and media', async () => {
    const url = `postgres://postgres@127.0.0.1:5432/${dbName}`;
    const t = await startServer({ database: { url }, room: { empty_timeout_s: 0.2 } });
    const { roomSid, sids } = await aCall(t, 'pg-call');
    const db = new pg.Client({ connectionString: url });
    await db.connect();
    try {
      await eventually(async () => (await db.query(`SELECT status FROM calls WHERE id = $1`, [roomSid])).rows[0]?.status === 'ended', 5000, 'call ended');
      const call = (await db.query<CallRow>(`SELECT * FROM calls WHERE id = $1`, [roomSid])).rows[0]!;
      assert.equal(call.room_name, 'pg-call');
      assert.equal(call.peak_participants, 2);
      assert.ok(call.ended_at && call.duration_seconds! > 0);
      const parts = (await db.query<PartRow>(`SELECT * FROM call_participants WHERE call_id = $1 ORDER BY joined_at`, [roomSid])).rows;
      assert.deepEqual(parts.map((p) => p.identity), ['alice', 'bob']);
      assert.equal(parts[0]!.name, 'Alice');
      assert.ok(parts.every((p) => p.left_at && p.leave_reason === 'CLIENT_INITIATED'));
      assert.deepEqual(parts[1]!.media_state.published, ['microphone']);
      const ids = (await db.query(`SELECT id FROM call_participants WHERE call_id = $1`, [roomSid])).rows.map((r) => r.id).sort();
      assert.deepEqual(ids, [...sids].sort());
      const migrations = (await db.query(`SELECT version FROM schema_migrations`)).rows.map((r) => r.version);
      assert.deepEqual(migrations.sort(), ['001_init.sql', '002_dead_letters.sql', '003_aic_call_summaries.sql', '004_aic_target.sql']);
    } finally {
      await db.end();
      await t.close();
    }
  });

  test('embedded PGlite by default, same schema, kept across restarts', async () => {
    const dir = join(mkdtempSync(join(tmpdir(), 'auralink-pgl-')), 'data');
    const t1 = await startServer({ database: { data_dir: dir }, room: { empty_timeout_s: 0.2 } });
    const first = await aCall(t1, 'lite-1');
    await sleep(600); // the room closes and its end is queued
    await t1.close();
    const t2 = await startServer({ database: { data_dir: dir }, room: { empty_timeout_s: 0.2 } });
    const second = await aCall(t2, 'lite-2');
    await sleep(600);
    await t2.close();
    const db = await PGlite.create(dir);
    try {
      const calls = (await db.query<CallRow & { id: string }>(`SELECT * FROM calls ORDER BY started_at`)).rows;
      assert.deepEqual(calls.map((c) => c.id), [first.roomSid, second.roomSid]);
      assert.ok(calls.every((c) => c.status === 'ended' && c.peak_participants === 2));
      assert.equal((await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM call_participants`)).rows[0]!.n, 4);
    } finally {
      await db.close();
    }
  });
});

/** A webhook receiver that verifies every request with livekit-server-sdk's WebhookReceiver. */
class Receiver {
  readonly events: { event: string; room: string; identity: string }[] = [];
  rejected = 0;
  down = false;
  server!: Server;
  port = 0;
  private readonly verifier = new WebhookReceiver(KEY, SECRET);

  async start(port = 0): Promise<void> {
    this.server = createServer((req, res) => {
      let body = '';
      req.on('data', (d: Buffer) => (body += d.toString()));
      req.on('end', () => {
        if (this.down) {
          res.writeHead(503).end();
          return;
        }
        assert.equal(req.headers['content-type'], 'application/webhook+json');
        this.verifier.receive(body, req.headers.authorization).then(
          (ev) => {
            this.events.push({ event: ev.event, room: ev.room?.name ?? '', identity: ev.participant?.identity ?? '' });
            res.writeHead(200).end();
          },
          () => {
            this.rejected++;
            res.writeHead(401).end();
          },
        );
      });
    });
    await new Promise<void>((r) => this.server.listen(port, '127.0.0.1', () => r()));
    this.port = (this.server.address() as { port: number }).port;
  }

  stop(): Promise<void> {
    return new Promise((r) => this.server.close(() => r()));
  }

  of(room: string): string[] {
    return this.events.filter((e) => e.room === room).map((e) => (e.identity ? `${e.event}:${e.identity}` : e.event));
  }
}

const CALL_EVENTS = [
  'room_started',
  'participant_joined:alice',
  'participant_joined:bob',
  'track_published:bob',
  'track_unpublished:bob',
  'participant_left:bob',
  'participant_left:alice',
  'room_finished',
];

describe('webhooks', () => {
  test("LiveKit-format, signed events that livekit-server-sdk's WebhookReceiver accepts, in order", async () => {
    const rx = new Receiver();
    await rx.start();
    const t = await startServer({ webhook: { urls: [`http://127.0.0.1:${rx.port}/hook`] }, room: { empty_timeout_s: 0.2 } });
    try {
      await aCall(t, 'hooked');
      await eventually(() => rx.of('hooked').length === CALL_EVENTS.length, 8000, 'all webhooks');
      assert.deepEqual(rx.of('hooked'), CALL_EVENTS);
      assert.equal(rx.rejected, 0);
      assert.ok((await t.metric('auralink_webhooks_delivered_total')) >= CALL_EVENTS.length);
    } finally {
      await t.close();
      await rx.stop();
    }
  });

  test('while the receiver is down they wait in the outbox; then all arrive, in order', async () => {
    const rx = new Receiver();
    await rx.start();
    rx.down = true;
    const t = await startServer({ webhook: { urls: [`http://127.0.0.1:${rx.port}/hook`] }, room: { empty_timeout_s: 0.2 } });
    try {
      await aCall(t, 'outage');
      await eventually(async () => (await t.metric('auralink_webhooks_failed_total')) >= 3, 8000, 'failed attempts');
      assert.ok((await t.metric('auralink_webhooks_pending')) >= CALL_EVENTS.length);
      rx.down = false;
      await eventually(() => rx.of('outage').length === CALL_EVENTS.length, 15_000, 'delivered after the outage');
      assert.deepEqual(rx.of('outage'), CALL_EVENTS);
      await eventually(async () => (await t.metric('auralink_webhooks_pending')) === 0, 3000, 'outbox empty');
    } finally {
      await t.close();
      await rx.stop();
    }
  });

  test('a server restart loses no webhook: the next run delivers what the last one could not', async () => {
    const rx = new Receiver();
    await rx.start();
    const port = rx.port;
    await rx.stop(); // receiver down: connection refused
    const dir = join(mkdtempSync(join(tmpdir(), 'auralink-hook-')), 'data');
    const cfg = { webhook: { urls: [`http://127.0.0.1:${port}/hook`] }, database: { data_dir: dir }, room: { empty_timeout_s: 0.2 } };
    const t1 = await startServer(cfg);
    await aCall(t1, 'restart');
    await eventually(async () => (await t1.metric('auralink_webhooks_pending')) >= CALL_EVENTS.length, 8000, 'queued in the outbox');
    await t1.close();
    const rx2 = new Receiver();
    await rx2.start(port);
    const t2 = await startServer(cfg);
    try {
      await eventually(() => rx2.of('restart').length === CALL_EVENTS.length, 15_000, 'delivered after restart');
      assert.deepEqual(rx2.of('restart'), CALL_EVENTS);
    } finally {
      await t2.close();
      await rx2.stop();
    }
  });
});

describe('call history API and quality sampling', () => {
  test('GET /api/v1/calls, /calls/{id}, /calls/{id}/participants, /quality/metrics: auth, filters, pages', async () => {
    const t = await startServer({ sfu: { allow_plain_transports: true }, database: { quality_sample_s: 0.3 }, room: { empty_timeout_s: 0.2 } });
    try {
      const first = await aCall(t, 'hist-1');
      // A call with media flowing, for quality samples.
      const a = await t.client('sender', 'hist-2');
      const send = (await a.request('createTransport', { producing: true, plain: true })).transport!;
      const rtp = JSON.stringify({ codecs: [{ mimeType: 'audio/opus', payloadType: 111, clockRate: 48000, channels: 2 }], encodings: [{ ssrc: 999 }] });
      const producerId = (await a.request('produce', { transportId: send.id, kind: 'audio', rtpParameters: rtp })).id!;
      const { createSocket } = await import('node:dgram');
      const sock = createSocket('udp4');
      for (let i = 0; i < 60; i++) {
        const pkt = Buffer.alloc(112, 3);
        pkt[0] = 0x80;
        pkt[1] = 111;
        pkt.writeUInt16BE(i, 2);
        pkt.writeUInt32BE(960 * i, 4);
        pkt.writeUInt32BE(999, 8);
        sock.send(pkt, send.plainPort!, send.plainIp!);
        await sleep(20);
      }
      sock.close();
      const { createToken } = await import('../src/auth/token.js');
      const admin = createToken(KEY, SECRET, { identity: 'dash', video: { roomList: true } });
      const get = async (path: string, token: string | null = admin): Promise<{ status: number; body: Record<string, unknown> }> => {
        const r = await fetch(`${t.http}${path}`, { headers: token ? { authorization: `Bearer ${token}` } : {} });
        return { status: r.status, body: (await r.json()) as Record<string, unknown> };
      };
      assert.equal((await get('/api/v1/calls', null)).status, 401);
      assert.equal((await get('/api/v1/calls', createToken(KEY, SECRET, { identity: 'x', video: { roomJoin: true, room: 'r' } }))).status, 403);
      assert.equal((await get('/api/v1/calls?limit=0')).status, 400);
      // Bad query values are the caller's 400, never a failed query's 500.
      for (const bad of ['cursor=abc', 'cursor=99999999999999999999%7Cx', 'from=-271821-04-20T00:00:00Z', 'to=8640000000000000', 'room=%00', `room=${'x'.repeat(300)}`]) {
        const r = await get(`/api/v1/calls?${bad}`);
        assert.equal(r.status, 400, bad);
        assert.equal(r.body.code, 'INVALID_FIELD', bad);
      }
      assert.equal((await get('/api/v1/quality/metrics?cursor=99999999999999999999999')).status, 400);
      assert.equal((await get('/api/v1/quality/metrics?participant=%00')).status, 400);

      await eventually(async () => ((await get('/api/v1/calls')).body.calls as unknown[]).length === 2, 5000, 'two calls');
      const page1 = (await get('/api/v1/calls?limit=1')).body;
      assert.equal((page1.calls as { room_name: string }[])[0]!.room_name, 'hist-2', 'newest first');
      const page2 = (await get(`/api/v1/calls?limit=1&cursor=${encodeURIComponent(page1.next_cursor as string)}`)).body;
      assert.equal((page2.calls as { id: string }[])[0]!.id, first.roomSid);
      assert.equal(page2.next_cursor, null);
      assert.deepEqual(((await get('/api/v1/calls?room=hist-1')).body.calls as { id: string }[]).map((c) => c.id), [first.roomSid]);
      const one = await get(`/api/v1/calls/${first.roomSid}`);
      assert.equal(one.body.room_name, 'hist-1');
      assert.equal((await get('/api/v1/calls/RM_nope')).status, 404);
      const parts = (await get(`/api/v1/calls/${first.roomSid}/participants`)).body.participants as { identity: string }[];
      assert.deepEqual(parts.map((p) => p.identity), ['alice', 'bob']);

      const callId = a.join.room.sid;
      await eventually(async () => {
        const m = (await get(`/api/v1/quality/metrics?call=${callId}&participant=${a.me.sid}`)).body.metrics as { bitrate_kbps: number; track_id: string }[];
        return m.some((x) => x.track_id === producerId && x.bitrate_kbps > 0);
      }, 5000, 'a quality sample of the flowing track');
      const q = (await get(`/api/v1/quality/metrics?call=${callId}&limit=1`)).body;
      assert.equal((q.metrics as unknown[]).length, 1);
      assert.ok(q.next_cursor);
      await a.leave();
    } finally {
      await t.close();
    }
  });
});

describe('PostgreSQL outage', () => {
  const dbName = `auralink_outage_${process.pid}_${Date.now()}`;
  const cluster = (verb: 'stop' | 'start'): void => {
    const version = readdirSync('/etc/postgresql')[0]!;
    execSync(`pg_ctlcluster --skip-systemctl-redirect ${version} main ${verb}`, { stdio: 'ignore' });
  };

  test('writes wait while PostgreSQL is down and land when it is back: no row lost', async () => {
    const admin = new pg.Client({ connectionString: 'postgres://postgres@127.0.0.1:5432/postgres' });
    await admin.connect();
    await admin.query(`CREATE DATABASE ${dbName}`);
    await admin.end();
    const url = `postgres://postgres@127.0.0.1:5432/${dbName}`;
    const t = await startServer({ database: { url }, room: { empty_timeout_s: 0.2 } });
    const rooms: string[] = [];
    try {
      rooms.push((await aCall(t, 'before-outage')).roomSid);
      await sleep(500);
      cluster('stop');
      try {
        for (let i = 0; i < 5; i++) rooms.push((await aCall(t, `during-outage-${i}`)).roomSid);
        await eventually(async () => (await t.metric('auralink_db_write_failures_total')) > 0, 10_000, 'writes failing');
        assert.ok((await t.metric('auralink_db_write_queue')) > 0, 'writes are waiting');
        // Signalling is unaffected while the database is away.
        assert.ok((await t.client('still-works', 'x')).me.sid);
      } finally {
        cluster('start');
      }
      await eventually(async () => (await t.metric('auralink_db_write_queue')) === 0, 20_000, 'queue drained after PostgreSQL came back');
      const db = new pg.Client({ connectionString: url });
      await db.connect();
      try {
        const { rows } = await db.query(`SELECT id, status FROM calls WHERE id = ANY($1)`, [rooms]);
        assert.equal(rows.length, rooms.length, 'every call row is there');
        assert.ok(rows.every((r) => r.status === 'ended'));
        const n = (await db.query(`SELECT count(*)::int AS n FROM call_participants WHERE call_id = ANY($1) AND left_at IS NOT NULL`, [rooms])).rows[0].n;
        assert.equal(n, rooms.length * 2);
      } finally {
        await db.end();
      }
    } finally {
      await t.close();
      const cleanup = new pg.Client({ connectionString: 'postgres://postgres@127.0.0.1:5432/postgres' });
      await cleanup.connect();
      await cleanup.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
      await cleanup.end();
    }
  });
});
