import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe } from 'node:test';
import pg from 'pg';
import { pino } from 'pino';
import { migrate, openDatabase, type Database } from '../src/db/database.js';

const quiet = pino({ level: 'silent' });
const ADMIN = 'postgres://postgres@127.0.0.1:5432/postgres';

/**
 * `body` twice: against a fresh embedded PGlite and against a fresh database on the local
 * PostgreSQL (made and dropped here), both migrated. `db()` is the suite's database.
 */
export function onBothDatabases(title: string, body: (db: () => Database) => void): void {
  describe(`${title} (PGlite)`, () => {
    let dir = '';
    let db: Database;
    before(async () => {
      dir = mkdtempSync(join(tmpdir(), 'auralink-db-'));
      db = await openDatabase({ url: '', dataDir: join(dir, 'pglite') }, quiet);
      await migrate(db, quiet);
    });
    after(async () => {
      await db.close();
      rmSync(dir, { recursive: true, force: true });
    });
    body(() => db);
  });
  describe(`${title} (PostgreSQL)`, () => {
    const name = `auralink_t_${process.pid}_${Date.now()}_${Math.floor(Math.random() * 1e6)}`;
    let db: Database;
    const admin = async (sql: string): Promise<void> => {
      const c = new pg.Client({ connectionString: ADMIN });
      await c.connect();
      try {
        await c.query(sql);
      } finally {
        await c.end();
      }
    };
    before(async () => {
      await admin(`CREATE DATABASE ${name}`);
      db = await openDatabase({ url: `postgres://postgres@127.0.0.1:5432/${name}`, dataDir: '' }, quiet);
      await migrate(db, quiet);
    });
    after(async () => {
      await db.close();
      await admin(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    });
    body(() => db);
  });
}
