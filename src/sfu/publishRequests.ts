import type { types } from 'mediasoup';
import type { Participant } from '../rooms/participant.js';
import type { Room } from '../rooms/room.js';
import type { RoomManager } from '../rooms/roomManager.js';
import { SignalError } from '../signal/errors.js';
import type { ValidBody } from '../signal/rpc.js';
import type { MediaControl } from './mediaControl.js';
import { media } from './mediaErrors.js';
import { NO_PRODUCER_HOOKS, type ProducerHooks } from './producerHooks.js';
import type { SfuNotifier } from './sfuNotifier.js';
import type { SfuService } from './sfuService.js';

const DEFAULT_SOURCE: ReadonlyMap<string, string> = new Map([
  ['audio', 'microphone'],
  ['video', 'camera'],
]);

/** Publishing: producers (with the grants that allow them) and data producers. */
export class PublishRequests {
  constructor(
    private readonly sfu: SfuService,
    private readonly manager: RoomManager,
    private readonly notifier: SfuNotifier,
    private readonly control: MediaControl,
    private readonly hooks: ProducerHooks = NO_PRODUCER_HOOKS,
  ) {}

  async produce(room: Room, p: Participant, body: ValidBody<'produce'>): Promise<{ id: string }> {
    if (!p.permission.canPublish) throw new SignalError('PERMISSION_DENIED', 'token lacks canPublish', 'produce');
    const source = body.source ?? DEFAULT_SOURCE.get(body.kind) ?? 'camera';
    const allowed = p.permission.canPublishSources;
    if (allowed.length > 0 && !allowed.includes(source)) {
      throw new SignalError('PERMISSION_DENIED', `token does not allow publishing ${source}`, 'produce.source');
    }
    const t = this.sfu.ownPeer(room, p).transport(body.transportId, 'produce.transportId');
    if (!t.producing) throw new SignalError('INVALID_FIELD', 'not a producing transport', 'produce.transportId');
    const producer = await media('produce.rtpParameters', () =>
      t.transport.produce({
        kind: body.kind,
        rtpParameters: body.rtpParameters as unknown as types.RtpParameters,
        paused: !!body.paused,
        appData: { source },
      }),
    );
    const peer = this.sfu.keep(room, p, producer);
    const sfuRoom = this.sfu.rooms.get(room.name);
    if (!sfuRoom) throw new SignalError('NOT_FOUND', 'the room has no media any more', '');
    peer.addProducer(producer, source);
    producer.on('score', (scores) => {
      const best = scores.reduce((m, s) => Math.max(m, s.score), 0);
      this.notifier.producerScore(room, p.sid, producer.id, best);
    });
    await sfuRoom.addProducer(producer, peer, source);
    if (producer.closed) return { id: producer.id };
    this.control.producerCreated(room, p.sid, producer, source, { width: body.width, height: body.height });
    this.hooks.producerCreated(room, sfuRoom, producer, source);
    this.notifier.producerAdded(room, peer, producer, source);
    this.manager.trackPublished(room, p, {
      producerId: producer.id,
      kind: producer.kind,
      source,
      paused: producer.paused,
      mimeType: producer.rtpParameters.codecs[0]?.mimeType ?? '',
    });
    return { id: producer.id };
  }

  close(room: Room, p: Participant, producerId: string): void {
    this.sfu.ownPeer(room, p).producer(producerId, 'closeProducer.producerId').close();
  }

  async pause(room: Room, p: Participant, producerId: string, paused: boolean): Promise<void> {
    const field = paused ? 'pauseProducer.producerId' : 'resumeProducer.producerId';
    const producer = this.sfu.ownPeer(room, p).producer(producerId, field);
    if (paused) await producer.pause();
    else await producer.resume();
    this.manager.trackPaused(room, p, producerId, paused);
  }

  async produceData(room: Room, p: Participant, body: ValidBody<'produceData'>): Promise<{ id: string }> {
    if (!p.permission.canPublishData) throw new SignalError('PERMISSION_DENIED', 'token lacks canPublishData', 'produceData');
    const t = this.sfu.ownPeer(room, p).transport(body.transportId, 'produceData.transportId');
    if (!t.producing) throw new SignalError('INVALID_FIELD', 'not a producing transport', 'produceData.transportId');
    const dp = await media('produceData.sctpStreamParameters', () =>
      t.transport.produceData({
        sctpStreamParameters: body.sctpStreamParameters as unknown as types.SctpStreamParameters,
        label: body.label ?? '',
        protocol: body.protocol ?? '',
      }),
    );
    const peer = this.sfu.keep(room, p, dp);
    peer.addDataProducer(dp);
    this.notifier.dataProducerAdded(room, peer, dp.id);
    return { id: dp.id };
  }
}
