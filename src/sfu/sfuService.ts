import { EventEmitter } from 'node:events';
import type { types } from 'mediasoup';
import { Gauge, type Registry } from 'prom-client';
import type { Logger } from 'pino';
import type { Participant } from '../rooms/participant.js';
import type { Room } from '../rooms/room.js';
import type { RoomManager } from '../rooms/roomManager.js';
import { SignalError } from '../signal/errors.js';
import type { ConsumerInfo, ProducerInfo, Response, ServerMessage } from '../signal/messages.js';
import type { ValidRequest } from '../signal/schema.js';
import { SfuPeer, type PeerTransport } from './sfuPeer.js';
import { SfuRoom, type SfuRoomOptions } from './sfuRoom.js';
import type { WorkerPool, WorkerSlot } from './workerPool.js';

type Req<K extends ValidRequest['kind']> = Extract<ValidRequest, { kind: K }>['body'];

export interface TrackSummary {
  producerId: string;
  kind: string;
  source: string;
  paused: boolean;
  mimeType: string;
}

export interface SfuEvents {
  trackPublished: [Room, Participant, TrackSummary];
  trackUnpublished: [Room, Participant, TrackSummary];
}
type Result = Omit<Response, 'requestId'>;

export interface SfuServiceOptions extends SfuRoomOptions {
  initialAvailableOutgoingBitrate: number;
  allowPlainTransports: boolean;
  listenIp: string;
  announcedIp: string;
}

const DEFAULT_SOURCE: Record<string, string> = { audio: 'microphone', video: 'camera' };

// The worker's refusal of a request names the method ("... [method:transport.produce]"):
// given the client's parameters (an ssrc or RID already in use, say), it is the client's error.
const WORKER_REFUSAL = /\[method:[\w.]+\]$/;

/** mediasoup's argument errors become typed client errors; anything else is ours (INTERNAL). */
async function media<T>(field: string, op: () => Promise<T>): Promise<T> {
  try {
    return await op();
  } catch (err) {
    const name = (err as Error).name;
    if (err instanceof TypeError || name === 'UnsupportedError' || name === 'InvalidStateError' || WORKER_REFUSAL.test((err as Error).message)) {
      throw new SignalError('INVALID_FIELD', `${field}: ${(err as Error).message}`, field);
    }
    throw err;
  }
}

/**
 * The SFU behind the signalling protocol: a SfuRoom per room (created on the first media
 * request), a SfuPeer per participant, permission checks from the token's grants, and the
 * events subscribers need. Participants leaving, rooms closing and workers dying all end in
 * SfuPeer.close() / SfuRoom.close(), which close the mediasoup objects below them.
 */
export class SfuService extends EventEmitter<SfuEvents> {
  readonly rooms = new Map<string, SfuRoom>(); // by room name
  private capsJson = '';
  private readonly creating = new Map<string, Promise<SfuRoom>>();

  constructor(
    private readonly pool: WorkerPool,
    private readonly manager: RoomManager,
    private readonly opts: SfuServiceOptions,
    private readonly log: Logger,
  ) {
    super();
    manager.on('participantJoined', (room, p) => this.announceExisting(room, p));
    manager.on('participantLeft', (room, p) => this.closePeer(room, p));
    manager.on('roomFinished', (room) => this.closeRoom(room.name));
    pool.on('workerDied', (dead) => this.onWorkerDied(dead));
  }

  // ---------- lifecycle ----------

  private async ensureRoom(room: Room): Promise<SfuRoom> {
    const existing = this.rooms.get(room.name);
    if (existing) return existing;
    let p = this.creating.get(room.name);
    if (!p) {
      p = SfuRoom.create(
        room.name,
        room.sid,
        this.pool,
        this.opts,
        {
          activeSpeaker: (producerId) => this.onActiveSpeaker(room, producerId),
          audioLevels: (levels) => this.onAudioLevels(room, levels),
        },
        this.log,
      );
      this.creating.set(room.name, p);
    }
    try {
      const sfuRoom = await p;
      if (room.closed) {
        sfuRoom.close();
        throw new SignalError('NOT_FOUND', 'the room was closed', '');
      }
      this.rooms.set(room.name, sfuRoom);
      return sfuRoom;
    } finally {
      this.creating.delete(room.name);
    }
  }

  private closePeer(room: Room, p: Participant): void {
    const sfuRoom = this.rooms.get(room.name);
    const peer = sfuRoom?.peers.get(p.sid);
    if (!sfuRoom || !peer) return;
    sfuRoom.peers.delete(p.sid);
    peer.close();
  }

  private closeRoom(name: string): void {
    const sfuRoom = this.rooms.get(name);
    if (!sfuRoom) return;
    this.rooms.delete(name);
    sfuRoom.close();
  }

  /** Rooms on the dead worker lose all media; their participants are told to rebuild it. */
  private onWorkerDied(dead: WorkerSlot): void {
    for (const [name, sfuRoom] of [...this.rooms]) {
      if (!sfuRoom.usesWorker(dead)) continue;
      this.closeRoom(name);
      const room = this.manager.rooms.get(name);
      if (room) this.manager.sendTo(room, { mediaReset: { reason: 'media server restarted' } }, [...room.participants.values()]);
    }
  }

  async close(): Promise<void> {
    for (const name of [...this.rooms.keys()]) this.closeRoom(name);
  }

  // ---------- events to clients ----------

  private subscribers(room: Room, except?: Participant): Participant[] {
    const out: Participant[] = [];
    for (const p of room.participants.values()) if (p !== except && p.permission.canSubscribe) out.push(p);
    return out;
  }

  private producerInfo(producer: { id: string; kind: string; paused: boolean }, peer: SfuPeer, source: string): ProducerInfo {
    return {
      producerId: producer.id,
      participantSid: peer.sid,
      participantIdentity: peer.identity,
      kind: producer.kind,
      source,
      paused: producer.paused,
    };
  }

  /** A newcomer learns the producers already in the room. */
  private announceExisting(room: Room, p: Participant): void {
    const sfuRoom = this.rooms.get(room.name);
    if (!sfuRoom || !p.permission.canSubscribe) return;
    for (const { producer, peer, source } of sfuRoom.producers.values()) {
      this.manager.sendTo(room, { producerAdded: this.producerInfo(producer, peer, source) }, [p]);
    }
    const speaker = sfuRoom.dominantProducerId ? sfuRoom.producers.get(sfuRoom.dominantProducerId) : undefined;
    if (speaker) p.conn?.send({ activeSpeaker: { participantSid: speaker.peer.sid, producerId: speaker.producer.id } });
    for (const peer of sfuRoom.peers.values()) {
      for (const dp of peer.dataProducers.values()) {
        this.manager.sendTo(room, { producerAdded: this.producerInfo({ id: dp.id, kind: 'data', paused: false }, peer, 'data') }, [p]);
      }
    }
  }

  private onActiveSpeaker(room: Room, producerId: string): void {
    const owner = this.rooms.get(room.name)?.producers.get(producerId);
    if (!owner) return;
    const msg: ServerMessage = { activeSpeaker: { participantSid: owner.peer.sid, producerId } };
    for (const p of room.participants.values()) p.conn?.send(msg);
  }

  private onAudioLevels(room: Room, levels: { producerId: string; volume: number }[]): void {
    const sfuRoom = this.rooms.get(room.name);
    if (!sfuRoom) return;
    const out = levels.flatMap((l) => {
      const owner = sfuRoom.producers.get(l.producerId);
      return owner ? [{ participantSid: owner.peer.sid, producerId: l.producerId, volume: Math.round(l.volume) }] : [];
    });
    const msg: ServerMessage = { audioLevels: { levels: out } };
    for (const p of room.participants.values()) p.conn?.send(msg);
  }

  // ---------- requests ----------

  /** JSON of the routers' RTP capabilities (the same for every router: one codec list). */
  private get routerCapabilities(): string {
    return (this.capsJson ||= JSON.stringify(this.pool.rtpCapabilities));
  }

  async handle(room: Room, p: Participant, req: ValidRequest): Promise<Result> {
    switch (req.kind) {
      case 'getRouterCapabilities':
        return { json: this.routerCapabilities };
      case 'createTransport':
        return this.createTransport(room, p, req.body);
      case 'connectTransport': {
        const t = this.ownTransport(room, p, req.body.transportId, 'connectTransport.transportId');
        if (t.connected) throw new SignalError('INVALID_FIELD', 'transport is already connected', 'connectTransport.transportId');
        const plain = t.plain;
        const body = req.body;
        if (plain ? !body.plainIp || !body.plainPort : !body.dtlsParameters) {
          throw new SignalError('INVALID_FIELD', plain ? 'plainIp and plainPort are required' : 'dtlsParameters is required', 'connectTransport');
        }
        t.connected = true;
        try {
          await media('connectTransport', () =>
            plain
              ? (t.transport as types.PlainTransport).connect({ ip: body.plainIp!, port: body.plainPort! })
              : (t.transport as types.WebRtcTransport).connect({ dtlsParameters: body.dtlsParameters as unknown as types.DtlsParameters }),
          );
        } catch (err) {
          t.connected = false;
          throw err;
        }
        return { ok: {} };
      }
      case 'produce':
        return this.produce(room, p, req.body);
      case 'closeProducer':
        this.ownProducer(room, p, req.body.producerId, 'closeProducer.producerId').close();
        return { ok: {} };
      case 'pauseProducer':
        await this.ownProducer(room, p, req.body.producerId, 'pauseProducer.producerId').pause();
        return { ok: {} };
      case 'resumeProducer':
        await this.ownProducer(room, p, req.body.producerId, 'resumeProducer.producerId').resume();
        return { ok: {} };
      case 'consume':
        return this.consume(room, p, req.body);
      case 'resumeConsumer':
        await this.ownConsumer(room, p, req.body.consumerId, 'resumeConsumer.consumerId').resume();
        return { ok: {} };
      case 'pauseConsumer':
        await this.ownConsumer(room, p, req.body.consumerId, 'pauseConsumer.consumerId').pause();
        return { ok: {} };
      case 'closeConsumer':
        this.ownConsumer(room, p, req.body.consumerId, 'closeConsumer.consumerId').close();
        return { ok: {} };
      case 'setPreferredLayers': {
        const c = this.ownConsumer(room, p, req.body.consumerId, 'setPreferredLayers.consumerId');
        const layers: types.ConsumerLayers = { spatialLayer: req.body.spatialLayer };
        if (req.body.temporalLayer !== undefined) layers.temporalLayer = req.body.temporalLayer;
        await media('setPreferredLayers', () => c.setPreferredLayers(layers));
        return { ok: {} };
      }
      case 'setPriority':
        await media('setPriority', () => this.ownConsumer(room, p, req.body.consumerId, 'setPriority.consumerId').setPriority(req.body.priority));
        return { ok: {} };
      case 'restartIce': {
        const t = this.ownTransport(room, p, req.body.transportId, 'restartIce.transportId');
        if (!('restartIce' in t.transport)) throw new SignalError('INVALID_FIELD', 'not an ICE transport', 'restartIce.transportId');
        return { json: JSON.stringify(await t.transport.restartIce()) };
      }
      case 'getStats':
        return { json: JSON.stringify(await this.ownStatsSource(room, p, req.body.id).getStats()) };
      case 'produceData':
        return this.produceData(room, p, req.body);
      case 'consumeData':
        return this.consumeData(room, p, req.body);
      default:
        throw new SignalError('UNKNOWN_MESSAGE', `not an SFU request: ${req.kind}`, req.kind);
    }
  }

  private peerOf(room: Room, p: Participant): SfuPeer | undefined {
    return this.rooms.get(room.name)?.peers.get(p.sid);
  }

  private ownTransport(room: Room, p: Participant, id: string, field: string): PeerTransport {
    const t = this.peerOf(room, p)?.transports.get(id);
    if (!t) throw new SignalError('NOT_FOUND', `no transport ${id} of yours`, field);
    return t;
  }

  private ownProducer(room: Room, p: Participant, id: string, field: string): types.Producer {
    const pr = this.peerOf(room, p)?.producers.get(id);
    if (!pr) throw new SignalError('NOT_FOUND', `no producer ${id} of yours`, field);
    return pr.producer;
  }

  private ownConsumer(room: Room, p: Participant, id: string, field: string): types.Consumer {
    const c = this.peerOf(room, p)?.consumers.get(id);
    if (!c) throw new SignalError('NOT_FOUND', `no consumer ${id} of yours`, field);
    return c.consumer;
  }

  private ownStatsSource(room: Room, p: Participant, id: string): { getStats(): Promise<unknown> } {
    const peer = this.peerOf(room, p);
    const src = peer?.transports.get(id)?.transport ?? peer?.producers.get(id)?.producer ?? peer?.consumers.get(id)?.consumer;
    if (!src) throw new SignalError('NOT_FOUND', `no transport, producer or consumer ${id} of yours`, 'getStats.id');
    return src;
  }

  /**
   * After creating `obj` (an await): keep it only if the participant is still in the room,
   * otherwise close it (nobody would own it) and rethrow.
   */
  private keep(room: Room, p: Participant, sfuRoom: SfuRoom | undefined, obj: { close(): void }): SfuPeer {
    try {
      if (!sfuRoom) throw new SignalError('NOT_FOUND', 'the room has no media any more', '');
      return this.assertStillHere(room, p, sfuRoom);
    } catch (err) {
      obj.close();
      throw err;
    }
  }

  /** A new transport joins the peer (and leaves it when closed). */
  private adopt(peer: SfuPeer, t: PeerTransport): void {
    peer.transports.set(t.transport.id, t);
    // WebRtc and Plain transports' observers differ in their event maps, not in 'close'.
    const observer = t.transport.observer as unknown as { once(e: 'close', f: () => void): void };
    observer.once('close', () => peer.transports.delete(t.transport.id));
  }

  /** After an await: the participant may have left, or the room closed, meanwhile. */
  private assertStillHere(room: Room, p: Participant, sfuRoom: SfuRoom): SfuPeer {
    if (room.closed || sfuRoom.closed || room.participants.get(p.identity) !== p) {
      throw new SignalError('NOT_FOUND', 'you are no longer in the room', '');
    }
    let peer = sfuRoom.peers.get(p.sid);
    if (!peer) sfuRoom.peers.set(p.sid, (peer = new SfuPeer(p.sid, p.identity)));
    return peer;
  }

  private async createTransport(room: Room, p: Participant, body: Req<'createTransport'>): Promise<Result> {
    const producing = !!body.producing;
    const consuming = !!body.consuming;
    if (producing === consuming) {
      throw new SignalError('INVALID_FIELD', 'a transport is either producing or consuming', 'createTransport');
    }
    if (producing && !p.permission.canPublish) throw new SignalError('PERMISSION_DENIED', 'token lacks canPublish', 'createTransport');
    if (consuming && !p.permission.canSubscribe) throw new SignalError('PERMISSION_DENIED', 'token lacks canSubscribe', 'createTransport');
    if (body.plain && !this.opts.allowPlainTransports) {
      throw new SignalError('PERMISSION_DENIED', 'plain RTP transports are disabled on this server', 'createTransport.plain');
    }
    const sfuRoom = await this.ensureRoom(room);
    const slot = producing ? sfuRoom.main : await sfuRoom.slotForSubscriber();
    this.assertStillHere(room, p, sfuRoom);
    if (body.plain) {
      const transport = await slot.router.createPlainTransport({
        listenIp: { ip: this.opts.listenIp, ...(this.opts.announcedIp ? { announcedIp: this.opts.announcedIp } : {}) },
        rtcpMux: true,
        comedia: producing, // a sender's address is learnt from its first packet
        appData: { participantSid: p.sid },
      });
      // A producing plain transport needs no connect (comedia).
      this.adopt(this.keep(room, p, sfuRoom, transport), { transport, slot, producing, consuming, connected: producing, plain: true });
      return {
        transport: {
          id: transport.id, iceParameters: '', iceCandidates: '', dtlsParameters: '',
          plainIp: transport.tuple.localIp, plainPort: transport.tuple.localPort,
        },
      };
    }
    const transport = await slot.router.createWebRtcTransport({
      webRtcServer: slot.worker.webRtcServer,
      enableUdp: true,
      enableTcp: true,
      preferUdp: true,
      enableSctp: !!body.sctp,
      numSctpStreams: { OS: 1024, MIS: 1024 },
      initialAvailableOutgoingBitrate: this.opts.initialAvailableOutgoingBitrate,
      appData: { participantSid: p.sid },
    });
    this.adopt(this.keep(room, p, sfuRoom, transport), { transport, slot, producing, consuming, connected: false, plain: false });
    return {
      transport: {
        id: transport.id,
        iceParameters: JSON.stringify(transport.iceParameters),
        iceCandidates: JSON.stringify(transport.iceCandidates),
        dtlsParameters: JSON.stringify(transport.dtlsParameters),
        ...(transport.sctpParameters ? { sctpParameters: JSON.stringify(transport.sctpParameters) } : {}),
        iceServers: this.manager.iceServers(p.identity),
      },
    };
  }

  private async produce(room: Room, p: Participant, body: Req<'produce'>): Promise<Result> {
    if (!p.permission.canPublish) throw new SignalError('PERMISSION_DENIED', 'token lacks canPublish', 'produce');
    const source = body.source ?? DEFAULT_SOURCE[body.kind]!;
    const allowed = p.permission.canPublishSources;
    if (allowed.length > 0 && !allowed.includes(source)) {
      throw new SignalError('PERMISSION_DENIED', `token does not allow publishing ${source}`, 'produce.source');
    }
    const t = this.ownTransport(room, p, body.transportId, 'produce.transportId');
    if (!t.producing) throw new SignalError('INVALID_FIELD', 'not a producing transport', 'produce.transportId');
    const producer = await media('produce.rtpParameters', () =>
      t.transport.produce({
        kind: body.kind,
        rtpParameters: body.rtpParameters as unknown as types.RtpParameters,
        paused: !!body.paused,
        appData: { source },
      }),
    );
    const sfuRoom = this.rooms.get(room.name)!;
    const peer = this.keep(room, p, sfuRoom, producer);
    peer.producers.set(producer.id, { producer, source });
    producer.on('score', (scores) => {
      const best = scores.reduce((m, s) => Math.max(m, s.score), 0);
      p.conn?.send({ score: { id: producer.id, score: best } });
    });
    const summary: TrackSummary = {
      producerId: producer.id,
      kind: producer.kind,
      source,
      paused: producer.paused,
      mimeType: producer.rtpParameters.codecs[0]?.mimeType ?? '',
    };
    producer.observer.once('close', () => {
      peer.producers.delete(producer.id);
      this.emit('trackUnpublished', room, p, summary);
      if (sfuRoom.closed || room.closed) return;
      this.manager.sendTo(room, { producerRemoved: { producerId: producer.id, participantSid: p.sid } }, this.subscribers(room, p));
    });
    await sfuRoom.addProducer(producer, peer, source);
    this.manager.sendTo(room, { producerAdded: this.producerInfo(producer, peer, source) }, this.subscribers(room, p));
    this.emit('trackPublished', room, p, summary);
    return { id: producer.id };
  }

  private async consume(room: Room, p: Participant, body: Req<'consume'>): Promise<Result> {
    if (!p.permission.canSubscribe) throw new SignalError('PERMISSION_DENIED', 'token lacks canSubscribe', 'consume');
    const sfuRoom = this.rooms.get(room.name);
    const owner = sfuRoom?.producers.get(body.producerId);
    if (!sfuRoom || !owner) throw new SignalError('NOT_FOUND', `no producer ${body.producerId} in the room`, 'consume.producerId');
    if (owner.peer.sid === p.sid) throw new SignalError('INVALID_FIELD', 'cannot consume your own producer', 'consume.producerId');
    if (sfuRoom.peers.get(p.sid)?.blocked.has(body.producerId)) {
      throw new SignalError('PERMISSION_DENIED', 'unsubscribed from this track by the server', 'consume.producerId');
    }
    const t = this.ownTransport(room, p, body.transportId, 'consume.transportId');
    if (!t.consuming) throw new SignalError('INVALID_FIELD', 'not a consuming transport', 'consume.transportId');
    const rtpCapabilities = body.rtpCapabilities as unknown as types.RtpCapabilities;
    if (!t.slot.router.canConsume({ producerId: body.producerId, rtpCapabilities })) {
      throw new SignalError('INVALID_FIELD', 'these rtpCapabilities cannot receive that producer', 'consume.rtpCapabilities');
    }
    // Server-side paused: the client resumes once its consumer is set up, so no keyframe is
    // lost in between.
    const consumer = await media('consume', () =>
      t.transport.consume({ producerId: body.producerId, rtpCapabilities, paused: true, appData: { participantSid: p.sid } }),
    );
    const peer = this.keep(room, p, sfuRoom, consumer);
    const slot = t.slot;
    slot.consumers++;
    slot.worker.consumers++;
    peer.consumers.set(consumer.id, { consumer, slot });
    consumer.observer.once('close', () => {
      slot.consumers--;
      slot.worker.consumers--;
      peer.consumers.delete(consumer.id);
    });
    const send = (msg: ServerMessage): void => p.conn?.send(msg);
    consumer.on('producerclose', () => send({ consumerClosed: { consumerId: consumer.id, reason: 'producerclose' } }));
    consumer.on('producerpause', () => send({ consumerPaused: { consumerId: consumer.id, reason: 'producer' } }));
    consumer.on('producerresume', () => send({ consumerResumed: { consumerId: consumer.id, reason: 'producer' } }));
    consumer.on('layerschange', (l) =>
      send({ layersChanged: { consumerId: consumer.id, spatialLayer: l?.spatialLayer ?? -1, temporalLayer: l?.temporalLayer ?? -1 } }),
    );
    consumer.on('score', (s) => send({ score: { id: consumer.id, score: s.score, producerScore: s.producerScore } }));
    const info: ConsumerInfo = {
      id: consumer.id,
      producerId: body.producerId,
      kind: consumer.kind,
      rtpParameters: JSON.stringify(consumer.rtpParameters),
      participantSid: owner.peer.sid,
      participantIdentity: owner.peer.identity,
      source: owner.source,
      producerPaused: consumer.producerPaused,
      type: consumer.type,
    };
    return { consumer: info };
  }

  private async produceData(room: Room, p: Participant, body: Req<'produceData'>): Promise<Result> {
    if (!p.permission.canPublishData) throw new SignalError('PERMISSION_DENIED', 'token lacks canPublishData', 'produceData');
    const t = this.ownTransport(room, p, body.transportId, 'produceData.transportId');
    if (!t.producing) throw new SignalError('INVALID_FIELD', 'not a producing transport', 'produceData.transportId');
    const dp = await media('produceData.sctpStreamParameters', () =>
      t.transport.produceData({
        sctpStreamParameters: body.sctpStreamParameters as unknown as types.SctpStreamParameters,
        label: body.label ?? '',
        protocol: body.protocol ?? '',
      }),
    );
    const peer = this.keep(room, p, this.rooms.get(room.name), dp);
    peer.dataProducers.set(dp.id, dp);
    dp.observer.once('close', () => peer.dataProducers.delete(dp.id));
    this.manager.sendTo(room, { producerAdded: this.producerInfo({ id: dp.id, kind: 'data', paused: false }, peer, 'data') }, this.subscribers(room, p));
    return { id: dp.id };
  }

  private async consumeData(room: Room, p: Participant, body: Req<'consumeData'>): Promise<Result> {
    if (!p.permission.canSubscribe) throw new SignalError('PERMISSION_DENIED', 'token lacks canSubscribe', 'consumeData');
    const sfuRoom = this.rooms.get(room.name);
    let dp: types.DataProducer | undefined;
    for (const peer of sfuRoom?.peers.values() ?? []) dp ??= peer.dataProducers.get(body.dataProducerId);
    if (!sfuRoom || !dp) throw new SignalError('NOT_FOUND', `no data producer ${body.dataProducerId}`, 'consumeData.dataProducerId');
    const t = this.ownTransport(room, p, body.transportId, 'consumeData.transportId');
    if (!t.consuming) throw new SignalError('INVALID_FIELD', 'not a consuming transport', 'consumeData.transportId');
    if (t.slot !== sfuRoom.main) {
      await sfuRoom.main.router.pipeToRouter({ dataProducerId: dp.id, router: t.slot.router }).catch(() => undefined);
    }
    const dc = await media('consumeData', () => t.transport.consumeData({ dataProducerId: dp.id }));
    const peer = this.keep(room, p, sfuRoom, dc);
    peer.dataConsumers.set(dc.id, dc);
    dc.observer.once('close', () => peer.dataConsumers.delete(dc.id));
    return {
      dataConsumer: {
        id: dc.id,
        dataProducerId: dp.id,
        sctpStreamParameters: JSON.stringify(dc.sctpStreamParameters ?? {}),
        label: dc.label,
        protocol: dc.protocol,
      },
    };
  }

  // ---------- server API (RoomService) ----------

  /** A participant's published tracks. */
  tracksOf(roomName: string, sid: string): TrackSummary[] {
    const peer = this.rooms.get(roomName)?.peers.get(sid);
    if (!peer) return [];
    return [...peer.producers.values()].map(({ producer, source }) => ({
      producerId: producer.id,
      kind: producer.kind,
      source,
      paused: producer.paused,
      mimeType: producer.rtpParameters.codecs[0]?.mimeType ?? '',
    }));
  }

  /** MutePublishedTrack: pause/resume the producer and tell its owner. False if no such track. */
  async setProducerMuted(room: Room, p: Participant, producerId: string, muted: boolean): Promise<boolean> {
    const pr = this.peerOf(room, p)?.producers.get(producerId)?.producer;
    if (!pr) return false;
    if (muted) await pr.pause();
    else await pr.resume();
    p.conn?.send({ trackMuted: { producerId, muted } });
    return true;
  }

  /** After a permission change: what the participant may no longer do is undone. */
  enforcePermissions(room: Room, p: Participant): void {
    const peer = this.peerOf(room, p);
    if (!peer) return;
    if (!p.permission.canPublish) for (const { producer } of [...peer.producers.values()]) producer.close();
    if (!p.permission.canSubscribe) for (const { consumer } of [...peer.consumers.values()]) consumer.close();
    if (!p.permission.canPublishData) for (const dp of [...peer.dataProducers.values()]) dp.close();
  }

  /**
   * UpdateSubscriptions: unsubscribing closes the participant's consumers of those producers
   * (and refuses new ones); subscribing lifts that and re-announces them so the SDK consumes.
   */
  setSubscribed(room: Room, p: Participant, producerIds: string[], subscribe: boolean): void {
    const sfuRoom = this.rooms.get(room.name);
    if (!sfuRoom) return;
    const peer = this.assertStillHere(room, p, sfuRoom);
    for (const id of producerIds) {
      if (subscribe) {
        peer.blocked.delete(id);
        const owner = sfuRoom.producers.get(id);
        if (owner) this.manager.sendTo(room, { producerAdded: this.producerInfo(owner.producer, owner.peer, owner.source) }, [p]);
      } else {
        peer.blocked.add(id);
        for (const { consumer } of [...peer.consumers.values()]) {
          if (consumer.producerId !== id) continue;
          consumer.close();
          p.conn?.send({ consumerClosed: { consumerId: consumer.id, reason: 'unsubscribed' } });
        }
      }
    }
  }

  // ---------- metrics ----------

  /** mediasoup object counts (from the workers themselves) and worker CPU, at scrape time. */
  registerMetrics(registry: Registry): void {
    const pool = this.pool;
    const rooms = this.rooms;
    new Gauge({
      name: 'auralink_sfu_objects',
      help: 'mediasoup objects alive: routers as the workers report them; transports, producers, consumers from the room routers',
      labelNames: ['type'] as const,
      registers: [registry],
      async collect() {
        let routers = 0;
        for (const s of pool.slots) routers += ((await s.worker.dump()) as { routerIds: string[] }).routerIds.length;
        let transports = 0;
        let producers = 0;
        let consumers = 0;
        for (const r of rooms.values()) {
          for (const slot of r.slots) {
            const d = (await slot.router.dump()) as { transportIds: string[]; mapProducerIdConsumerIds: Record<string, string[]> };
            transports += d.transportIds.length;
            // 3.12 dumps this as an object: producer id -> consumer ids.
            const map = Object.values(d.mapProducerIdConsumerIds);
            producers += map.length;
            consumers += map.reduce((n, ids) => n + ids.length, 0);
          }
        }
        this.set({ type: 'router' }, routers);
        this.set({ type: 'transport' }, transports);
        this.set({ type: 'producer' }, producers);
        this.set({ type: 'consumer' }, consumers);
      },
    });
    new Gauge({
      name: 'auralink_sfu_worker_cpu_seconds',
      help: 'CPU time used by each mediasoup worker (user + system)',
      labelNames: ['worker'] as const,
      registers: [registry],
      async collect() {
        this.reset();
        for (const s of pool.slots) {
          const u = await s.worker.getResourceUsage();
          this.set({ worker: String(s.index) }, (u.ru_utime + u.ru_stime) / 1000);
        }
      },
    });
    new Gauge({
      name: 'auralink_sfu_workers',
      help: 'Live mediasoup workers',
      registers: [registry],
      collect() {
        this.set(pool.slots.length);
      },
    });
  }
}
