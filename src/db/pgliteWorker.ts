// PGlite (Postgres compiled to WASM) runs here, in its own thread: on the main thread every
// statement would block signalling (join p50 went from ~1 ms to ~300 ms under a join storm).
import { parentPort, workerData } from 'node:worker_threads';
import { PGlite } from '@electric-sql/pglite';

type Request =
  | { id: number; op: 'query'; sql: string; params: unknown[] }
  | { id: number; op: 'batch'; ops: { sql: string; params: unknown[] }[] }
  | { id: number; op: 'close' };

const port = parentPort!;
const db = await PGlite.create((workerData as { dataDir: string }).dataDir);

port.on('message', (req: Request) => {
  (async () => {
    switch (req.op) {
      case 'query':
        // query() takes one statement with parameters; exec() runs a script (migrations).
        if (req.params.length === 0 && req.sql.includes(';')) {
          await db.exec(req.sql);
          return { rows: [] };
        }
        return { rows: (await db.query(req.sql, req.params)).rows };
      case 'batch':
        // One statement is atomic by itself: BEGIN and COMMIT would be two more round trips
        // through PGlite (~0.4 ms of this thread per batch).
        if (req.ops.length === 1) {
          await db.query(req.ops[0]!.sql, req.ops[0]!.params);
          return {};
        }
        await db.transaction(async (tx) => {
          for (const o of req.ops) await tx.query(o.sql, o.params);
        });
        return {};
      case 'close':
        await db.close();
        return {};
    }
  })().then(
    (result) => port.postMessage({ id: req.id, result }),
    // An Error loses its own properties in postMessage: pass the SQLSTATE (and whether the
    // driver could not encode a value) explicitly, so the caller can classify the failure.
    (err: unknown) =>
      port.postMessage({
        id: req.id,
        error: err instanceof Error ? err.message : String(err),
        code: (err as { code?: unknown } | null)?.code,
        encode: err instanceof TypeError || err instanceof RangeError,
      }),
  );
});
port.postMessage({ ready: true });
