import type uWS from 'uWebSockets.js';
import { TokenError, type TokenVerifier } from '../auth/token.js';
import type { Database } from '../db/database.js';
import { asyncRoute } from './http.js';

const MAX_LIMIT = 500;

class HttpError extends Error {
  constructor(readonly status: number, readonly code: string, message: string) {
    super(message);
  }
}

function limitOf(q: URLSearchParams): number {
  const raw = q.get('limit');
  if (raw === null) return 100;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1 || n > MAX_LIMIT) throw new HttpError(400, 'INVALID_FIELD', `limit must be 1..${MAX_LIMIT}`);
  return n;
}

/** Builds a parameterised WHERE clause: each condition's "?" becomes the next $n. */
class Where {
  readonly parts: string[] = [];
  readonly args: unknown[] = [];
  add(sql: string, v: unknown): void {
    this.args.push(v);
    this.parts.push(sql.replace('?', `$${this.args.length}`));
  }
  /** The standard filters of a list endpoint: exact-match params and a time range. */
  filters(q: URLSearchParams, exact: Record<string, string>, timeColumn: string): this {
    for (const [param, column] of Object.entries(exact)) {
      const v = q.get(param);
      if (!v) continue;
      // PostgreSQL refuses NUL in text: a 400 here, not a failed query.
      if (v.includes('\u0000') || v.length > 256) throw new HttpError(400, 'INVALID_FIELD', `${param} must be 1..256 characters, no NUL`);
      this.add(`${column} = ?`, v);
    }
    const from = timeOf(q, 'from');
    const to = timeOf(q, 'to');
    if (from) this.add(`${timeColumn} >= ?`, from);
    if (to) this.add(`${timeColumn} < ?`, to);
    return this;
  }
  sql(): string {
    return this.parts.length ? `WHERE ${this.parts.join(' AND ')}` : '';
  }
}

// JavaScript dates reach years PostgreSQL's timestamptz cannot hold (the query would fail).
const MAX_TIME = Date.UTC(10000, 0, 1);
const inRange = (d: Date): boolean => d.getTime() >= 0 && d.getTime() < MAX_TIME;

function timeOf(q: URLSearchParams, name: string): Date | null {
  const raw = q.get(name);
  if (raw === null) return null;
  const d = new Date(/^\d+$/.test(raw) ? Number(raw) : raw);
  if (!inRange(d)) throw new HttpError(400, 'INVALID_FIELD', `${name} must be an ISO time or epoch ms, years 1970-9999`);
  return d;
}

/** Keyset pagination on a bigserial id: rows after the cursor, and the cursor of the next page. */
async function pageById(db: Database, table: string, w: Where, q: URLSearchParams, columns = '*'): Promise<{ rows: unknown[]; next: string | null }> {
  const limit = limitOf(q);
  const cursor = q.get('cursor');
  if (cursor) {
    // An id (bigserial): 18 digits stay inside bigint.
    if (!/^\d{1,18}$/.test(cursor)) throw new HttpError(400, 'INVALID_FIELD', 'bad cursor: pass next_cursor back as it came');
    w.add('id > ?', cursor);
  }
  w.args.push(limit + 1);
  const { rows } = await db.query<{ id: string }>(`SELECT ${columns} FROM ${table} ${w.sql()} ORDER BY id LIMIT $${w.args.length}`, w.args);
  const page = rows.slice(0, limit);
  return { rows: page, next: rows.length > limit ? String(page[page.length - 1]!.id) : null };
}

/**
 * Call history and quality, read-only: GET /api/v1/calls, /api/v1/calls/{id},
 * /api/v1/calls/{id}/participants, /api/v1/quality/metrics; and what was set aside:
 * /api/v1/webhooks/dead (events no receiver accepted within webhook.max_attempts) and
 * /api/v1/dead_letters (writes the database refused). Needs a token with the
 * roomList grant (an admin/dashboard token). Keyset pagination: pass next_cursor back.
 */
export function registerHistory(app: uWS.TemplatedApp, getDb: () => Database | undefined, verifier: TokenVerifier): void {
  const route = (
    path: string,
    handler: (db: Database, q: URLSearchParams, params: string[]) => Promise<unknown>,
    paramCount = 0,
  ): void => {
    app.get(
      path,
      asyncRoute(async ({ query, headers, params }) => {
        try {
          const auth = headers.authorization ?? '';
          let claims;
          try {
            claims = verifier.verify(auth.startsWith('Bearer ') ? auth.slice(7) : undefined);
          } catch (err) {
            if (err instanceof TokenError) throw new HttpError(401, err.code, err.message);
            throw err;
          }
          if (!claims.video?.roomList) throw new HttpError(403, 'PERMISSION_DENIED', 'token lacks roomList');
          const db = getDb();
          if (!db) throw new HttpError(503, 'UNAVAILABLE', 'database not ready');
          return { status: 200, body: await handler(db, new URLSearchParams(query), params) };
        } catch (err) {
          if (err instanceof HttpError) return { status: err.status, body: { code: err.code, message: err.message } };
          return { status: 500, body: { code: 'INTERNAL', message: 'database error' } };
        }
      }, paramCount),
    );
  };

  route('/api/v1/calls', async (db, q) => {
    const limit = limitOf(q);
    const w = new Where().filters(q, { room: 'room_name', status: 'status' }, 'started_at');
    const cursor = q.get('cursor');
    if (cursor) {
      // What next_cursor gave: `<started_at epoch ms>|<call id>`.
      const m = /^(\d{1,15})\|([^\u0000]{1,256})$/.exec(cursor);
      const at = new Date(Number(m?.[1]));
      if (!m || !inRange(at)) throw new HttpError(400, 'INVALID_FIELD', 'bad cursor: pass next_cursor back as it came');
      w.args.push(at, m[2]);
      w.parts.push(`(started_at, id) < ($${w.args.length - 1}, $${w.args.length})`);
    }
    w.args.push(limit + 1);
    const { rows } = await db.query<{ id: string; started_at: Date }>(
      `SELECT * FROM calls ${w.sql()} ORDER BY started_at DESC, id DESC LIMIT $${w.args.length}`,
      w.args,
    );
    const page = rows.slice(0, limit);
    const last = page[page.length - 1];
    return { calls: page, next_cursor: rows.length > limit && last ? `${new Date(last.started_at).getTime()}|${last.id}` : null };
  });

  route(
    '/api/v1/calls/:id',
    async (db, _q, [id]) => {
      const { rows } = await db.query('SELECT * FROM calls WHERE id = $1', [id]);
      if (!rows[0]) throw new HttpError(404, 'NOT_FOUND', `no call ${id}`);
      return rows[0];
    },
    1,
  );

  route(
    '/api/v1/calls/:id/participants',
    async (db, _q, [id]) => {
      const { rows } = await db.query('SELECT * FROM call_participants WHERE call_id = $1 ORDER BY joined_at', [id]);
      return { participants: rows };
    },
    1,
  );

  route(
    '/api/v1/calls/:id/aic',
    async (db, _q, [id]) => {
      const { rows } = await db.query('SELECT * FROM aic_call_summaries WHERE call_id = $1 ORDER BY node_id', [id]);
      return { summaries: rows };
    },
    1,
  );

  route('/api/v1/quality/metrics', async (db, q) => {
    const w = new Where().filters(q, { call: 'call_id', participant: 'participant_id' }, 'recorded_at');
    const { rows, next } = await pageById(db, 'quality_metrics', w, q);
    return { metrics: rows, next_cursor: next };
  });

  route('/api/v1/webhooks/dead', async (db, q) => {
    const w = new Where().filters(q, { room: 'room_name', event: 'event' }, 'dead_at');
    w.parts.push('dead_at IS NOT NULL');
    const columns = 'id, room_name, url, event, body, created_at, attempts, last_error, dead_at';
    const { rows, next } = await pageById(db, 'webhook_outbox', w, q, columns);
    return { webhooks: rows, next_cursor: next };
  });

  route('/api/v1/dead_letters', async (db, q) => {
    const w = new Where().filters(q, { source: 'source', sqlstate: 'sqlstate' }, 'failed_at');
    const { rows, next } = await pageById(db, 'dead_letters', w, q);
    return { dead_letters: rows, next_cursor: next };
  });
}
