import { EventEmitter } from 'node:events';
import type { types } from 'mediasoup';
import type { PeerTransport } from './sfuPeer.js';
import type { RouterSlot } from './sfuRoom.js';

/** Whose track a consumer receives. */
export interface ConsumedTrack {
  producerId: string;
  participantSid: string;
  participantIdentity: string;
  source: string;
}

/** Where a consumer was made, to make another one there (a switch to another producer). */
export interface ConsumerOrigin {
  transport: PeerTransport['transport'];
  plain: boolean;
  rtpCapabilities: types.RtpCapabilities;
}

export interface PeerConsumerEvents {
  /** The producer closed: the consumer is closed with it. */
  producerClosed: [];
  producerPaused: [];
  producerResumed: [];
  /** Layers being forwarded changed (undefined: none, e.g. no bandwidth or paused). */
  layers: [types.ConsumerLayers | undefined];
  score: [types.ConsumerScore];
  closed: [];
}

/**
 * One subscriber's consumer of one track. Its events are the only view of the consumer the
 * rest of the node has, and every layer, priority and pause decision goes through here: the
 * one place a layer controller can sit between a subscriber and what it receives.
 */
export class PeerConsumer extends EventEmitter<PeerConsumerEvents> {
  /** The layers mediasoup forwards now (from 'layerschange'; undefined: none). */
  currentLayers: types.ConsumerLayers | undefined;
  /** mediasoup's last consumer score (0..10), if any came. */
  score: number | undefined;
  // Paused is the union of two wishes: the subscriber's own (pause/resumeConsumer; consumers
  // start paused until the client resumes) and the layer controller's (a hidden tile), so
  // neither can resume what the other paused.
  private clientPaused: boolean;
  private controlPaused = false;
  private appliedPaused: boolean;

  constructor(
    readonly consumer: types.Consumer,
    readonly slot: RouterSlot,
    readonly track: ConsumedTrack,
    /** Absent for consumers made elsewhere than a subscriber's consume (nothing to switch). */
    readonly via?: ConsumerOrigin,
  ) {
    super();
    this.clientPaused = consumer.paused;
    this.appliedPaused = consumer.paused;
    slot.consumers++;
    slot.worker.consumers++;
    consumer.on('producerclose', () => this.emit('producerClosed'));
    consumer.on('producerpause', () => this.emit('producerPaused'));
    consumer.on('producerresume', () => this.emit('producerResumed'));
    consumer.on('layerschange', (l) => {
      this.currentLayers = l;
      this.emit('layers', l);
    });
    consumer.on('score', (s) => {
      this.score = s.score;
      this.emit('score', s);
    });
    consumer.observer.once('close', () => {
      slot.consumers--;
      slot.worker.consumers--;
      this.emit('closed');
      this.removeAllListeners();
    });
  }

  get id(): string {
    return this.consumer.id;
  }

  /**
   * The producer the subscriber asked for. The consumer itself may consume another producer
   * of the same track (a hook chain's processed producer, src/aic/hooks/).
   */
  get producerId(): string {
    return this.track.producerId;
  }

  get closed(): boolean {
    return this.consumer.closed;
  }

  setPreferredLayers(layers: types.ConsumerLayers): Promise<void> {
    return this.consumer.setPreferredLayers(layers);
  }

  setPriority(priority: number): Promise<void> {
    return this.consumer.setPriority(priority);
  }

  get kind(): types.MediaKind {
    return this.consumer.kind;
  }

  /** Paused by the subscriber (pauseConsumer) or by the layer controller. */
  get paused(): boolean {
    return this.appliedPaused;
  }

  /** Paused by the subscriber itself (consumers start so until the client resumes them). */
  get pausedByClient(): boolean {
    return this.clientPaused;
  }

  /** The subscriber's pause (pauseConsumer). */
  pause(): Promise<void> {
    this.clientPaused = true;
    return this.applyPaused();
  }

  /** The subscriber's resume (resumeConsumer): media flows unless the controller holds it paused. */
  resume(): Promise<void> {
    this.clientPaused = false;
    return this.applyPaused();
  }

  /** The layer controller's pause (e.g. the tile is hidden). */
  setControlPaused(paused: boolean): Promise<void> {
    this.controlPaused = paused;
    return this.applyPaused();
  }

  private async applyPaused(): Promise<void> {
    const want = this.clientPaused || this.controlPaused;
    if (want === this.appliedPaused || this.consumer.closed) return;
    this.appliedPaused = want;
    if (want) await this.consumer.pause();
    else await this.consumer.resume();
  }

  getStats(): Promise<unknown[]> {
    return this.consumer.getStats();
  }

  close(): void {
    this.consumer.close();
  }
}
