import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { Arm } from './arm.js';

/** auralink_aic_*: every series carries the room's arm. */
export class AicMetrics {
  readonly forwarded: Counter<'arm'>;
  readonly forwardAll: Counter<'arm'>;
  readonly quality: Histogram<'arm'>;
  readonly belowThreshold: Counter<'arm'>;
  readonly decisions: Counter<'arm' | 'action' | 'reason'>;
  readonly reaction: Histogram<'arm'>;
  readonly dynacast: Counter<'arm' | 'direction'>;
  readonly aiCoreRequests: Counter<'outcome'>;
  readonly aiCoreSeconds: Histogram;
  readonly aiCoreOpen: Gauge;
  readonly belowTarget: Gauge;
  private readonly sums = new Map<Arm, { fwd: number; all: number }>();

  constructor(registry: Registry) {
    const registers = [registry];
    const labelNames = ['arm'] as const;
    this.forwarded = new Counter({ name: 'auralink_aic_bytes_forwarded_total', help: 'Video bytes the SFU sent to subscribers (consumer stats)', labelNames, registers });
    this.forwardAll = new Counter({
      name: 'auralink_aic_forward_all_bytes_total',
      help: "Video bytes forwarding every consumer its producer's top layer would have sent (top layer's measured bitrate x time)",
      labelNames,
      registers,
    });
    const sums = this.sums;
    new Gauge({
      name: 'auralink_aic_compression_ratio',
      help: '1 - bytes forwarded / forward-all bytes, since start',
      labelNames,
      registers,
      collect() {
        for (const [arm, s] of sums) if (s.all > 0) this.set({ arm }, 1 - s.fwd / s.all);
      },
    });
    this.quality = new Histogram({
      name: 'auralink_aic_quality_score',
      help: 'Quality score (0-100, docs/AIC.md) of each visible video consumer, sampled every stats interval',
      labelNames,
      buckets: [10, 20, 30, 40, 50, 60, 70, 80, 90, 95, 100],
      registers,
    });
    this.belowThreshold = new Counter({ name: 'auralink_aic_quality_below_threshold_total', help: 'Samples of visible consumers under compression.min_quality_threshold', labelNames, registers });
    this.decisions = new Counter({
      name: 'auralink_aic_decisions_total',
      help: 'Controller changes applied to consumers: action pause | resume | layer | priority | fallback, with the reason',
      labelNames: ['arm', 'action', 'reason'] as const,
      registers,
    });
    this.reaction = new Histogram({
      name: 'auralink_aic_decision_seconds',
      help: 'trackSettings received -> the changed decision applied in the worker',
      labelNames,
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers,
    });
    this.dynacast = new Counter({ name: 'auralink_aic_dynacast_updates_total', help: 'layersWanted sent to publishers (up | down)', labelNames: ['arm', 'direction'] as const, registers });
    this.aiCoreRequests = new Counter({
      name: 'auralink_aic_ai_core_requests_total',
      help: 'Advice requests to the AI core by outcome: ok | timeout | error | invalid (answer off the contract) | open (not sent: circuit open)',
      labelNames: ['outcome'] as const,
      registers,
    });
    this.aiCoreSeconds = new Histogram({ name: 'auralink_aic_ai_core_seconds', help: 'AI core advice request time', buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5], registers });
    this.belowTarget = new Gauge({
      name: 'auralink_aic_rooms_below_target',
      help: 'AIC-arm rooms whose reduction so far (1 - forwarded / forward-all) is under compression.target_reduction_percent',
      registers,
    });
    this.aiCoreOpen = new Gauge({ name: 'auralink_aic_ai_core_circuit_open', help: '1 while the AI core circuit breaker is open (local policy only)', registers });
  }

  bytes(arm: Arm, forwarded: number, forwardAll: number): void {
    const s = this.sums.get(arm) ?? { fwd: 0, all: 0 };
    s.fwd += forwarded;
    s.all += forwardAll;
    this.sums.set(arm, s);
    if (forwarded > 0) this.forwarded.inc({ arm }, forwarded);
    if (forwardAll > 0) this.forwardAll.inc({ arm }, forwardAll);
  }
}
