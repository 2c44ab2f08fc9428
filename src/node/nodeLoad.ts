import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
import type { WorkerPool } from '../sfu/workerPool.js';
import type { LoadReading } from './admission.js';

const RESOLUTION_MS = 10;

/**
 * Reads the node's load for admission: event-loop delay (perf_hooks), each mediasoup worker's
 * CPU (getResourceUsage) and consumers per worker. Each read() covers the time since the last.
 * Owns the delay monitor: close() stops it.
 */
export class NodeLoad {
  private readonly delay: IntervalHistogram = monitorEventLoopDelay({ resolution: RESOLUTION_MS });
  /** The histogram's running sum and count at the last read (it is never reset: a reset drops the interval after it). */
  private delaySum = 0;
  private delayCount = 0;
  /** CPU ms and time at the last read, by worker pid (a replaced worker starts afresh). */
  private cpu = new Map<number, { ms: number; at: number }>();

  constructor(private readonly pool: WorkerPool | undefined) {
    this.delay.enable();
  }

  async read(): Promise<LoadReading> {
    // The histogram records each timer interval (resolution included): the mean interval in
    // this window, less the resolution, is how late the loop ran on average.
    const count = this.delay.count;
    const sum = count > 0 ? this.delay.mean * count : 0;
    const ticks = count - this.delayCount;
    const eventLoopLagMs = ticks > 0 ? Math.max(0, (sum - this.delaySum) / ticks / 1e6 - RESOLUTION_MS) : 0;
    this.delaySum = sum;
    this.delayCount = count;

    let consumers = 0;
    let workers = 0;
    let workerCpuPercent = 0;
    const cpu = new Map<number, { ms: number; at: number }>();
    for (const s of this.pool?.slots ?? []) {
      if (s.worker.closed) continue;
      workers++;
      consumers += s.consumers;
      try {
        const u = await s.worker.getResourceUsage();
        const now = performance.now();
        const ms = u.ru_utime + u.ru_stime;
        const prev = this.cpu.get(s.pid);
        cpu.set(s.pid, { ms, at: now });
        if (prev && now > prev.at) workerCpuPercent = Math.max(workerCpuPercent, (100 * (ms - prev.ms)) / (now - prev.at));
      } catch {
        /* the worker died while asked: the pool replaces it; no reading from it this time */
      }
    }
    this.cpu = cpu;
    return { consumersPerWorker: workers > 0 ? consumers / workers : 0, eventLoopLagMs, workerCpuPercent };
  }

  close(): void {
    this.delay.disable();
  }
}
