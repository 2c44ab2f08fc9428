import { mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import pg from 'pg';
import type { Logger } from 'pino';
import { DatabaseError } from './sqlErrors.js';

/** The little the rest of the code needs from PostgreSQL, served by pg or by embedded PGlite. */
export interface Database {
  readonly kind: 'postgres' | 'pglite';
  query<T = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<{ rows: T[] }>;
  /**
   * Runs the statements in one transaction: all or none. Rejects with the failing
   * statement's error, its SQLSTATE as `code` for both drivers (sqlErrors.ts classifies it).
   */
  batch(ops: readonly { sql: string; params: unknown[] }[]): Promise<void>;
  /**
   * Runs `fn` while holding the database-wide lock `key` (nodes sharing one PostgreSQL that
   * start together must not both apply a migration). Embedded PGlite has one user: no lock.
   */
  exclusive<T>(key: number, fn: (db: Pick<Database, 'query'>) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

class PgDatabase implements Database {
  readonly kind = 'postgres' as const;
  constructor(private readonly pool: pg.Pool) {}
  async query<T>(sql: string, params: unknown[] = []): Promise<{ rows: T[] }> {
    const r = await this.pool.query(sql, params);
    return { rows: r.rows as T[] };
  }
  async batch(ops: readonly { sql: string; params: unknown[] }[]): Promise<void> {
    // One statement is atomic by itself: no BEGIN/COMMIT round trips.
    if (ops.length === 1) {
      await this.pool.query(ops[0]!.sql, ops[0]!.params);
      return;
    }
    const client = await this.pool.connect();
    let broken = false;
    try {
      await client.query('BEGIN');
      for (const op of ops) await client.query(op.sql, op.params);
      await client.query('COMMIT');
    } catch (err) {
      await client.query('ROLLBACK').catch(() => {
        broken = true; // the connection itself is gone: do not return it to the pool
      });
      throw err;
    } finally {
      client.release(broken);
    }
  }
  async exclusive<T>(key: number, fn: (db: Pick<Database, 'query'>) => Promise<T>): Promise<T> {
    const client = await this.pool.connect();
    let broken = false;
    try {
      await client.query('SELECT pg_advisory_lock($1)', [key]);
      try {
        return await fn({ query: async <R>(sql: string, params: unknown[] = []) => ({ rows: (await client.query(sql, params)).rows as R[] }) });
      } finally {
        await client.query('SELECT pg_advisory_unlock($1)', [key]).catch(() => {
          broken = true; // a session-level lock dies with its connection: drop it
        });
      }
    } finally {
      client.release(broken);
    }
  }
  close(): Promise<void> {
    return this.pool.end();
  }
}

/** PGlite in a worker thread (pgliteWorker.ts), so the database never blocks the event loop. */
class PgliteDatabase implements Database {
  readonly kind = 'pglite' as const;
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();

  private constructor(private readonly worker: Worker) {
    worker.on('message', (m: { id: number; result?: unknown; error?: string; code?: unknown; encode?: boolean }) => {
      const p = this.pending.get(m.id);
      if (!p) return;
      this.pending.delete(m.id);
      if (m.error !== undefined) p.reject(m.encode ? new TypeError(m.error) : new DatabaseError(m.error, typeof m.code === 'string' ? m.code : undefined));
      else p.resolve(m.result);
    });
    const failAll = (err: Error): void => {
      for (const p of this.pending.values()) p.reject(err);
      this.pending.clear();
    };
    worker.on('error', failAll);
    worker.on('exit', (code) => failAll(new Error(`PGlite worker exited (${code})`)));
  }

  static async open(dataDir: string): Promise<PgliteDatabase> {
    const worker = new Worker(new URL('./pgliteWorker.js', import.meta.url), { workerData: { dataDir } });
    await new Promise<void>((resolve, reject) => {
      worker.once('message', () => resolve());
      worker.once('error', reject);
    });
    return new PgliteDatabase(worker);
  }

  private call<T>(req: Record<string, unknown>): Promise<T> {
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.worker.postMessage({ id, ...req });
    });
  }

  query<T>(sql: string, params: unknown[] = []): Promise<{ rows: T[] }> {
    return this.call({ op: 'query', sql, params });
  }

  async batch(ops: readonly { sql: string; params: unknown[] }[]): Promise<void> {
    await this.call({ op: 'batch', ops });
  }

  exclusive<T>(_key: number, fn: (db: Pick<Database, 'query'>) => Promise<T>): Promise<T> {
    return fn(this);
  }

  async close(): Promise<void> {
    await this.call({ op: 'close' }).catch(() => undefined);
    await this.worker.terminate();
  }
}

export interface DatabaseOptions {
  url: string;
  dataDir: string;
}

/** PostgreSQL when a URL is given; otherwise embedded PGlite, kept in `dataDir` across restarts. */
export async function openDatabase(opts: DatabaseOptions, log: Logger): Promise<Database> {
  if (opts.url) {
    const pool = new pg.Pool({ connectionString: opts.url, max: 4, connectionTimeoutMillis: 3000 });
    // An idle client losing its server emits here; unhandled it would end the process.
    pool.on('error', (err) => log.warn({ err }, 'postgres connection lost'));
    return new PgDatabase(pool);
  }
  mkdirSync(opts.dataDir, { recursive: true });
  return PgliteDatabase.open(opts.dataDir);
}

const MIGRATIONS = new URL('../../../src/db/migrations/', import.meta.url);

/** Applies src/db/migrations/*.sql in name order, each once (recorded in schema_migrations). */
/** pg_advisory_lock key of the migrations (any fixed number; "AURA" in ASCII). */
const MIGRATION_LOCK = 0x41555241;

export function migrate(db: Database, log: Logger): Promise<string[]> {
  return db.exclusive(MIGRATION_LOCK, (q) => applyMigrations(q, db.kind, log));
}

async function applyMigrations(db: Pick<Database, 'query'>, kind: Database['kind'], log: Logger): Promise<string[]> {
  await db.query('CREATE TABLE IF NOT EXISTS schema_migrations (version text PRIMARY KEY, applied_at timestamptz NOT NULL)');
  const done = new Set((await db.query<{ version: string }>('SELECT version FROM schema_migrations')).rows.map((r) => r.version));
  const applied: string[] = [];
  for (const file of readdirSync(MIGRATIONS).filter((f) => f.endsWith('.sql')).sort()) {
    if (done.has(file)) continue;
    await db.query(readFileSync(new URL(file, MIGRATIONS), 'utf8'));
    await db.query('INSERT INTO schema_migrations (version, applied_at) VALUES ($1, now())', [file]);
    applied.push(file);
    log.info({ migration: file, db: kind }, 'migration applied');
  }
  return applied;
}
