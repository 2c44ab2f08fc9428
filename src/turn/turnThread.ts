import { Worker } from 'node:worker_threads';
import type { Registry } from 'prom-client';
import type { Logger } from '../obs/logger.js';
import type { EmbeddedTurnOptions } from './embeddedTurn.js';
import type { FromTurnThread, ToTurnThread } from './turnMessages.js';
import { TurnMetrics, type TurnMetricsSource } from './turnMetrics.js';
import type { TurnSnapshot } from './turnStats.js';

export interface TurnThreadConfig {
  opts: EmbeddedTurnOptions;
  secret: string;
  ttlS: number;
  allowedPeerCidrs: string[];
  deniedPeerCidrs: string[];
}

const WORKER_URL = new URL('./turnWorker.js', import.meta.url);
const SNAPSHOT_TIMEOUT_MS = 1000;
const CLOSE_TIMEOUT_MS = 2000;
/** A thread that lived this long before dying restarts at once; one that keeps dying, slower. */
const STABLE_MS = 30_000;
const BACKOFF_MAX_MS = 10_000;

/**
 * Owns the TURN thread (turnWorker.ts): starts it, restarts it when it dies (logged, counted in
 * auralink_turn_thread_restarts_total; its allocations are lost and clients allocate again),
 * reads its figures for the registry at scrape time, and closes it. Nothing of the TURN data
 * path runs on this (the signalling) thread.
 */
export class EmbeddedTurnThread implements TurnMetricsSource {
  private worker: Worker | undefined;
  private running = false;
  private closing = false;
  private count = 0;
  private nextId = 1;
  private readonly pending = new Map<number, (s: TurnSnapshot | undefined) => void>();
  private restartTimer: NodeJS.Timeout | undefined;
  private failures = 0;
  private startedAt = 0;
  private exited: Promise<void> = Promise.resolve();
  private readonly metrics: TurnMetrics;

  constructor(
    private readonly cfg: TurnThreadConfig,
    registry: Registry,
    private readonly log: Logger,
  ) {
    this.metrics = new TurnMetrics(registry, this);
  }

  get allocationCount(): number {
    return this.count;
  }

  get up(): boolean {
    return this.running;
  }

  /** Resolves once the thread listens; rejects (thread ended) when it cannot. */
  start(): Promise<void> {
    return this.spawn(false);
  }

  /** `restart`: a failed start schedules another try instead of failing a caller. */
  private spawn(restart: boolean): Promise<void> {
    const w = new Worker(WORKER_URL, { name: 'auralink-turn' });
    this.worker = w;
    this.exited = new Promise((resolve) => w.once('exit', () => resolve()));
    let settle: { ok(): void; fail(e: Error): void } | undefined;
    const started = new Promise<void>((ok, fail) => (settle = { ok, fail }));
    w.on('message', (m: FromTurnThread) => {
      switch (m.type) {
        case 'started':
          this.running = true;
          this.startedAt = Date.now();
          settle?.ok();
          settle = undefined;
          break;
        case 'startFailed':
          settle?.fail(new Error(m.message));
          settle = undefined;
          void w.terminate();
          break;
        case 'allocations':
          this.count = m.count;
          break;
        case 'snapshot':
          this.pending.get(m.id)?.(m.snapshot);
          this.pending.delete(m.id);
          break;
        case 'log':
          this.log[m.level]({ ...m.obj, component: 'turn' }, m.msg);
          break;
      }
    });
    w.on('error', (err) => this.log.error({ err, component: 'turn' }, 'TURN thread error'));
    w.once('exit', (code) => {
      const wasRunning = this.running;
      this.running = false;
      this.count = 0;
      if (this.worker === w) this.worker = undefined;
      for (const resolve of this.pending.values()) resolve(undefined);
      this.pending.clear();
      settle?.fail(new Error(`TURN thread exited (${code}) before listening`));
      settle = undefined;
      if (this.closing) return;
      if (wasRunning) {
        this.metrics.threadDied();
        this.log.error({ code, component: 'turn' }, 'TURN thread died: restarting it (its allocations are lost)');
        this.scheduleRestart(Date.now() - this.startedAt > STABLE_MS);
      } else if (restart) {
        this.scheduleRestart(false);
      }
    });
    w.postMessage({
      type: 'start',
      opts: this.cfg.opts,
      secret: this.cfg.secret,
      ttlS: this.cfg.ttlS,
      allowedPeerCidrs: this.cfg.allowedPeerCidrs,
      deniedPeerCidrs: this.cfg.deniedPeerCidrs,
      debug: this.log.isLevelEnabled('debug'),
    } satisfies ToTurnThread);
    return started;
  }

  private scheduleRestart(stable: boolean): void {
    this.failures = stable ? 0 : this.failures + 1;
    const delay = Math.min(BACKOFF_MAX_MS, this.failures === 0 ? 0 : 100 * 2 ** this.failures);
    this.restartTimer = setTimeout(() => {
      this.restartTimer = undefined;
      if (this.closing) return;
      this.metrics.restarted();
      this.spawn(true).then(
        () => this.log.info({ component: 'turn' }, 'TURN thread restarted'),
        (err: Error) => this.log.error({ err: err.message, component: 'turn' }, 'TURN thread restart failed'),
      );
    }, delay);
  }

  snapshot(): Promise<TurnSnapshot | undefined> {
    const w = this.worker;
    if (!w || !this.running) return Promise.resolve(undefined);
    const id = this.nextId++;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        resolve(undefined);
      }, SNAPSHOT_TIMEOUT_MS);
      this.pending.set(id, (s) => {
        clearTimeout(timer);
        resolve(s);
      });
      w.postMessage({ type: 'snapshot', id } satisfies ToTurnThread);
    });
  }

  /** Fault injection for tests of the supervision: the thread throws an uncaught error. */
  injectCrash(): void {
    this.worker?.postMessage({ type: 'crash' } satisfies ToTurnThread);
  }

  /** Ends the thread (its sockets with it); resolves once it has exited. */
  async close(): Promise<void> {
    this.closing = true;
    clearTimeout(this.restartTimer);
    this.restartTimer = undefined;
    const w = this.worker;
    if (!w) return;
    w.postMessage({ type: 'close' } satisfies ToTurnThread);
    const timer = setTimeout(() => void w.terminate(), CLOSE_TIMEOUT_MS);
    await this.exited;
    clearTimeout(timer);
  }
}
