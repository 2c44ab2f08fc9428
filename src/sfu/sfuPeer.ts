import type { types } from 'mediasoup';
import type { RouterSlot } from './sfuRoom.js';

export interface PeerTransport {
  transport: types.WebRtcTransport | types.PlainTransport;
  slot: RouterSlot;
  producing: boolean;
  consuming: boolean;
  connected: boolean;
  plain: boolean;
}

export interface PeerProducer {
  producer: types.Producer;
  source: string;
}

/**
 * One participant's media objects. Transports own their producers and consumers (mediasoup
 * closes those with the transport), so close() closing the transports closes everything.
 */
export class SfuPeer {
  readonly transports = new Map<string, PeerTransport>();
  readonly producers = new Map<string, PeerProducer>();
  readonly consumers = new Map<string, { consumer: types.Consumer; slot: RouterSlot }>();
  readonly dataProducers = new Map<string, types.DataProducer>();
  readonly dataConsumers = new Map<string, types.DataConsumer>();
  /** Producers the server API unsubscribed this participant from (UpdateSubscriptions). */
  readonly blocked = new Set<string>();
  closed = false;

  constructor(
    readonly sid: string,
    readonly identity: string,
  ) {}

  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const t of this.transports.values()) t.transport.close();
    this.transports.clear();
    this.producers.clear();
    this.consumers.clear();
    this.dataProducers.clear();
    this.dataConsumers.clear();
  }
}
