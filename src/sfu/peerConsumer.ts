import { EventEmitter } from 'node:events';
import type { types } from 'mediasoup';
import type { RouterSlot } from './sfuRoom.js';

/** Whose track a consumer receives. */
export interface ConsumedTrack {
  producerId: string;
  participantSid: string;
  participantIdentity: string;
  source: string;
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
  constructor(
    readonly consumer: types.Consumer,
    readonly slot: RouterSlot,
    readonly track: ConsumedTrack,
  ) {
    super();
    slot.consumers++;
    slot.worker.consumers++;
    consumer.on('producerclose', () => this.emit('producerClosed'));
    consumer.on('producerpause', () => this.emit('producerPaused'));
    consumer.on('producerresume', () => this.emit('producerResumed'));
    consumer.on('layerschange', (l) => this.emit('layers', l));
    consumer.on('score', (s) => this.emit('score', s));
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

  get producerId(): string {
    return this.consumer.producerId;
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

  pause(): Promise<void> {
    return this.consumer.pause();
  }

  resume(): Promise<void> {
    return this.consumer.resume();
  }

  getStats(): Promise<unknown[]> {
    return this.consumer.getStats();
  }

  close(): void {
    this.consumer.close();
  }
}
