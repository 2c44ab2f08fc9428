import type { Delivery } from '../rooms/delivery.js';
import type { Participant } from '../rooms/participant.js';
import type { Room } from '../rooms/room.js';
import type { ConsumerInfo, ProducerInfo } from '../signal/messages.js';
import type { PeerConsumer } from './peerConsumer.js';
import type { SfuPeer } from './sfuPeer.js';
import type { SfuRoom } from './sfuRoom.js';

/**
 * What subscribers and publishers are told about media, all through the Delivery port: track
 * and consumer changes are reliable (replayed on resume), scores, active speaker and audio
 * levels lossy (the next one supersedes them; encoded once per encoding for the room).
 */
export class SfuNotifier {
  constructor(private readonly delivery: Delivery) {}

  /** Everyone in the room who may subscribe (on other nodes too: the cascade carries media), but `except`. */
  private subscribers(room: Room, exceptSid?: string, remoteToo = true): string[] {
    const out: string[] = [];
    for (const p of room.participants.values()) if (p.sid !== exceptSid && p.permission.canSubscribe) out.push(p.sid);
    if (remoteToo) for (const r of room.remote.values()) if (r.info.sid !== exceptSid && r.info.permission.canSubscribe) out.push(r.info.sid);
    return out;
  }

  private info(id: string, kind: string, paused: boolean, peer: SfuPeer, source: string): ProducerInfo {
    return { producerId: id, participantSid: peer.sid, participantIdentity: peer.identity, kind, source, paused };
  }

  producerAdded(room: Room, peer: SfuPeer, producer: { id: string; kind: string; paused: boolean }, source: string, toSid?: string): void {
    const sids = toSid ? [toSid] : this.subscribers(room, peer.sid);
    this.delivery.toParticipants(room, sids, { producerAdded: this.info(producer.id, producer.kind, producer.paused, peer, source) });
  }

  /** Told to subscribers on every node of the room (the cascade pipes it to theirs on consumeData). */
  dataProducerAdded(room: Room, peer: SfuPeer, id: string, toSid?: string): void {
    const sids = toSid ? [toSid] : this.subscribers(room, peer.sid);
    this.delivery.toParticipants(room, sids, { producerAdded: this.info(id, 'data', false, peer, 'data') });
  }

  producerRemoved(room: Room, peer: SfuPeer, producerId: string): void {
    this.delivery.toParticipants(room, this.subscribers(room, peer.sid), { producerRemoved: { producerId, participantSid: peer.sid } });
  }

  /**
   * A newcomer learns the producers already in the room, and who is speaking. Those piped in
   * from other nodes are told by their own node (it tells newcomers anywhere in the room).
   */
  existing(room: Room, sfuRoom: SfuRoom, p: Participant): void {
    if (!p.permission.canSubscribe) return;
    this.localProducersTo(room, sfuRoom, p.sid);
    const speakerId = sfuRoom.dominantProducerId;
    const speaker = speakerId ? sfuRoom.producers.get(speakerId) : undefined;
    if (speaker && speakerId) this.delivery.lossyTo(room, p.sid, { activeSpeaker: { participantSid: speaker.peer.sid, producerId: speakerId } });
  }

  /** This node's own producers, told to one subscriber (here or on another node). */
  localProducersTo(room: Room, sfuRoom: SfuRoom, sid: string): void {
    for (const { producer, peer, source, remote } of sfuRoom.producers.values()) if (!remote) this.producerAdded(room, peer, producer, source, sid);
    for (const peer of sfuRoom.peers.values()) {
      for (const dp of peer.dataProducers.values()) this.dataProducerAdded(room, peer, dp.id, sid);
    }
  }

  /** Relays a subscriber's consumer events to it. */
  watchConsumer(room: Room, subscriberSid: string, c: PeerConsumer): void {
    const to = [subscriberSid];
    const consumerId = c.id;
    c.on('producerClosed', () => this.delivery.toParticipants(room, to, { consumerClosed: { consumerId, reason: 'producerclose' } }));
    c.on('producerPaused', () => this.delivery.toParticipants(room, to, { consumerPaused: { consumerId, reason: 'producer' } }));
    c.on('producerResumed', () => this.delivery.toParticipants(room, to, { consumerResumed: { consumerId, reason: 'producer' } }));
    c.on('layers', (l) =>
      this.delivery.lossyTo(room, subscriberSid, { layersChanged: { consumerId, spatialLayer: l?.spatialLayer ?? -1, temporalLayer: l?.temporalLayer ?? -1 } }),
    );
    c.on('score', (s) => this.delivery.lossyTo(room, subscriberSid, { score: { id: consumerId, score: s.score, producerScore: s.producerScore } }));
  }

  /** The server closed a subscriber's consumer (not its producer): tell the subscriber why. */
  consumerClosed(room: Room, subscriberSid: string, consumerId: string, reason: string): void {
    this.delivery.toParticipants(room, [subscriberSid], { consumerClosed: { consumerId, reason } });
  }

  /**
   * The server replaced a subscriber's consumer with one of another producer of the same
   * track (a hook chain fell back): set up `consumer` in place of `consumerId`. Reliable.
   */
  consumerSwitched(room: Room, subscriberSid: string, consumerId: string, consumer: ConsumerInfo, reason: string): void {
    this.delivery.toParticipants(room, [subscriberSid], { consumerSwitched: { consumerId, consumer, reason } });
  }

  producerScore(room: Room, publisherSid: string, producerId: string, score: number): void {
    this.delivery.lossyTo(room, publisherSid, { score: { id: producerId, score } });
  }

  trackMuted(room: Room, publisherSid: string, producerId: string, muted: boolean): void {
    this.delivery.toParticipants(room, [publisherSid], { trackMuted: { producerId, muted } });
  }

  /** AIC dynacast: the highest layer of a producer any subscriber needs (-1: none). Reliable: it is state. */
  layersWanted(room: Room, publisherSid: string, producerId: string, maxSpatialLayer: number): void {
    this.delivery.toParticipants(room, [publisherSid], { layersWanted: { producerId, maxSpatialLayer } });
  }

  activeSpeaker(room: Room, sfuRoom: SfuRoom, producerId: string): void {
    const owner = sfuRoom.producers.get(producerId);
    if (owner) this.delivery.lossyToRoom(room, { activeSpeaker: { participantSid: owner.peer.sid, producerId } });
  }

  audioLevels(room: Room, sfuRoom: SfuRoom, levels: { producerId: string; volume: number }[]): void {
    const out = levels.flatMap((l) => {
      const owner = sfuRoom.producers.get(l.producerId);
      return owner ? [{ participantSid: owner.peer.sid, producerId: l.producerId, volume: Math.round(l.volume) }] : [];
    });
    this.delivery.lossyToRoom(room, { audioLevels: { levels: out } });
  }

  /** The room's media is gone (worker death): everyone rebuilds theirs. */
  mediaReset(room: Room, reason: string): void {
    this.delivery.toParticipants(room, [...room.participants.values()].map((p) => p.sid), { mediaReset: { reason } });
  }
}
