// SIGTERM with nobody connected: time from the signal to the process's exit (issue 15: "with
// none it should exit at once after flushing"), with the embedded PGlite and with PostgreSQL
// by URL, after a few joins have written rows (so there is something to flush), next to
// SIGKILL of the same server (the floor: the OS tearing the process down) in the same run.
//
//   npm run bench:shutdown -- [--runs 5] [--joins 20] [--idle-ms 1000] [--pg postgres://...]
import { parseArgs } from 'node:util';
import { auraUrl, connect, pct, sleep, startAura, type Server } from './common.js';

const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '5' },
    joins: { type: 'string', default: '20' },
    'idle-ms': { type: 'string', default: '1000' },
    pg: { type: 'string', default: 'postgres://postgres@127.0.0.1:5432/test' },
  },
});
const runs = Number(values.runs);
const joins = Number(values.joins);
const idleMs = Number(values['idle-ms']);

async function joinAndLeave(s: Server): Promise<void> {
  for (let i = 0; i < joins; i++) {
    const { ws } = await connect(auraUrl(s.port, `u${i}`, `room${i % 4}`));
    ws.close();
  }
}

/** ms from the signal to the exit event, and the exit code (null when killed). */
async function timeExit(s: Server, signal: 'SIGTERM' | 'SIGKILL'): Promise<{ ms: number; code: number | null }> {
  const exited = new Promise<number | null>((r) => s.proc.once('exit', (code) => r(code)));
  const t0 = performance.now();
  s.proc.kill(signal);
  const code = await exited;
  return { ms: performance.now() - t0, code };
}

const cases: { name: string; db: Record<string, unknown>; signal: 'SIGTERM' | 'SIGKILL' }[] = [
  { name: 'PGlite, SIGTERM', db: {}, signal: 'SIGTERM' },
  { name: 'PostgreSQL, SIGTERM', db: { url: values.pg }, signal: 'SIGTERM' },
  { name: 'PGlite, SIGKILL (floor)', db: {}, signal: 'SIGKILL' },
];
const results = new Map<string, { ms: number[]; codes: (number | null)[] }>(cases.map((c) => [c.name, { ms: [], codes: [] }]));
// Interleaved, so a change in the machine's load shows in every case alike.
for (let r = 0; r < runs; r++) {
  for (const c of cases) {
    const s = await startAura({ database: c.db });
    await joinAndLeave(s);
    await sleep(idleMs);
    const { ms, code } = await timeExit(s, c.signal);
    results.get(c.name)!.ms.push(ms);
    results.get(c.name)!.codes.push(code);
  }
}

console.log(`\nSIGTERM → exit with nobody connected (${runs} runs each, ${joins} joins then ${idleMs} ms idle before the signal)`);
console.log('| case | p50 ms | range ms | exit codes |');
console.log('|---|---|---|---|');
for (const [name, { ms, codes }] of results) {
  console.log(`| ${name} | ${pct(ms, 50).toFixed(0)} | ${Math.min(...ms).toFixed(0)}–${Math.max(...ms).toFixed(0)} | ${[...new Set(codes)].join(', ')} |`);
}
