import { EventEmitter } from 'node:events';
import type { types } from 'mediasoup';
import { SignalError } from '../signal/errors.js';
import type { PeerConsumer } from './peerConsumer.js';
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

export interface SfuPeerEvents {
  producerClosed: [PeerProducer];
  consumerClosed: [PeerConsumer];
}

/**
 * One participant's media objects, as mediasoup's own entities: the peer keeps what it
 * creates until it closes, forgets each object when that closes, and says so. Transports own
 * their producers and consumers (mediasoup closes those with the transport), so close()
 * closing the transports closes everything.
 */
export class SfuPeer extends EventEmitter<SfuPeerEvents> {
  private readonly transports = new Map<string, PeerTransport>();
  readonly producers = new Map<string, PeerProducer>();
  readonly consumers = new Map<string, PeerConsumer>();
  readonly dataProducers = new Map<string, types.DataProducer>();
  private readonly dataConsumers = new Map<string, types.DataConsumer>();
  /** Producers the server API unsubscribed this participant from (UpdateSubscriptions). */
  readonly blocked = new Set<string>();
  closed = false;

  constructor(
    readonly sid: string,
    readonly identity: string,
  ) {
    super();
  }

  addTransport(t: PeerTransport): void {
    this.transports.set(t.transport.id, t);
    // WebRtc and Plain transports' observers differ in their event maps, not in 'close'.
    const observer = t.transport.observer as unknown as { once(e: 'close', f: () => void): void };
    observer.once('close', () => this.transports.delete(t.transport.id));
  }

  addProducer(producer: types.Producer, source: string): PeerProducer {
    const entry = { producer, source };
    this.producers.set(producer.id, entry);
    producer.observer.once('close', () => {
      this.producers.delete(producer.id);
      this.emit('producerClosed', entry);
    });
    return entry;
  }

  addConsumer(c: PeerConsumer): void {
    this.consumers.set(c.id, c);
    c.once('closed', () => {
      this.consumers.delete(c.id);
      this.emit('consumerClosed', c);
    });
  }

  addDataProducer(dp: types.DataProducer): void {
    this.dataProducers.set(dp.id, dp);
    dp.observer.once('close', () => this.dataProducers.delete(dp.id));
  }

  addDataConsumer(dc: types.DataConsumer): void {
    this.dataConsumers.set(dc.id, dc);
    dc.observer.once('close', () => this.dataConsumers.delete(dc.id));
  }

  transport(id: string, field: string): PeerTransport {
    const t = this.transports.get(id);
    if (!t) throw new SignalError('NOT_FOUND', `no transport ${id} of yours`, field);
    return t;
  }

  producer(id: string, field: string): types.Producer {
    const p = this.producers.get(id);
    if (!p) throw new SignalError('NOT_FOUND', `no producer ${id} of yours`, field);
    return p.producer;
  }

  consumer(id: string, field: string): PeerConsumer {
    const c = this.consumers.get(id);
    if (!c) throw new SignalError('NOT_FOUND', `no consumer ${id} of yours`, field);
    return c;
  }

  /** A transport, producer or consumer of this peer, by id, for getStats. */
  statsSource(id: string): { getStats(): Promise<unknown> } | undefined {
    return this.transports.get(id)?.transport ?? this.producers.get(id)?.producer ?? this.consumers.get(id);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const t of [...this.transports.values()]) t.transport.close();
    this.transports.clear();
    this.producers.clear();
    this.consumers.clear();
    this.dataProducers.clear();
    this.dataConsumers.clear();
    this.removeAllListeners();
  }
}

