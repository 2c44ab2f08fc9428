import type { types } from 'mediasoup';
import type { ViewerSettings } from '../aic/controller.js';
import type { Room } from '../rooms/room.js';
import type { PeerConsumer } from './peerConsumer.js';

/** A published video's source size, as its publisher reported it (0: unknown). */
export interface SourceSize {
  width: number;
  height: number;
}

/**
 * What a layer controller (AIC) is told about a room's media. The SFU calls it and never
 * depends on what implements it; without AIC it is NO_MEDIA_CONTROL.
 */
export interface MediaControl {
  transportCreated(room: Room, participantSid: string, transport: types.WebRtcTransport, consuming: boolean): void;
  producerCreated(room: Room, publisherSid: string, producer: types.Producer, source: string, size: SourceSize): void;
  consumerCreated(room: Room, subscriberSid: string, consumer: PeerConsumer): void;
  /** A viewer's report on how it shows one consumer (trackSettings). */
  trackSettings(room: Room, subscriberSid: string, consumer: PeerConsumer, settings: ViewerSettings): void;
  /**
   * Another node's demand for one of this node's producers (the cascade): the highest
   * spatial layer its subscribers need; undefined when it no longer takes the producer.
   */
  pipeDemand(room: Room, producerId: string, node: string, spatialLayer: number | undefined): void;
}

export const NO_MEDIA_CONTROL: MediaControl = {
  transportCreated: () => undefined,
  producerCreated: () => undefined,
  consumerCreated: () => undefined,
  trackSettings: () => undefined,
  pipeDemand: () => undefined,
};
