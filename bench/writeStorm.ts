// A join storm's rows through the real write-behind queue and database driver (PGlite in its
// worker thread, or PostgreSQL by URL), no signalling: CPU per join of each thread of this
// process (/proc/self/task), the rows enqueued as callRecorder does (RowInsert: one statement
// per run of rows) against the same rows as plain statements (one statement per row, what
// the queue wrote before RowInsert), alternated in one run.
// Usage: node dist/bench/writeStorm.js [--db pglite|pg] [--joins 2000] [--rate 500] [--rooms 100] [--runs 3]
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { migrate, openDatabase, type Database } from '../src/db/database.js';
import { RowInsert } from '../src/db/rowInsert.js';
import { WriteBehind } from '../src/db/writeBehind.js';

const { values: args } = parseArgs({
  options: {
    db: { type: 'string', default: 'pglite' },
    pg: { type: 'string', default: 'postgres://postgres@127.0.0.1:5432/test' },
    joins: { type: 'string', default: '2000' },
    rate: { type: 'string', default: '500' },
    rooms: { type: 'string', default: '100' },
    runs: { type: 'string', default: '3' },
  },
});
const N = Number(args.joins);
const RATE = Number(args.rate);
const ROOMS = Number(args.rooms);
const quiet = pino({ level: 'silent' });
// The same statements as db/callRecorder.ts.
const CALL = new RowInsert('calls', [['id', 'text'], ['room_name', 'text'], ['node_id', 'text'], ['started_at', 'timestamptz']], {
  fixed: [['status', "'active'"]],
  tail: 'ON CONFLICT (id) DO NOTHING',
});
const PART = new RowInsert('call_participants', [['id', 'text'], ['call_id', 'text'], ['identity', 'text'], ['name', 'text'], ['joined_at', 'timestamptz']], {
  tail: 'ON CONFLICT (id) DO NOTHING',
});

/** CPU ms of each thread of this process. */
function threads(): Map<string, number> {
  const out = new Map<string, number>();
  for (const tid of readdirSync('/proc/self/task')) {
    try {
      const f = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8').split(') ')[1]!.split(' ');
      out.set(tid, (Number(f[11]) + Number(f[12])) * 10);
    } catch {
      /* the thread ended */
    }
  }
  return out;
}

async function run(db: Database, mode: 'per-row' | 'RowInsert', seq: number): Promise<{ main: number; worker: number; other: number; statements: number }> {
  let statements = 0;
  const counted: Pick<Database, 'query' | 'batch'> = { query: (s, p) => db.query(s, p), batch: (ops) => ((statements += ops.length), db.batch(ops)) };
  const wb = new WriteBehind(counted, { maxBuffered: 1e6 }, new Registry(), quiet);
  const put = (ins: RowInsert, row: unknown[]): boolean => (mode === 'RowInsert' ? wb.enqueue(ins, row) : wb.enqueue(ins.sql, row));
  const tag = `${process.pid}_${seq}_${mode === 'RowInsert' ? 'r' : 'p'}`;
  const t0 = threads();
  const start = performance.now();
  for (let i = 0; i < N; i++) {
    const due = start + (i * 1000) / RATE;
    while (performance.now() < due) await new Promise((r) => setTimeout(r, 1));
    const room = `RM_${tag}_${i % ROOMS}`;
    if (i < ROOMS) put(CALL, [room, `room${i}`, 'bench', new Date()]);
    put(PART, [`PA_${tag}_${i}`, room, `j${i}`, '', new Date()]);
  }
  await wb.flush(120_000);
  const t1 = threads();
  await wb.close();
  const per = (ms: number): number => (ms / N) * 1000;
  const others = [...t1].filter(([tid]) => tid !== String(process.pid)).map(([tid, ms]) => ms - (t0.get(tid) ?? 0)).sort((a, b) => b - a);
  const main = (t1.get(String(process.pid)) ?? 0) - (t0.get(String(process.pid)) ?? 0);
  return { main: per(main), worker: per(others[0] ?? 0), other: per(others.slice(1).reduce((s, x) => s + x, 0)), statements };
}

const dir = mkdtempSync(join(tmpdir(), 'auralink-wstorm-'));
const db = await openDatabase({ url: args.db === 'pg' ? args.pg : '', dataDir: join(dir, 'pglite') }, quiet);
await migrate(db, quiet);
const res: Record<string, { main: number[]; worker: number[]; other: number[]; statements: number }> = {};
for (let r = 0; r < Number(args.runs); r++) {
  for (const mode of ['per-row', 'RowInsert'] as const) {
    const x = await run(db, mode, r);
    const e = (res[mode] ??= { main: [], worker: [], other: [], statements: x.statements });
    e.main.push(x.main);
    e.worker.push(x.worker);
    e.other.push(x.other);
  }
}
await db.query(`DELETE FROM calls WHERE node_id = 'bench'`);
await db.close();
rmSync(dir, { recursive: true, force: true });
const range = (xs: number[]): string => `${Math.min(...xs).toFixed(0)}–${Math.max(...xs).toFixed(0)}`;
const dbName = args.db === 'pg' ? 'PostgreSQL by URL (its own CPU not counted)' : 'PGlite (worker thread)';
console.log(`write-behind, ${N} joins over ${ROOMS} rooms at ${RATE}/s, ${dbName}, ${args.runs} runs alternated, CPU µs per join:`);
console.log('| rows enqueued as | statements | main thread | busiest other thread (PGlite) | other threads |');
console.log('|---|---|---|---|---|');
for (const [mode, e] of Object.entries(res)) console.log(`| ${mode} | ${e.statements} | ${range(e.main)} | ${range(e.worker)} | ${range(e.other)} |`);
process.exit(0);
