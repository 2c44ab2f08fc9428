/**
 * Which database failures are the statement's fault and which the connection's. Both drivers
 * give PostgreSQL's SQLSTATE as `err.code` (pg directly; PGlite across its worker thread via
 * database.ts), so one rule serves both.
 *
 * Row-level (retrying the same statement can never succeed: write the rest, dead-letter it):
 *   21 cardinality violation, 22 data exception (22021 NUL / bad encoding, 22P02 bad input,
 *   22001 too long, 22P05 unsupported escape in jsonb ...), 23 integrity constraint (unique,
 *   foreign key, not null, check), 42 syntax error or access rule (undefined column/table:
 *   a statement the schema will not take), 44 WITH CHECK OPTION, 2F/P0 raised by SQL/PLpgSQL
 *   code; and a value the driver could not even encode (TypeError/RangeError, no SQLSTATE).
 * Everything else waits and is retried whole: 08 connection, 40 serialization/deadlock,
 * 53 insufficient resources (disk full), 57 operator intervention (shutdown, cancel),
 * 58 system/IO, 55 lock not available, XX internal, and any error without a SQLSTATE
 * (socket closed, timeout, the PGlite worker gone): the database is away, not the row bad.
 */
const ROW_LEVEL_CLASSES = new Set(['21', '22', '23', '42', '44', '2F', 'P0']);

const SQLSTATE = /^[0-9A-Z]{5}$/;

export function sqlState(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && SQLSTATE.test(code) ? code : undefined;
}

export function isRowLevel(err: unknown): boolean {
  const state = sqlState(err);
  if (state) return ROW_LEVEL_CLASSES.has(state.slice(0, 2));
  // Values the driver could not encode, or structured-clone could not pass to PGlite's worker.
  return err instanceof TypeError || err instanceof RangeError || (err as Error | null)?.name === 'DataCloneError';
}

/** An error that crossed the PGlite worker boundary, its SQLSTATE kept. */
export class DatabaseError extends Error {
  override name = 'DatabaseError';
  constructor(message: string, readonly code?: string) {
    super(message);
  }
}
