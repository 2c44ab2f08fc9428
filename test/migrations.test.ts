import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { describe, test } from 'node:test';
import pg from 'pg';
import { migrate, openDatabase } from '../src/db/database.js';
import { createLogger } from '../src/obs/logger.js';

// Nodes sharing one PostgreSQL start together (a cluster rollout, CI): on a fresh database
// each applies the migrations or finds them applied; none fails to start.

const ADMIN = 'postgres://postgres@127.0.0.1:5432/postgres';

describe('migrations on a shared fresh PostgreSQL', () => {
  test('four nodes migrating at the same instant all start, and each migration is applied once', async () => {
    const name = `migrace_${randomUUID().slice(0, 8)}`;
    const admin = new pg.Client({ connectionString: ADMIN });
    await admin.connect();
    await admin.query(`CREATE DATABASE ${name}`);
    const log = createLogger('silent', 'test');
    const url = `postgres://postgres@127.0.0.1:5432/${name}`;
    const dbs = await Promise.all([1, 2, 3, 4].map(() => openDatabase({ url, dataDir: '' }, log)));
    try {
      const results = await Promise.allSettled(dbs.map((d) => migrate(d, log)));
      assert.deepEqual(results.map((r) => (r.status === 'rejected' ? String(r.reason) : 'ok')), ['ok', 'ok', 'ok', 'ok']);
      const applied = results.map((r) => (r as PromiseFulfilledResult<string[]>).value);
      const all = applied.flat().sort();
      const versions = (await dbs[0]!.query<{ version: string }>('SELECT version FROM schema_migrations ORDER BY version')).rows.map((r) => r.version);
      assert.ok(versions.length > 0);
      assert.deepEqual(all, versions, 'every migration applied by exactly one node');
    } finally {
      await Promise.all(dbs.map((d) => d.close()));
      await admin.query(`DROP DATABASE ${name}`);
      await admin.end();
    }
  });
});
