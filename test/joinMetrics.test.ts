import assert from 'node:assert/strict';
import { test } from 'node:test';
import WebSocket from 'ws';
import { startServer } from './helpers.js';

const BURST = 100;
const JOIN = 'auralink_signal_join_seconds';
const HANDLER = 'auralink_signal_join_handler_seconds';

test('auralink_signal_join_seconds includes the wait behind the other joins of the same event-loop turn; _handler_seconds is each join alone', async () => {
  const t = await startServer({ signal: { ip_connect_limit: { per_s: 1e6, burst: 1e6 } } });
  const sockets: WebSocket[] = [];
  try {
    const before = { join: await t.metric(`${JOIN}_sum`), handler: await t.metric(`${HANDLER}_sum`) };
    // With the server stopped, a burst of upgrade requests waits in the kernel; continued,
    // the server reads them all in one loop turn and joins them one after another.
    t.proc.kill('SIGSTOP');
    let joined: Promise<unknown>[];
    try {
      joined = Array.from({ length: BURST }, (_, i) => {
        const ws = new WebSocket(`${t.url}/rtc?access_token=${t.token(`burst-${i}`, `burst-${i % 5}`)}`);
        sockets.push(ws);
        return new Promise((resolve, reject) => {
          ws.once('message', resolve);
          ws.once('error', reject);
        });
      });
      await new Promise((r) => setTimeout(r, 500)); // every request written while it is stopped
    } finally {
      t.proc.kill('SIGCONT');
    }
    await Promise.all(joined);
    assert.equal(await t.metric(`${JOIN}_count`), BURST);
    assert.equal(await t.metric(`${HANDLER}_count`), BURST);
    const join = (await t.metric(`${JOIN}_sum`)) - before.join;
    const handler = (await t.metric(`${HANDLER}_sum`)) - before.handler;
    // Each join's time contains its own handler: never less, bucket by bucket.
    for (const le of ['0.0005', '0.001', '0.005', '0.01', '0.05', '0.1']) {
      assert.ok((await t.metric(`${JOIN}_bucket`, { le })) <= (await t.metric(`${HANDLER}_bucket`, { le })), `le ${le}`);
    }
    // Read in one turn, the k-th join also waited for the k-1 before it: the burst's summed
    // join time is ~BURST/2 times its summed handler time (a definition, not a speed).
    console.log(`burst: join sum ${join.toFixed(4)} s, handler sum ${handler.toFixed(4)} s`);
    assert.ok(join >= 2 * handler, `join ${join.toFixed(4)} s vs handler ${handler.toFixed(4)} s`);
  } finally {
    for (const ws of sockets) ws.terminate();
    await t.close();
  }
});
