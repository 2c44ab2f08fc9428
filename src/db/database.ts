import { mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { PGlite } from '@electric-sql/pglite';
import pg from 'pg';
import type { Logger } from 'pino';

/** The little the rest of the code needs from PostgreSQL, served by pg or by embedded PGlite. */
export interface Database {
  readonly kind: 'postgres' | 'pglite';
  query<T = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<{ rows: T[] }>;
  close(): Promise<void>;
}

class PgDatabase implements Database {
  readonly kind = 'postgres' as const;
  constructor(private readonly pool: pg.Pool) {}
  async query<T>(sql: string, params: unknown[] = []): Promise<{ rows: T[] }> {
    const r = await this.pool.query(sql, params);
    return { rows: r.rows as T[] };
  }
  close(): Promise<void> {
    return this.pool.end();
  }
}

class PgliteDatabase implements Database {
  readonly kind = 'pglite' as const;
  constructor(private readonly db: PGlite) {}
  async query<T>(sql: string, params: unknown[] = []): Promise<{ rows: T[] }> {
    // PGlite's query() takes one statement with parameters; exec() runs a script.
    if (params.length === 0 && sql.includes(';')) {
      await this.db.exec(sql);
      return { rows: [] };
    }
    const r = await this.db.query<T>(sql, params);
    return { rows: r.rows };
  }
  close(): Promise<void> {
    return this.db.close();
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
  return new PgliteDatabase(await PGlite.create(opts.dataDir));
}

const MIGRATIONS = new URL('../../../src/db/migrations/', import.meta.url);

/** Applies src/db/migrations/*.sql in name order, each once (recorded in schema_migrations). */
export async function migrate(db: Database, log: Logger): Promise<string[]> {
  await db.query('CREATE TABLE IF NOT EXISTS schema_migrations (version text PRIMARY KEY, applied_at timestamptz NOT NULL)');
  const done = new Set((await db.query<{ version: string }>('SELECT version FROM schema_migrations')).rows.map((r) => r.version));
  const applied: string[] = [];
  for (const file of readdirSync(MIGRATIONS).filter((f) => f.endsWith('.sql')).sort()) {
    if (done.has(file)) continue;
    await db.query(readFileSync(new URL(file, MIGRATIONS), 'utf8'));
    await db.query('INSERT INTO schema_migrations (version, applied_at) VALUES ($1, now())', [file]);
    applied.push(file);
    log.info({ migration: file, db: db.kind }, 'migration applied');
  }
  return applied;
}
