/** A column's PostgreSQL type, as written in the array cast of the many-row form. */
export type ColumnType = 'text' | 'timestamptz' | 'double precision' | 'real' | 'integer' | 'bigint' | 'boolean';

const IDENT = /^[a-z_][a-z0-9_]*$/;
/** The ordinality column of the many-row form (rows keep queue order, bigserial ids too). */
const ORD = 'wb_ord';

export interface RowInsertOptions {
  /** Columns set by an SQL expression, the same for every row (`'active'`, `now()`). */
  fixed?: readonly (readonly [name: string, sql: string])[];
  /** Appended to both forms, e.g. `ON CONFLICT (id) DO NOTHING`. */
  tail?: string;
}

/**
 * An INSERT of one row whose values are parameters, which the write-behind queue can write
 * for a run of rows as one statement: `INSERT … SELECT … FROM unnest($1::text[], …)`, one
 * array per column. PGlite spends ~1.1–1.8 ms of its thread per statement around the row
 * (bench/pgliteRows.ts) and pg builds and sends a Query per statement, so a storm's rows
 * cost ~20× less written this way. The one-row form (`sql`) is what a lone row runs as and
 * what a dead letter records, so a refused row is recorded as the statement it was.
 */
export class RowInsert {
  /** One row: `INSERT INTO t (a, b) VALUES ($1, $2)`. */
  readonly sql: string;
  /** Any number of rows: the parameters are one array per column (`columnsOf`). */
  readonly manySql: string;
  readonly width: number;

  constructor(table: string, columns: readonly (readonly [name: string, type: ColumnType])[], opts: RowInsertOptions = {}) {
    const fixed = opts.fixed ?? [];
    for (const name of [table, ...columns.map((c) => c[0]), ...fixed.map((f) => f[0])]) {
      if (!IDENT.test(name) || name === ORD) throw new Error(`RowInsert: ${JSON.stringify(name)} is not a plain identifier`);
    }
    if (columns.length === 0) throw new Error('RowInsert: no parameter columns');
    const names = [...columns.map((c) => c[0]), ...fixed.map((f) => f[0])].join(', ');
    const tail = opts.tail ? ` ${opts.tail}` : '';
    const values = [...columns.map((_, i) => `$${i + 1}`), ...fixed.map((f) => f[1])].join(', ');
    this.sql = `INSERT INTO ${table} (${names}) VALUES (${values})${tail}`;
    const arrays = columns.map(([, type], i) => `$${i + 1}::${type}[]`).join(', ');
    const alias = [...columns.map((c) => c[0]), ORD].join(', ');
    const select = [...columns.map((c) => c[0]), ...fixed.map((f) => f[1])].join(', ');
    this.manySql = `INSERT INTO ${table} (${names}) SELECT ${select} FROM unnest(${arrays}) WITH ORDINALITY AS u(${alias}) ORDER BY ${ORD}${tail}`;
    this.width = columns.length;
  }

  /** The many-row form's parameters: rows (each in column order) turned into column arrays. */
  columnsOf(rows: readonly (readonly unknown[])[]): unknown[][] {
    const cols: unknown[][] = Array.from({ length: this.width }, () => new Array<unknown>(rows.length));
    for (let r = 0; r < rows.length; r++) {
      const row = rows[r]!;
      for (let c = 0; c < this.width; c++) cols[c]![r] = row[c] ?? null;
    }
    return cols;
  }
}
