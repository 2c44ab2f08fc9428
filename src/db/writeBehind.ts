import { Counter, Gauge, type Registry } from 'prom-client';
import type { Logger } from 'pino';
import { storableJson, storableString } from '../util/text.js';
import type { Database } from './database.js';
import type { RowInsert } from './rowInsert.js';
import { isRowLevel, sqlState } from './sqlErrors.js';

interface Op {
  sql: string;
  params: unknown[];
  /** Set when the statement is a RowInsert's one row: adjacent ones are written as one. */
  rows?: RowInsert | undefined;
  /** performance.now() when queued. */
  at: number;
}

/** Statements written per transaction. */
const BATCH = 500;
// Writes queued within this window share one transaction (a join storm: one commit per ~10
// joins instead of one per join). Nothing waits on them: this only trades commit count for delay.
// Each batch waits for it, not only the first: the few rows queued while a batch was being
// written would otherwise be a transaction of their own (PGlite: ~1.4 ms per transaction).
const COALESCE_MS = 20;

/**
 * Database writes off the signalling hot path: enqueue() returns at once; a loop writes the
 * queue in order, up to BATCH statements per transaction (one commit per batch: per-statement
 * commits cost ~300x in join latency with PGlite, ~10x with PostgreSQL, bench/signal).
 * Within a transaction, each run of adjacent rows of the same RowInsert is one statement
 * (rowInsert.ts); only neighbours merge, so the order is the queue's.
 *
 * A batch refused for a row-level reason (sqlErrors.ts: a NUL in a name, a constraint) is
 * split in halves until the one refused statement is found; it goes to `dead_letters` with
 * its error and escaped values, and everything else is written, in order: no single bad row
 * stops the queue. Only when the database itself is away do writes wait (bounded by
 * `maxBuffered`, then the newest are dropped and counted) and the batch is retried whole with
 * backoff, so within the bound no row is lost or written twice.
 */
export class WriteBehind {
  private readonly queue: Op[] = [];
  private running = false;
  private closed = false;
  private backoffMs = 100;
  private timer: NodeJS.Timeout | undefined;
  private readonly buffered: Gauge;
  private readonly written: Counter;
  private readonly dropped: Counter;
  private readonly failures: Counter;
  private readonly deadLetters: Counter;

  constructor(
    // Only what it uses: a test or bench can stand in for the database with these two.
    private readonly db: Pick<Database, 'query' | 'batch'>,
    private readonly opts: { maxBuffered: number; coalesceMs?: number },
    registry: Registry,
    private readonly log: Logger,
  ) {
    const q = this.queue;
    this.buffered = new Gauge({ name: 'auralink_db_write_queue', help: 'Database writes waiting', registers: [registry], collect() { this.set(q.length); } });
    this.written = new Counter({ name: 'auralink_db_writes_total', help: 'Database writes done', registers: [registry] });
    this.dropped = new Counter({ name: 'auralink_db_writes_dropped_total', help: 'Database writes dropped: the queue was full', registers: [registry] });
    this.failures = new Counter({ name: 'auralink_db_write_failures_total', help: 'Failed database write attempts (retried)', registers: [registry] });
    this.deadLetters = new Counter({
      name: 'auralink_db_dead_letters_total',
      help: 'Statements the database refused for a row-level reason, set aside in dead_letters',
      registers: [registry],
    });
  }

  /** Queues a statement, or one row of a RowInsert (its values in column order). */
  enqueue(statement: string | RowInsert, params: unknown[] = []): boolean {
    if (this.closed) return false;
    if (this.queue.length >= this.opts.maxBuffered) {
      this.dropped.inc();
      return false;
    }
    const at = performance.now();
    if (typeof statement === 'string') this.queue.push({ sql: statement, params, at });
    else {
      // A programming error (a recorder's row of the wrong width), never client input.
      if (params.length !== statement.width) throw new Error(`row of ${params.length} values for a ${statement.width}-column insert: ${statement.sql}`);
      this.queue.push({ sql: statement.sql, params, rows: statement, at });
    }
    if (!this.running && !this.timer) this.timer = setTimeout(() => void this.drain(), this.coalesceMs);
    return true;
  }

  private get coalesceMs(): number {
    return this.opts.coalesceMs ?? COALESCE_MS;
  }

  get size(): number {
    return this.queue.length;
  }

  private async drain(): Promise<void> {
    this.timer = undefined;
    if (this.running) return;
    this.running = true;
    try {
      while (this.queue.length > 0) {
        // A full batch goes at once; otherwise it waits until its oldest write is the window old.
        const wait = this.queue.length < BATCH ? this.queue[0]!.at + this.coalesceMs - performance.now() : 0;
        if (wait > 1) {
          this.timer = setTimeout(() => void this.drain(), wait);
          return;
        }
        try {
          await this.writeHead(Math.min(BATCH, this.queue.length));
        } catch (err) {
          this.failures.inc();
          this.log.warn({ err: (err as Error).message, queued: this.queue.length, retryMs: this.backoffMs }, 'database write failed; will retry');
          if (this.closed) return;
          this.timer = setTimeout(() => void this.drain(), this.backoffMs);
          this.backoffMs = Math.min(this.backoffMs * 2, 5000);
          return;
        }
        this.backoffMs = 100;
      }
    } finally {
      this.running = false;
    }
  }

  /**
   * Writes the first `n` queued statements in order, taking each off the queue once it is
   * committed (or dead-lettered). Throws, leaving the rest queued, on a connection-level
   * failure. One bad statement among 500 costs ~2·log2(500) = 18 extra transactions.
   */
  private async writeHead(n: number): Promise<void> {
    const ops = this.queue.slice(0, n);
    try {
      await this.db.batch(statements(ops));
    } catch (err) {
      if (!isRowLevel(err)) throw err;
      if (n === 1) return this.deadLetter(ops[0]!, err);
      const half = Math.ceil(n / 2);
      await this.writeHead(half);
      await this.writeHead(n - half);
      return;
    }
    this.queue.splice(0, n);
    this.written.inc(n);
  }

  /** The head statement, refused on its own merits: into dead_letters, off the queue. */
  private async deadLetter(op: Op, err: unknown): Promise<void> {
    const error = storableString((err as Error).message ?? String(err));
    const state = sqlState(err) ?? null;
    const params = storableJson(op.params);
    try {
      await this.db.query('INSERT INTO dead_letters (source, sql, params, error, sqlstate, failed_at) VALUES ($1, $2, $3, $4, $5, now())', [
        'write_behind',
        storableString(op.sql),
        params,
        error,
        state,
      ]);
    } catch (dlErr) {
      if (!isRowLevel(dlErr)) throw dlErr; // the database went away: retry this statement later
      // Cannot happen with escaped values; never let it stop the queue. The log keeps it.
      this.log.error({ err: (dlErr as Error).message, sql: op.sql, params }, 'dead letter not stored');
    }
    this.queue.shift();
    this.deadLetters.inc();
    this.log.warn({ err: error, sqlstate: state, sql: op.sql }, 'database refused a statement: dead-lettered, queue continues');
  }

  /** Resolves once everything queued is written (or `timeoutMs` passes). */
  async flush(timeoutMs = 5000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.queue.length > 0 && Date.now() < deadline) {
      if (!this.running && !this.timer) void this.drain();
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  async close(timeoutMs = 5000): Promise<void> {
    await this.flush(timeoutMs);
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    if (this.queue.length) this.log.warn({ lost: this.queue.length }, 'closing with database writes still queued');
  }
}

/**
 * The statements that write `ops`, in order: each run of two or more adjacent rows of one
 * RowInsert becomes its many-row statement. A refused run is bisected like any batch (down to
 * the one row, written alone in its one-row form), so a bad row is still dead-lettered alone.
 */
function statements(ops: readonly Op[]): { sql: string; params: unknown[] }[] {
  const out: { sql: string; params: unknown[] }[] = [];
  for (let i = 0; i < ops.length; ) {
    const rows = ops[i]!.rows;
    let j = i + 1;
    if (rows) while (j < ops.length && ops[j]!.rows === rows) j++;
    if (j - i === 1) out.push({ sql: ops[i]!.sql, params: ops[i]!.params });
    else out.push({ sql: rows!.manySql, params: rows!.columnsOf(ops.slice(i, j).map((o) => o.params)) });
    i = j;
  }
  return out;
}
