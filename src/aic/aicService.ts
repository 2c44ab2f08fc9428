import { EventEmitter } from 'node:events';
import type { types } from 'mediasoup';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { Config } from '../config/schema.js';
import type { Room } from '../rooms/room.js';
import type { RoomManager } from '../rooms/roomManager.js';
import type { MediaControl, SourceSize } from '../sfu/mediaControl.js';
import type { PeerConsumer } from '../sfu/peerConsumer.js';
import { armOf, type Arm } from './arm.js';
import { AicMetrics } from './aicMetrics.js';
import { ADVICE_VERSION } from './advice.js';
import { AiCoreClient } from './aiCore.js';
import { AicRoom, type AicCallSummary } from './aicRoom.js';
import type { ViewerSettings } from './controller.js';

/** Tells a publisher which of its layers are needed (SfuNotifier.layersWanted). */
export type PublisherSink = (room: Room, publisherSid: string, producerId: string, maxSpatialLayer: number) => void;

// Requests to the AI core in flight at once, across rooms (the rest wait for the next round).
const MAX_ADVICE_INFLIGHT = 32;

export interface AicServiceEvents {
  /** A room session's AIC summary, when the room finishes (or the node closes). */
  callSummary: [AicCallSummary];
}

/**
 * AIC for the node: the SFU's MediaControl. A room is in the AIC arm or the control arm
 * (ab_testing); both are measured, only the AIC arm is controlled. Owns one stats timer, the
 * AI core client and its timer (when `ai_core_endpoint` is set), and every room's state
 * (closed with the room, or by close()).
 */
export class AicService extends EventEmitter<AicServiceEvents> implements MediaControl {
  private readonly rooms = new Map<string, AicRoom>();
  private readonly metrics: AicMetrics;
  private timer: NodeJS.Timeout | undefined;
  private last = Date.now();
  private busy = false;
  private readonly aiCore: AiCoreClient | undefined;
  private adviceTimer: NodeJS.Timeout | undefined;
  private readonly advising = new Set<string>();

  constructor(
    private readonly cfg: Config['aic'],
    private readonly nodeId: string,
    manager: RoomManager,
    private readonly tell: PublisherSink,
    registry: Registry,
    private readonly log: Logger,
  ) {
    super();
    this.metrics = new AicMetrics(registry);
    if (cfg.ai_core_endpoint) {
      const ai = cfg.ai_core;
      this.aiCore = new AiCoreClient(
        { endpoint: cfg.ai_core_endpoint, timeoutMs: ai.timeout_ms, failureThreshold: ai.failure_threshold, openMs: ai.open_ms, maxResponseBytes: ai.max_response_bytes },
        {
          request: (outcome, seconds) => {
            this.metrics.aiCoreRequests.inc({ outcome });
            if (seconds !== undefined) this.metrics.aiCoreSeconds.observe(seconds);
          },
          breaker: (open) => this.metrics.aiCoreOpen.set(open ? 1 : 0),
        },
        log,
      );
      this.adviceTimer = setInterval(() => this.adviseAll(), ai.interval_ms);
      this.adviceTimer.unref();
    }
    manager.on('roomFinished', (room) => this.closeRoom(room.name));
    manager.on('participantLeft', (room, p) => this.rooms.get(room.name)?.removeSubscriber(p.sid));
    if (cfg.monitoring.enabled || cfg.adaptive.enabled) {
      this.timer = setInterval(() => void this.sample(), cfg.stats_interval_ms);
      this.timer.unref();
    }
  }

  arm(roomName: string): Arm {
    return armOf(roomName, this.cfg.ab_testing);
  }

  private room(room: Room): AicRoom {
    let r = this.rooms.get(room.name);
    if (!r) {
      r = new AicRoom(
        room.name,
        room.sid,
        this.arm(room.name),
        {
          policy: { adaptive: this.cfg.adaptive.enabled, thresholds: this.cfg.adaptive.thresholds },
          holdDownMs: this.cfg.pause_hold_down_ms,
          minQuality: this.cfg.compression.min_quality_threshold,
          fallback: this.cfg.adaptive.fallback_enabled,
        },
        (sid, producerId, layer) => {
          if (!room.closed) this.tell(room, sid, producerId, layer);
        },
        this.metrics,
        this.log,
      );
      this.rooms.set(room.name, r);
    }
    return r;
  }

  transportCreated(room: Room, participantSid: string, transport: types.WebRtcTransport, consuming: boolean): void {
    if (!consuming) return;
    const r = this.room(room);
    void transport.enableTraceEvent(['bwe']).catch(() => undefined);
    transport.on('trace', (t) => {
      // Outgoing estimate (towards the subscriber), from transport-cc or REMB feedback.
      const info = t.info as { availableBitrate?: number };
      if (t.type === 'bwe' && t.direction === 'out' && typeof info.availableBitrate === 'number') r.bandwidth(participantSid, info.availableBitrate);
    });
  }

  producerCreated(room: Room, publisherSid: string, producer: types.Producer, source: string, size: SourceSize): void {
    this.room(room).addProducer(publisherSid, producer, source, size);
  }

  consumerCreated(room: Room, subscriberSid: string, consumer: PeerConsumer): void {
    this.room(room).addConsumer(subscriberSid, consumer);
  }

  trackSettings(room: Room, subscriberSid: string, consumer: PeerConsumer, settings: ViewerSettings): void {
    this.room(room).settings(subscriberSid, consumer, settings);
  }

  pipeDemand(room: Room, producerId: string, node: string, spatialLayer: number | undefined): void {
    // A node's demand is one more "consumer" of the producer in dynacast's aggregate.
    const d = this.room(room).dynacast;
    if (spatialLayer === undefined) d.drop(producerId, `node:${node}`);
    else d.want(producerId, `node:${node}`, spatialLayer);
  }

  /** The room's state for /health-like inspection and tests. */
  snapshot(roomName: string): { arm: Arm; subscribers: ReturnType<AicRoom['snapshot']> } | undefined {
    const r = this.rooms.get(roomName);
    return r && { arm: r.arm, subscribers: r.snapshot() };
  }

  private async sample(): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    const now = Date.now();
    const dt = (now - this.last) / 1000;
    this.last = now;
    try {
      for (const r of [...this.rooms.values()]) await r.sample(dt);
      this.metrics.belowTarget.set(this.roomsBelowTarget());
    } catch (err) {
      this.log.warn({ err }, 'AIC sampling failed');
    } finally {
      this.busy = false;
    }
  }

  /** AIC-arm rooms whose reduction so far is under compression.target_reduction_percent. */
  private roomsBelowTarget(): number {
    let n = 0;
    for (const r of this.rooms.values()) {
      const reduction = r.arm === 'aic' ? r.reductionPercent() : null;
      if (reduction !== null && reduction < this.cfg.compression.target_reduction_percent) n++;
    }
    return n;
  }

  /** One round of AI core advice: every AIC-arm room with subscribers, one request each. */
  private adviseAll(): void {
    for (const r of this.rooms.values()) {
      r.expireAdvice();
      if (r.arm !== 'aic' || r.subscribers.size === 0 || this.advising.has(r.name)) continue;
      if (this.advising.size >= MAX_ADVICE_INFLIGHT) break;
      void this.advise(r);
    }
  }

  private async advise(r: AicRoom): Promise<void> {
    const ai = this.aiCore;
    if (!ai) return;
    this.advising.add(r.name);
    try {
      const { advice } = await ai.advise({
        version: ADVICE_VERSION,
        node_id: this.nodeId,
        room: r.name,
        sent_at: new Date().toISOString(),
        min_quality: this.cfg.compression.min_quality_threshold,
        target_reduction_percent: this.cfg.compression.target_reduction_percent,
        reduction_percent: r.reductionPercent(),
        ...r.features(),
      });
      // The room may have finished while the AI core thought about it.
      if (advice && this.rooms.get(r.name) === r) r.applyAdvice(advice, advice.ttl_ms ?? 3 * this.cfg.ai_core.interval_ms);
    } finally {
      this.advising.delete(r.name);
    }
  }

  private closeRoom(name: string): void {
    const r = this.rooms.get(name);
    if (!r) return;
    this.rooms.delete(name);
    r.close();
    this.emit('callSummary', r.summary(this.cfg.compression.target_reduction_percent));
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    if (this.adviceTimer) clearInterval(this.adviceTimer);
    this.adviceTimer = undefined;
    this.aiCore?.close();
    for (const name of [...this.rooms.keys()]) this.closeRoom(name);
  }
}
