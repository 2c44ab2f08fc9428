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
import { trackIdOf } from '../../sfu/trackId.js';

interface Entry {
  ready: Promise<TrackHooks | undefined>;
  /** The room's other routers the processed producer was piped to (or is being). */
  slots: Map<RouterSlot, Promise<boolean>>;
}

/**
 * The node's RTP hook chains (aic.hooks): one TrackHooks per producer published here in an
 * AIC-arm room whose kind a configured hook takes, and one per producer piped in from another
 * node once a subscriber here consumes it. Consumers made while a chain runs get its
 * processed producer; when a hook fails (fallback_enabled), the chain stops running hooks at
 * once (packets pass as they come), the subscribers are switched to the original producer,
 * then the chain is closed. A fallen-back track stays plain until it is published again:
 * nothing re-enables a hook that failed once.
 */
export class HookService implements ProducerHooks {
  private readonly tracks = new Map<string, Entry>(); // by track id (trackIdOf)
  /**
   * Tracks whose chain failed, per room: forwarded plain until published again. Kept with the
   * room, not the producer: a piped-in copy closes and comes back (linger, re-route) while
   * the track is the same, and a hook that failed on it must not be tried again.
   */
  private readonly plain = new WeakMap<SfuRoom, Set<string>>();

  constructor(
    private readonly cfg: Config['aic'],
    private readonly arm: (roomName: string) => Arm,
    private readonly switcher: ConsumerSwitch,
    private readonly parser: BatchParser,
    private readonly metrics: HookMetrics,
    private readonly log: Logger,
  ) {}

  producerCreated(room: Room, sfuRoom: SfuRoom, producer: types.Producer, source: string): void {
    if (this.applies(room, producer.kind)) this.start(room, sfuRoom, producer, source);
  }

  private applies(room: Room, kind: types.MediaKind): boolean {
    return this.cfg.hooks.length > 0 && this.arm(room.name) === 'aic' && hooksApply(this.cfg.hooks, kind);
  }

  private start(room: Room, sfuRoom: SfuRoom, producer: types.Producer, source: string): Entry {
    // Keyed by track: a piped-in track's re-routed copy has a mediasoup id of its own.
    const trackId = trackIdOf(producer);
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
        if (th.closed) {
          this.forget(trackId, e);
          return undefined;
        }
        th.on('fault', (f) => {
          const err = f.error instanceof Error ? f.error.message : f.error === undefined ? undefined : String(f.error);
          this.log.warn({ room: room.name, producerId: trackId, hook: f.hook, reason: f.reason, ms: Math.round(f.ms * 1000) / 1000, err, fallback: this.cfg.adaptive.fallback_enabled }, 'RTP hook failed');
          if (th.fellBack) void this.fallBack(room, sfuRoom, th, trackId);
        });
        th.once('closed', () => this.forget(trackId, e));
        return th;
      },
      (err: unknown) => {
        this.forget(trackId, e);
        if (!producer.closed) this.log.warn({ room: room.name, producerId: trackId, err: (err as Error).message }, 'RTP hook chain not started: the track is forwarded as it is');
        return undefined;
      },
    );
    const e: Entry = { ready, slots: new Map() };
    this.tracks.set(trackId, e);
    return e;
  }

  /** Drops a chain's entry unless a newer chain of the same id (a piped-in copy again) took its place. */
  private forget(producerId: string, e: Entry): void {
    if (this.tracks.get(producerId) === e) this.tracks.delete(producerId);
  }

  async route(room: Room, sfuRoom: SfuRoom, producerId: string, slot: RouterSlot): Promise<string> {
    let e = this.tracks.get(producerId);
    if (!e) {
      if (this.plain.get(sfuRoom)?.has(producerId)) return producerId;
      // Piped in from another node: hooks run on every node that forwards the track to
      // subscribers, each for its own (the pipe carries the original), started here by the
      // first of them, so a relay that only forwards it never runs a chain.
      const owner = sfuRoom.producers.get(producerId);
      if (!owner?.remote || owner.producer.closed || !this.applies(room, owner.producer.kind)) return producerId;
      e = this.start(room, sfuRoom, owner.producer, owner.source);
    }
    const th = await e.ready;
    if (!th || th.closed || th.fellBack) return producerId;
    if (slot === sfuRoom.main) return th.processed.id;
    // A subscriber on one of the room's other routers (over max_consumers_per_router): the
    // processed producer is piped to that router once (it goes when the processed one closes).
    let piped = e.slots.get(slot);
    if (!piped) {
      piped = sfuRoom.main.router.pipeToRouter({ producerId: th.processed.id, router: slot.router }).then(
        () => true,
        (err: Error) => {
          e.slots.delete(slot);
          this.log.warn({ room: room.name, producerId, err: err.message }, 'RTP hooks: the processed track could not reach another router; its subscribers there get the original');
          return false;
        },
      );
      e.slots.set(slot, piped);
    }
    return (await piped) && !th.closed && !th.fellBack ? th.processed.id : producerId;
  }

  private async fallBack(room: Room, sfuRoom: SfuRoom, th: TrackHooks, trackId: string): Promise<void> {
    let plain = this.plain.get(sfuRoom);
    if (!plain) this.plain.set(sfuRoom, (plain = new Set()));
    plain.add(trackId);
    const owner = sfuRoom.producers.get(trackId);
    // A track published here that goes is gone for good (its id is not used again).
    if (owner && !owner.remote) owner.producer.observer.once('close', () => plain.delete(trackId));
    try {
      let n = await this.switcher.switchAll(room, sfuRoom, th.processed.id, th.producerId, 'hookFallback');
      // A consume routed here just before the fault may have finished meanwhile.
      n += await this.switcher.switchAll(room, sfuRoom, th.processed.id, th.producerId, 'hookFallback');
      this.log.info({ room: room.name, producerId: trackId, switched: n }, 'RTP hooks: subscribers switched to the unprocessed track');
    } catch (err) {
      this.log.warn({ room: room.name, producerId: trackId, err: (err as Error).message }, 'RTP hooks: switching subscribers failed');
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
