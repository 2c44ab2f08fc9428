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
import { AicRoom } from './aicRoom.js';
import type { ViewerSettings } from './controller.js';

/** Tells a publisher which of its layers are needed (SfuNotifier.layersWanted). */
export type PublisherSink = (room: Room, publisherSid: string, producerId: string, maxSpatialLayer: number) => void;

/**
 * AIC for the node: the SFU's MediaControl. A room is in the AIC arm or the control arm
 * (ab_testing); both are measured, only the AIC arm is controlled. Owns one stats timer and
 * every room's state (closed with the room, or by close()).
 */
export class AicService implements MediaControl {
  private readonly rooms = new Map<string, AicRoom>();
  private readonly metrics: AicMetrics;
  private timer: NodeJS.Timeout | undefined;
  private last = Date.now();
  private busy = false;

  constructor(
    private readonly cfg: Config['aic'],
    manager: RoomManager,
    private readonly tell: PublisherSink,
    registry: Registry,
    private readonly log: Logger,
  ) {
    this.metrics = new AicMetrics(registry);
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
    } catch (err) {
      this.log.warn({ err }, 'AIC sampling failed');
    } finally {
      this.busy = false;
    }
  }

  private closeRoom(name: string): void {
    this.rooms.get(name)?.close();
    this.rooms.delete(name);
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    for (const name of [...this.rooms.keys()]) this.closeRoom(name);
  }
}
