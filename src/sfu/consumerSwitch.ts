import type { Room } from '../rooms/room.js';
import type { ConsumerInfo } from '../signal/messages.js';
import type { MediaControl } from './mediaControl.js';
import { PeerConsumer } from './peerConsumer.js';
import type { RemoteProducers } from './remoteProducers.js';
import type { SfuNotifier } from './sfuNotifier.js';
import type { SfuPeer } from './sfuPeer.js';
import type { SfuRoom } from './sfuRoom.js';

/** What a subscriber is told about one consumer (consume's answer, consumerSwitched). */
export function consumerInfo(pc: PeerConsumer): ConsumerInfo {
  const c = pc.consumer;
  return {
    id: c.id,
    producerId: pc.track.producerId,
    kind: c.kind,
    rtpParameters: JSON.stringify(c.rtpParameters),
    participantSid: pc.track.participantSid,
    participantIdentity: pc.track.participantIdentity,
    source: pc.track.source,
    producerPaused: c.producerPaused,
    type: c.type,
  };
}

/**
 * Moves every consumer of one producer to another producer of the same track (a hook
 * chain's processed producer back to the original, when the chain fails; a piped-in track's
 * old copy to the one over its new path, on a re-route): a new consumer on
 * the same transport, the subscriber told with `consumerSwitched` (the SDK swaps the track
 * itself), then the old consumer closed. Subscribers keep media: a plain-RTP one at once
 * (its new consumer starts as the old one was), a WebRTC one once its SDK has wired the new
 * consumer and resumed it.
 */
export class ConsumerSwitch {
  constructor(
    private readonly notifier: SfuNotifier,
    private readonly control: MediaControl,
    private readonly remote: RemoteProducers,
  ) {}

  async switchAll(room: Room, sfuRoom: SfuRoom, fromProducerId: string, toProducerId: string, reason: string): Promise<number> {
    return this.switchWhere(room, sfuRoom, (c) => c.consumer.producerId === fromProducerId, toProducerId, reason);
  }

  /**
   * Every consumer of a track that does not consume `toProducerId` yet (the old copy of a
   * re-routed track, or a hook chain's processed producer of it) moves to `toProducerId`.
   */
  async switchTrack(room: Room, sfuRoom: SfuRoom, trackId: string, toProducerId: string, reason: string): Promise<number> {
    // Only to the producer carrying the track now: a move to one already replaced would undo a newer one.
    if (sfuRoom.producers.get(trackId)?.producer.id !== toProducerId) return 0;
    return this.switchWhere(room, sfuRoom, (c) => c.track.producerId === trackId && c.consumer.producerId !== toProducerId, toProducerId, reason);
  }

  private async switchWhere(room: Room, sfuRoom: SfuRoom, which: (c: PeerConsumer) => boolean, toProducerId: string, reason: string): Promise<number> {
    const moves: Promise<boolean>[] = [];
    for (const peer of sfuRoom.peers.values()) {
      for (const c of [...peer.consumers.values()]) if (which(c)) moves.push(this.switchOne(room, sfuRoom, peer, c, toProducerId, reason));
    }
    return (await Promise.all(moves)).filter(Boolean).length;
  }

  private async switchOne(room: Room, sfuRoom: SfuRoom, peer: SfuPeer, old: PeerConsumer, toProducerId: string, reason: string): Promise<boolean> {
    const via = old.via;
    if (!via || via.transport.closed) return false;
    let consumer;
    try {
      consumer = await via.transport.consume({
        producerId: toProducerId,
        rtpCapabilities: via.rtpCapabilities,
        // A WebRTC subscriber resumes it once its SDK has set it up (so the key frame it
        // asks for is not lost); a plain-RTP one has nothing to set up.
        paused: old.pausedByClient || !via.plain,
        // Started at the layers the old one was set to, not the top: switching down a moment
        // later needs the publisher's sender reports, and a source that sends none (plain
        // RTP without RTCP) would leave the consumer stuck on the layer it started at.
        ...(old.consumer.preferredLayers ? { preferredLayers: old.consumer.preferredLayers } : {}),
        appData: { participantSid: peer.sid },
      });
    } catch {
      return false; // the transport or the producer closed meanwhile
    }
    if (peer.closed || old.closed) {
      consumer.close();
      return false;
    }
    // A track piped in from another node is kept here while it has consumers: the new one
    // counts before the old one goes.
    const carrier = sfuRoom.producers.get(old.track.producerId);
    if (carrier?.remote && carrier.producer.id === toProducerId) this.remote.consumed(room, old.track.producerId, consumer);
    const pc = new PeerConsumer(consumer, old.slot, old.track, via);
    peer.addConsumer(pc);
    this.notifier.watchConsumer(room, peer.sid, pc);
    this.control.consumerCreated(room, peer.sid, pc);
    this.notifier.consumerSwitched(room, peer.sid, old.id, consumerInfo(pc), reason);
    old.close();
    return true;
  }
}
