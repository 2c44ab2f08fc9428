import type { types } from 'mediasoup';
import type { Logger } from 'pino';
import type { Config } from '../../config/schema.js';
import type { Room } from '../../rooms/room.js';
import type { ConsumerSwitch } from '../../sfu/consumerSwitch.js';
import type { ProducerHooks } from '../../sfu/producerHooks.js';
import type { RouterSlot, SfuRoom } from '../../sfu/sfuRoom.js';
import type { Arm } from '../arm.js';
import type { BatchParser } from '../rtp/api.js';
import { hooksApply, makeHooks } from './builtins.js';
import type { HookMetrics } from './hookMetrics.js';
import { TrackHooks } from './trackHooks.js';

interface Entry {
  ready: Promise<TrackHooks | undefined>;
}

/**
 * The node's RTP hook chains (aic.hooks): one TrackHooks per producer published here in an
 * AIC-arm room whose kind a configured hook takes. Consumers made while a chain runs get its
 * processed producer; when a hook fails (fallback_enabled), the chain stops running hooks at
 * once (packets pass as they come), the subscribers are switched to the original producer,
 * then the chain is closed. A fallen-back track stays plain until it is published again:
 * nothing re-enables a hook that failed once.
 */
export class HookService implements ProducerHooks {
  private readonly tracks = new Map<string, Entry>(); // by original producer id

  constructor(
    private readonly cfg: Config['aic'],
    private readonly arm: (roomName: string) => Arm,
    private readonly switcher: ConsumerSwitch,
    private readonly parser: BatchParser,
    private readonly metrics: HookMetrics,
    private readonly log: Logger,
  ) {}

  producerCreated(room: Room, sfuRoom: SfuRoom, producer: types.Producer, source: string): void {
    const kind = producer.kind;
    if (this.cfg.hooks.length === 0 || this.arm(room.name) !== 'aic' || !hooksApply(this.cfg.hooks, kind)) return;
    const ready = TrackHooks.create(
      sfuRoom.main.router,
      producer,
      { roomName: room.name, source },
      (track) => makeHooks(this.cfg.hooks, track, this.metrics),
      this.parser,
      this.metrics,
      { budgetMs: this.cfg.compression.max_latency_ms, fallback: this.cfg.adaptive.fallback_enabled, senderReportMs: 1000 },
    ).then(
      (th) => {
        if (th.closed) return undefined;
        th.on('fault', (f) => {
          const err = f.error instanceof Error ? f.error.message : f.error === undefined ? undefined : String(f.error);
          this.log.warn({ room: room.name, producerId: producer.id, hook: f.hook, reason: f.reason, ms: Math.round(f.ms * 1000) / 1000, err, fallback: this.cfg.adaptive.fallback_enabled }, 'RTP hook failed');
          if (th.fellBack) void this.fallBack(room, sfuRoom, th);
        });
        th.once('closed', () => this.tracks.delete(producer.id));
        return th;
      },
      (err: unknown) => {
        this.tracks.delete(producer.id);
        if (!producer.closed) this.log.warn({ room: room.name, producerId: producer.id, err: (err as Error).message }, 'RTP hook chain not started: the track is forwarded as it is');
        return undefined;
      },
    );
    this.tracks.set(producer.id, { ready });
  }

  async route(sfuRoom: SfuRoom, producerId: string, slot: RouterSlot): Promise<string> {
    const e = this.tracks.get(producerId);
    if (!e) return producerId;
    const th = await e.ready;
    // Subscribers on the room's other routers (over max_consumers_per_router) get the original.
    if (!th || th.closed || th.fellBack || slot !== sfuRoom.main) return producerId;
    return th.processed.id;
  }

  private async fallBack(room: Room, sfuRoom: SfuRoom, th: TrackHooks): Promise<void> {
    try {
      let n = await this.switcher.switchAll(room, sfuRoom, th.processed.id, th.producerId, 'hookFallback');
      // A consume routed here just before the fault may have finished meanwhile.
      n += await this.switcher.switchAll(room, sfuRoom, th.processed.id, th.producerId, 'hookFallback');
      this.log.info({ room: room.name, producerId: th.producerId, switched: n }, 'RTP hooks: subscribers switched to the unprocessed track');
    } catch (err) {
      this.log.warn({ room: room.name, producerId: th.producerId, err: (err as Error).message }, 'RTP hooks: switching subscribers failed');
    } finally {
      th.close();
    }
  }

  /** Chains running now (tests, health). */
  get size(): number {
    return this.tracks.size;
  }

  close(): void {
    for (const e of this.tracks.values()) void e.ready.then((th) => th?.close());
    this.tracks.clear();
  }
}
