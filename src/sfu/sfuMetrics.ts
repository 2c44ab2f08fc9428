import { Gauge, type Registry } from 'prom-client';
import type { SfuRoom } from './sfuRoom.js';
import type { WorkerPool } from './workerPool.js';

/** mediasoup object counts (from the workers themselves) and worker CPU, at scrape time. */
// A worker that just died (its routers with it) answers no dump: it is skipped, not a failed
// scrape (the whole of /metrics would be a 500 until the pool replaced it and rooms rebuilt).
async function dump<T>(o: { dump(): Promise<unknown> }): Promise<T | undefined> {
  try {
    return (await o.dump()) as T;
  } catch {
    return undefined;
  }
}

export function registerSfuMetrics(registry: Registry, pool: WorkerPool, rooms: ReadonlyMap<string, SfuRoom>): void {
  new Gauge({
    name: 'auralink_sfu_objects',
    help: 'mediasoup objects alive: routers as the workers report them; transports, producers, consumers, data producers and consumers from the room routers',
    labelNames: ['type'] as const,
    registers: [registry],
    async collect() {
      let routers = 0;
      for (const s of pool.slots) routers += (await dump<{ routerIds: string[] }>(s.worker))?.routerIds.length ?? 0;
      let transports = 0;
      let producers = 0;
      let consumers = 0;
      let dataProducers = 0;
      let dataConsumers = 0;
      for (const r of rooms.values()) {
        for (const slot of r.slots) {
          const d = await dump<{
            transportIds: string[];
            mapProducerIdConsumerIds: Record<string, string[]>;
            mapDataProducerIdDataConsumerIds: Record<string, string[]>;
          }>(slot.router);
          if (!d) continue;
          transports += d.transportIds.length;
          // 3.12 dumps this as an object: producer id -> consumer ids.
          const map = Object.values(d.mapProducerIdConsumerIds);
          producers += map.length;
          consumers += map.reduce((n, ids) => n + ids.length, 0);
          const data = Object.values(d.mapDataProducerIdDataConsumerIds ?? {});
          dataProducers += data.length;
          dataConsumers += data.reduce((n, ids) => n + ids.length, 0);
        }
      }
      this.set({ type: 'router' }, routers);
      this.set({ type: 'transport' }, transports);
      this.set({ type: 'producer' }, producers);
      this.set({ type: 'consumer' }, consumers);
      this.set({ type: 'data_producer' }, dataProducers);
      this.set({ type: 'data_consumer' }, dataConsumers);
    },
  });
  new Gauge({
    name: 'auralink_sfu_worker_objects',
    help: 'Objects each mediasoup worker holds, from its dump: routers, transports, producers, consumers and observers (its channel request handlers)',
    labelNames: ['worker'] as const,
    registers: [registry],
    async collect() {
      this.reset();
      for (const s of pool.slots) {
        const d = await dump<{ channelMessageHandlers: { channelRequestHandlers: string[] } }>(s.worker);
        if (d) this.set({ worker: String(s.index) }, d.channelMessageHandlers.channelRequestHandlers.length);
      }
    },
  });
  new Gauge({
    name: 'auralink_sfu_worker_cpu_seconds',
    help: 'CPU time used by each mediasoup worker (user + system)',
    labelNames: ['worker'] as const,
    registers: [registry],
    async collect() {
      this.reset();
      for (const s of pool.slots) {
        const u = await s.worker.getResourceUsage().catch(() => undefined);
        if (u) this.set({ worker: String(s.index) }, (u.ru_utime + u.ru_stime) / 1000);
      }
    },
  });
  new Gauge({
    name: 'auralink_sfu_workers',
    help: 'Live mediasoup workers',
    registers: [registry],
    collect() {
      this.set(pool.slots.length);
    },
  });
}
