import type { Logger } from 'pino';
import { Counter, Gauge, type Registry } from 'prom-client';
import type { JoinGrant } from '../auth/token.js';
import type { ResumeRequest } from '../rooms/types.js';
import type { AdmissionPort, Refusal } from '../signal/gateway.js';
import { AdmissionState, OVERLOAD_REASONS, type AdmissionLimits, type LoadReading, type OverloadReason } from './admission.js';

export interface AdmissionOptions {
  sampleMs: number;
  retryAfterS: number;
  limits: AdmissionLimits;
}

export interface LoadSource {
  read(): Promise<LoadReading>;
  close(): void;
}

/** Whether a resume token is the live session of the grant's identity here (RoomManager.holdsSession). */
export type SessionCheck = (grant: JoinGrant, resumeToken: string) => boolean;

const LABEL: Record<OverloadReason, string> = {
  consumers: 'consumers per worker',
  event_loop_lag: 'event-loop lag (ms)',
  worker_cpu: 'busiest worker CPU (%)',
};

/**
 * Overload admission: samples the node's load every sampleMs and, while it is over a limit,
 * refuses new joins at the upgrade (HTTP 503 OVERLOADED, Retry-After) and makes /readiness
 * false. A resume of a session this node holds is not a new join: it is let in. Owns the
 * sampling timer and the load source; close() stops both.
 */
export class AdmissionControl implements AdmissionPort {
  private readonly state: AdmissionState;
  private readonly timer: NodeJS.Timeout;
  private sampling = false;
  private closed = false;
  private readonly refused: Counter<'reason'>;
  private readonly resumesAdmitted: Counter;

  constructor(
    private readonly opts: AdmissionOptions,
    private readonly load: LoadSource,
    private readonly sessions: SessionCheck,
    registry: Registry,
    private readonly log: Logger,
  ) {
    this.state = new AdmissionState(opts.limits);
    this.refused = new Counter({
      name: 'auralink_admission_refused_total',
      help: 'Joins refused at the upgrade because the node was overloaded (HTTP 503 OVERLOADED), by what it was overloaded by',
      labelNames: ['reason'] as const,
      registers: [registry],
    });
    this.resumesAdmitted = new Counter({
      name: 'auralink_admission_resumes_admitted_total',
      help: 'Resumes of sessions on this node let in while it refused new joins',
      registers: [registry],
    });
    const state = this.state;
    new Gauge({
      name: 'auralink_admission_overloaded',
      help: '1 while the node refuses new joins, labelled with what it is overloaded by (0 for the other reasons)',
      labelNames: ['reason'] as const,
      registers: [registry],
      collect() {
        for (const r of OVERLOAD_REASONS) this.set({ reason: r }, state.reason === r ? 1 : 0);
      },
    });
    const gauge = (name: string, help: string, value: (r: LoadReading) => number): void =>
      void new Gauge({ name, help, registers: [registry], collect() { this.set(value(state.reading)); } });
    gauge('auralink_admission_consumers_per_worker', 'Consumers per live mediasoup worker, as last sampled for admission', (r) => r.consumersPerWorker);
    gauge('auralink_admission_event_loop_lag_seconds', 'Mean event-loop delay over the last admission sample window', (r) => r.eventLoopLagMs / 1000);
    gauge('auralink_admission_worker_cpu_ratio', 'CPU of the busiest mediasoup worker over the last admission sample window (1 = one core)', (r) => r.workerCpuPercent / 100);
    this.timer = setInterval(() => void this.sample(), opts.sampleMs);
    this.timer.unref();
  }

  get overloaded(): boolean {
    return this.state.reason !== null;
  }

  status(): { overloaded: boolean; reason: OverloadReason | null; reading: LoadReading } {
    return { overloaded: this.overloaded, reason: this.state.reason, reading: this.state.reading };
  }

  refuse(grant: JoinGrant, resume: ResumeRequest | undefined): Refusal | null {
    const reason = this.state.reason;
    if (!reason) return null;
    if (resume && this.sessions(grant, resume.token)) {
      this.resumesAdmitted.inc();
      return null;
    }
    this.refused.inc({ reason });
    const { value, limit } = this.state.level(reason);
    return {
      code: 'OVERLOADED',
      message: `node overloaded (${LABEL[reason]} ${Math.round(value * 10) / 10}, limit ${limit}): connect to another node or retry later`,
      retryAfterS: this.opts.retryAfterS,
    };
  }

  /** One sample (the timer calls it; tests may too). */
  async sample(at?: number): Promise<void> {
    if (this.sampling || this.closed) return;
    this.sampling = true;
    try {
      const r = await this.load.read();
      if (this.closed || !this.state.update(r, at ?? performance.now())) return;
      if (this.state.reason) this.log.warn({ reason: this.state.reason, reading: r }, 'overloaded: refusing new joins');
      else this.log.info({ reading: r }, 'load back under the admission limits: accepting new joins');
    } catch (err) {
      this.log.warn({ err }, 'admission: load not read');
    } finally {
      this.sampling = false;
    }
  }

  close(): void {
    this.closed = true;
    clearInterval(this.timer);
    this.load.close();
  }
}
