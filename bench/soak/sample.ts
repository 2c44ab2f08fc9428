// What the soak reads from the server under test every sample: memory after a full GC
// (inspector), the process' active resources by type (timers, sockets, ...: Node's
// getActiveResourcesInfo, read through the inspector), mediasoup objects (totals from the room
// routers, and each worker's own count from its dump), rooms and participants, and the
// database write-behind's counters.
import { metricSum, metricsText, rssBytes, type Server } from '../common.js';

export interface Sample {
  /** Seconds since the soak started. */
  t: number;
  rssMB: number;
  heapUsedMB: number;
  externalMB: number;
  /** Active resources by type (Timeout, TCPWrap, UDPWrap, MessagePort, ...). */
  resources: Record<string, number>;
  sfu: { router: number; transport: number; producer: number; consumer: number };
  /** Objects each worker holds (routers, transports, producers, consumers, observers), by worker index. */
  workerObjects: number[];
  workerRssMB: number[];
  workers: number;
  rooms: number;
  participants: number;
  connections: number;
  overloaded: boolean;
  db: { writes: number; queue: number; dropped: number; deadLetters: number; failures: number };
}

type Health = { rooms: number; participants: number; connections: number; sfu?: { workers: { index: number; pid: number }[] } };

const MB = 1024 * 1024;

async function activeResources(srv: Server): Promise<Record<string, number>> {
  const info = (await srv.evaluate('process.getActiveResourcesInfo()')) as string[];
  const resources: Record<string, number> = {};
  for (const k of info) resources[k] = (resources[k] ?? 0) + 1;
  return resources;
}

/**
 * Active resources by type over `reads` reads 500 ms apart, each type's highest (`max`, for a
 * baseline) or lowest (`min`, for the end): a timer or request that happens to be pending at
 * one read is not a leak; a leak stays.
 */
export async function steadyResources(srv: Server, pick: 'max' | 'min', reads = 5): Promise<Record<string, number>> {
  const all: Record<string, number>[] = [];
  for (let i = 0; i < reads; i++) {
    if (i) await new Promise((r) => setTimeout(r, 500));
    all.push(await activeResources(srv));
  }
  const out: Record<string, number> = {};
  for (const k of new Set(all.flatMap((r) => Object.keys(r)))) {
    const v = Math[pick](...all.map((r) => r[k] ?? 0));
    if (v > 0) out[k] = v;
  }
  return out;
}

export async function takeSample(srv: Server, t0: number): Promise<Sample> {
  const http = `http://127.0.0.1:${srv.port}`;
  await srv.fullGc();
  const mem = JSON.parse(String(await srv.evaluate('JSON.stringify(process.memoryUsage())'))) as { heapUsed: number; external: number };
  const resources = await activeResources(srv);
  const h = (await (await fetch(`${http}/health`)).json()) as Health;
  const text = await metricsText(srv.port);
  const workers = h.sfu?.workers ?? [];
  const workerObjects = workers.map((w) => metricSum(text, 'auralink_sfu_worker_objects', { worker: String(w.index) }));
  const workerRssMB = workers.map((w) => {
    try {
      return rssBytes(w.pid) / MB;
    } catch {
      return Number.NaN; // killed between the two reads
    }
  });
  const m = (name: string, labels: Record<string, string> = {}): number => {
    const v = metricSum(text, name, labels);
    return Number.isNaN(v) ? 0 : v;
  };
  return {
    t: (performance.now() - t0) / 1000,
    rssMB: rssBytes(srv.proc.pid!) / MB,
    heapUsedMB: mem.heapUsed / MB,
    externalMB: mem.external / MB,
    resources,
    sfu: { router: m('auralink_sfu_objects', { type: 'router' }), transport: m('auralink_sfu_objects', { type: 'transport' }), producer: m('auralink_sfu_objects', { type: 'producer' }), consumer: m('auralink_sfu_objects', { type: 'consumer' }) },
    workerObjects,
    workerRssMB,
    workers: workers.length,
    rooms: h.rooms,
    participants: h.participants,
    connections: h.connections,
    overloaded: m('auralink_admission_overloaded') > 0,
    db: {
      writes: m('auralink_db_writes_total'),
      queue: m('auralink_db_write_queue'),
      dropped: m('auralink_db_writes_dropped_total'),
      deadLetters: m('auralink_db_dead_letters_total'),
      failures: m('auralink_db_write_failures_total'),
    },
  };
}

export const fmtResources = (r: Record<string, number>): string =>
  Object.entries(r)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([k, v]) => `${k} ${v}`)
    .join(', ');
