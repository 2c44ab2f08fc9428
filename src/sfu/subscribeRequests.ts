import type { types } from 'mediasoup';
import type { Participant } from '../rooms/participant.js';
import type { Room } from '../rooms/room.js';
import { SignalError } from '../signal/errors.js';
import type { ConsumerInfo, DataConsumerInfo } from '../signal/messages.js';
import type { ValidBody } from '../signal/rpc.js';
import { consumerInfo } from './consumerSwitch.js';
import type { MediaControl } from './mediaControl.js';
import type { RemoteProducers } from './remoteProducers.js';
import { media } from './mediaErrors.js';
import { PeerConsumer } from './peerConsumer.js';
import { NO_PRODUCER_HOOKS, type ProducerHooks } from './producerHooks.js';
import type { SfuNotifier } from './sfuNotifier.js';
import type { SfuService } from './sfuService.js';

/** Subscribing: consumers (created paused), their controls, and data consumers. */
export class SubscribeRequests {
  constructor(
    private readonly sfu: SfuService,
    private readonly notifier: SfuNotifier,
    private readonly control: MediaControl,
    private readonly remote: RemoteProducers,
    private readonly hooks: ProducerHooks = NO_PRODUCER_HOOKS,
  ) {}

  async consume(room: Room, p: Participant, body: ValidBody<'consume'>, attempt = 0): Promise<{ consumer: ConsumerInfo }> {
    if (!p.permission.canSubscribe) throw new SignalError('PERMISSION_DENIED', 'token lacks canSubscribe', 'consume');
    const sfuRoom = this.sfu.rooms.get(room.name);
    // Published on another node: piped here first (once per node, whoever asks).
    if (sfuRoom && !sfuRoom.producers.has(body.producerId)) await this.remote.fetch(room, sfuRoom, body.producerId);
    const owner = sfuRoom?.producers.get(body.producerId);
    if (!sfuRoom || !owner) throw new SignalError('NOT_FOUND', `no producer ${body.producerId} in the room`, 'consume.producerId');
    if (owner.peer.sid === p.sid) throw new SignalError('INVALID_FIELD', 'cannot consume your own producer', 'consume.producerId');
    if (sfuRoom.peers.get(p.sid)?.blocked.has(body.producerId)) {
      throw new SignalError('PERMISSION_DENIED', 'unsubscribed from this track by the server', 'consume.producerId');
    }
    const t = this.sfu.ownPeer(room, p).transport(body.transportId, 'consume.transportId');
    if (!t.consuming) throw new SignalError('INVALID_FIELD', 'not a consuming transport', 'consume.transportId');
    const rtpCapabilities = body.rtpCapabilities as unknown as types.RtpCapabilities;
    // The producer carrying the track here (a re-routed copy has an id of its own).
    const carrier = owner.producer.id;
    if (!t.slot.router.canConsume({ producerId: carrier, rtpCapabilities })) {
      throw new SignalError('INVALID_FIELD', 'these rtpCapabilities cannot receive that producer', 'consume.rtpCapabilities');
    }
    // Server-side paused: the client resumes once its consumer is set up, so no keyframe is
    // lost in between. A track with a hook chain is consumed through its processed producer;
    // if that closed meanwhile (the chain fell back), the original is consumed.
    const make = (producerId: string) => t.transport.consume({ producerId, rtpCapabilities, paused: true, appData: { participantSid: p.sid } });
    const routed = await this.hooks.route(room, sfuRoom, body.producerId, t.slot);
    const target = routed === body.producerId ? carrier : routed;
    const consumer = await media('consume', () => (target === carrier ? make(target) : make(target).catch(() => make(carrier))));
    // A track from another node re-routed while this consume was on its way (its consumers
    // were moved, the old copy retired): consume the copy carrying it now; nothing was told yet.
    const now = sfuRoom.producers.get(body.producerId);
    if (owner.remote && attempt < 2 && now && now.producer !== owner.producer) {
      consumer.close();
      return this.consume(room, p, body, attempt + 1);
    }
    const peer = this.sfu.keep(room, p, consumer);
    if (owner.remote) this.remote.consumed(room, body.producerId, consumer);
    const track = { producerId: body.producerId, participantSid: owner.peer.sid, participantIdentity: owner.peer.identity, source: owner.source };
    const pc = new PeerConsumer(consumer, t.slot, track, { transport: t.transport, plain: t.plain, rtpCapabilities });
    peer.addConsumer(pc);
    this.notifier.watchConsumer(room, p.sid, pc);
    this.control.consumerCreated(room, p.sid, pc);
    return { consumer: consumerInfo(pc) };
  }

  private own(room: Room, p: Participant, id: string, kind: string): PeerConsumer {
    return this.sfu.ownPeer(room, p).consumer(id, `${kind}.consumerId`);
  }

  async pause(room: Room, p: Participant, consumerId: string, paused: boolean): Promise<void> {
    const c = this.own(room, p, consumerId, paused ? 'pauseConsumer' : 'resumeConsumer');
    await media(paused ? 'pauseConsumer' : 'resumeConsumer', () => (paused ? c.pause() : c.resume()));
  }

  close(room: Room, p: Participant, consumerId: string): void {
    this.own(room, p, consumerId, 'closeConsumer').close();
  }

  async setPreferredLayers(room: Room, p: Participant, body: ValidBody<'setPreferredLayers'>): Promise<void> {
    const c = this.own(room, p, body.consumerId, 'setPreferredLayers');
    const layers: types.ConsumerLayers = { spatialLayer: body.spatialLayer };
    if (body.temporalLayer !== undefined) layers.temporalLayer = body.temporalLayer;
    await media('setPreferredLayers', () => c.setPreferredLayers(layers));
  }

  async setPriority(room: Room, p: Participant, body: ValidBody<'setPriority'>): Promise<void> {
    const c = this.own(room, p, body.consumerId, 'setPriority');
    await media('setPriority', () => c.setPriority(body.priority));
  }

  /** How the viewer shows a consumer (by its id, or the producer it consumes): for the layer controller. */
  trackSettings(room: Room, p: Participant, body: ValidBody<'trackSettings'>): void {
    const peer = this.sfu.ownPeer(room, p);
    let c: PeerConsumer | undefined;
    if (body.consumerId) c = peer.consumer(body.consumerId, 'trackSettings.consumerId');
    else for (const x of peer.consumers.values()) if (x.producerId === body.producerId) c = x;
    if (!c) throw new SignalError('NOT_FOUND', `no consumer of producer ${body.producerId} of yours`, 'trackSettings.producerId');
    if (c.kind !== 'video') throw new SignalError('INVALID_FIELD', 'trackSettings is for video consumers', 'trackSettings');
    this.control.trackSettings(room, p.sid, c, { width: body.width, height: body.height, hidden: body.hidden, fps: body.fps });
  }

  async consumeData(room: Room, p: Participant, body: ValidBody<'consumeData'>): Promise<{ dataConsumer: DataConsumerInfo }> {
    if (!p.permission.canSubscribe) throw new SignalError('PERMISSION_DENIED', 'token lacks canSubscribe', 'consumeData');
    const sfuRoom = this.sfu.rooms.get(room.name);
    const find = (): types.DataProducer | undefined => {
      for (const peer of sfuRoom?.peers.values() ?? []) {
        const dp = peer.dataProducers.get(body.dataProducerId);
        if (dp) return dp;
      }
      return sfuRoom?.remoteData.get(body.dataProducerId)?.dataProducer;
    };
    let dp = find();
    // Published on another node: piped here first (once per node, whoever asks).
    if (sfuRoom && !dp && (await this.remote.fetchData(room, sfuRoom, body.dataProducerId))) dp = find();
    if (!sfuRoom || !dp) throw new SignalError('NOT_FOUND', `no data producer ${body.dataProducerId}`, 'consumeData.dataProducerId');
    const t = this.sfu.ownPeer(room, p).transport(body.transportId, 'consumeData.transportId');
    if (!t.consuming) throw new SignalError('INVALID_FIELD', 'not a consuming transport', 'consumeData.transportId');
    const dataProducerId = dp.id;
    if (t.slot !== sfuRoom.main) {
      await sfuRoom.main.router.pipeToRouter({ dataProducerId, router: t.slot.router }).catch(() => undefined);
    }
    const dc = await media('consumeData', () => t.transport.consumeData({ dataProducerId }));
    this.sfu.keep(room, p, dc).addDataConsumer(dc);
    if (sfuRoom.remoteData.has(dataProducerId)) this.remote.dataConsumed(room, dataProducerId, dc);
    return {
      dataConsumer: {
        id: dc.id,
        dataProducerId,
        sctpStreamParameters: JSON.stringify(dc.sctpStreamParameters ?? {}),
        label: dc.label,
        protocol: dc.protocol,
      },
    };
  }
}
