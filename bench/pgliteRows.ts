// What a join's rows cost PGlite, written as the write-behind queue writes them today (one
// statement per row, up to 500 per transaction) against one multi-row statement per table and
// batch (unnest over arrays), and the write-behind's own many-row statement (db/rowInsert.ts:
// unnest WITH ORDINALITY, ordered): CPU per row, PGlite in this thread (process.cpuUsage).
// Usage: node dist/bench/pgliteRows.js [--rows 2000] [--batch 500] [--runs 3]
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { PGlite } from '@electric-sql/pglite';
import { PARTICIPANT_ROW } from '../src/db/callRecorder.js';

const { values: args } = parseArgs({
  options: { rows: { type: 'string', default: '2000' }, batch: { type: 'string', default: '500' }, runs: { type: 'string', default: '3' } },
});
const ROWS = Number(args.rows);
const BATCH = Number(args.batch);
const INSERT = `INSERT INTO call_participants (id, call_id, identity, name, joined_at) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (id) DO NOTHING`;
const INSERT_MANY = `INSERT INTO call_participants (id, call_id, identity, name, joined_at)
  SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::timestamptz[]) ON CONFLICT (id) DO NOTHING`;

// The write-behind's own statement for these rows (callRecorder).
const ROW_INSERT = PARTICIPANT_ROW;
type Mode = 'per-row' | 'unnest' | 'rowInsert';

const cpuMs = (): number => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};

async function run(mode: Mode, seq: number): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), 'pglite-rows-'));
  const db = await PGlite.create(dir);
  try {
    await db.exec(readFileSync(new URL('../../src/db/migrations/001_init.sql', import.meta.url), 'utf8'));
    await db.query(`INSERT INTO calls (id, room_name, started_at) SELECT 'RM_' || g, 'room' || g, now() FROM generate_series(0, 99) g`);
    // PGlite's WASM heap grows on its first rows (bench/signal idle): warm it before timing.
    await db.query(`INSERT INTO call_participants (id, call_id, identity, joined_at) SELECT 'W_' || g, 'RM_' || (g % 100), 'w' || g, now() FROM generate_series(0, 1999) g`);
    const rows = Array.from({ length: ROWS }, (_, i) => [`PA_${seq}_${i}`, `RM_${i % 100}`, `j${i}`, '', new Date()] as const);
    const c0 = cpuMs();
    for (let i = 0; i < ROWS; i += BATCH) {
      const batch = rows.slice(i, i + BATCH);
      await db.transaction(async (tx) => {
        if (mode === 'per-row') for (const r of batch) await tx.query(INSERT, [...r]);
        else if (mode === 'rowInsert') await tx.query(ROW_INSERT.manySql, ROW_INSERT.columnsOf(batch));
        else await tx.query(INSERT_MANY, [batch.map((r) => r[0]), batch.map((r) => r[1]), batch.map((r) => r[2]), batch.map((r) => r[3]), batch.map((r) => r[4])]);
      });
    }
    const spent = cpuMs() - c0;
    const n = (await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM call_participants WHERE id LIKE 'PA_%'`)).rows[0]!.n;
    if (n !== ROWS) throw new Error(`${mode}: ${n} rows written, ${ROWS} expected`);
    return (spent / ROWS) * 1000;
  } finally {
    await db.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

const res: Record<Mode, number[]> = { 'per-row': [], unnest: [], rowInsert: [] };
for (let r = 0; r < Number(args.runs); r++) for (const mode of Object.keys(res) as Mode[]) res[mode].push(await run(mode, r));
const range = (xs: number[]): string => `${Math.min(...xs).toFixed(0)}–${Math.max(...xs).toFixed(0)}`;
console.log(`PGlite, ${ROWS} call_participants rows in transactions of ${BATCH}, ${args.runs} runs, CPU µs per row:`);
console.log(`  one statement per row (the write-behind before batching): ${range(res['per-row'])}`);
console.log(`  one unnest() statement per batch:                         ${range(res.unnest)}`);
console.log(`  the write-behind's RowInsert.manySql (WITH ORDINALITY):   ${range(res.rowInsert)}`);
