import { Device } from 'mediasoup-client';
import type { types as ms } from 'mediasoup-client';
import type { ParticipantInfo, ProducerInfo, TransportInfo } from '../signal/messages.js';
import { Emitter } from './emitter.js';
import { SignalClient, type SignalClientOptions } from './signalClient.js';

export type TrackSource = 'camera' | 'microphone' | 'screen_share' | 'screen_share_audio';

export interface RemoteTrack {
  producerId: string;
  participantSid: string;
  participantIdentity: string;
  kind: 'audio' | 'video';
  source: string;
  track: MediaStreamTrack;
  consumer: ms.Consumer;
}

export interface RoomEvents extends Record<string, unknown[]> {
  participantJoined: [ParticipantInfo];
  participantLeft: [{ sid: string; identity: string }];
  trackSubscribed: [RemoteTrack];
  trackUnsubscribed: [RemoteTrack];
  activeSpeaker: [{ participantSid: string }];
  reconnecting: [];
  reconnected: [];
  /** Media was rebuilt after the server lost it (worker restart) or a full rejoin. */
  mediaRestored: [];
  disconnected: [{ code: number; reason: string }];
}

export interface RoomOptions extends SignalClientOptions {
  /** 'relay' sends all media through the TURN servers the server hands out. */
  iceTransportPolicy?: RTCIceTransportPolicy;
}

// Camera simulcast: three layers, so the SFU can pick one per subscriber.
const CAMERA_ENCODINGS: RTCRtpEncodingParameters[] = [
  { scaleResolutionDownBy: 4, maxBitrate: 150_000 },
  { scaleResolutionDownBy: 2, maxBitrate: 500_000 },
  { scaleResolutionDownBy: 1, maxBitrate: 1_200_000 },
];

/**
 * A room with media, for browsers: connect(url, token) joins, loads the mediasoup Device from
 * the join response, subscribes automatically to every track published in the room, and
 * publishes local camera/microphone/screen tracks. It survives signalling drops (resume +
 * ICE restart) and media loss on the server (mediaReset: transports rebuilt, tracks
 * republished) without anything from the app.
 */
export class Room extends Emitter<RoomEvents> {
  readonly device = new Device();
  readonly remote = new Map<string, RemoteTrack>(); // by producer id
  private readonly local = new Map<TrackSource, { track: MediaStreamTrack; producer: ms.Producer | null }>();
  private sendTransport: ms.Transport | null = null;
  private recvTransport: ms.Transport | null = null;
  private readonly pending: Record<'producing' | 'consuming', Promise<ms.Transport> | null> = { producing: null, consuming: null };
  private readonly consuming = new Set<string>();
  /** Sid of the participant speaking most (from the SFU's active speaker detection). */
  activeSpeakerSid: string | null = null;

  private constructor(
    readonly signal: SignalClient,
    private readonly opts: RoomOptions,
  ) {
    super();
  }

  static async connect(url: string, token: string, opts: RoomOptions = {}): Promise<Room> {
    const signal = await SignalClient.connect(url, token, opts);
    const room = new Room(signal, opts);
    // Events that came with the join (before anyone could listen) are already in its state.
    signal.on('activeSpeaker', ({ participantSid }) => (room.activeSpeakerSid ??= participantSid));
    const caps = signal.join.routerRtpCapabilities;
    if (!caps) throw new Error('this server has no SFU');
    await room.device.load({ routerRtpCapabilities: JSON.parse(caps) as ms.RtpCapabilities });
    room.wire();
    await room.subscribeAll();
    return room;
  }

  get me(): ParticipantInfo {
    return this.signal.me;
  }

  get participants(): Map<string, ParticipantInfo> {
    return this.signal.participants;
  }

  private wire(): void {
    const s = this.signal;
    s.on('participantJoined', (p) => this.emit('participantJoined', p));
    s.on('participantLeft', (p) => this.emit('participantLeft', p));
    s.on('producerAdded', (p) => void this.subscribe(p));
    s.on('producerRemoved', ({ producerId }) => this.dropRemote(producerId));
    s.on('consumerClosed', ({ consumerId }) => {
      for (const r of this.remote.values()) if (r.consumer.id === consumerId) this.dropRemote(r.producerId);
    });
    s.on('activeSpeaker', ({ participantSid }) => {
      this.activeSpeakerSid = participantSid;
      this.emit('activeSpeaker', { participantSid });
    });
    s.on('mediaReset', () => void this.rebuildMedia());
    // Muted by an admin: stop sending too (the server already paused the producer).
    s.on('trackMuted', ({ producerId, muted }) => {
      for (const e of this.local.values()) {
        if (e.producer?.id !== producerId) continue;
        if (muted) e.producer.pause();
        else e.producer.resume();
      }
    });
    s.on('reconnecting', () => this.emit('reconnecting'));
    s.on('reconnected', ({ resumed }) => {
      this.emit('reconnected');
      // Same session: the transports still exist server-side; a new network path needs ICE
      // restarted. A fresh join lost them: rebuild.
      if (resumed) void this.restartIce();
      else void this.rebuildMedia();
    });
    s.on('closed', (e) => {
      this.closeMedia();
      this.emit('disconnected', e);
    });
  }

  /**
   * How each media transport reaches the SFU: the ICE candidate type of the selected pair's
   * local side ('host', 'srflx', 'prflx' or 'relay' = through TURN); undefined before ICE connects.
   */
  async connectionTypes(): Promise<{ producing?: string; consuming?: string }> {
    const out: { producing?: string; consuming?: string } = {};
    for (const [dir, t] of [['producing', this.sendTransport], ['consuming', this.recvTransport]] as const) {
      if (!t) continue;
      const stats = await t.getStats();
      let pairId: string | undefined;
      stats.forEach((s: { type: string; selectedCandidatePairId?: string }) => {
        if (s.type === 'transport' && s.selectedCandidatePairId) pairId = s.selectedCandidatePairId;
      });
      const pair = pairId ? (stats.get(pairId) as { localCandidateId?: string } | undefined) : undefined;
      const local = pair?.localCandidateId ? (stats.get(pair.localCandidateId) as { candidateType?: string } | undefined) : undefined;
      if (local?.candidateType) out[dir] = local.candidateType;
    }
    return out;
  }

  private transportOptions(t: TransportInfo): ms.TransportOptions {
    return {
      id: t.id,
      iceParameters: JSON.parse(t.iceParameters) as ms.IceParameters,
      iceCandidates: JSON.parse(t.iceCandidates) as ms.IceCandidate[],
      dtlsParameters: JSON.parse(t.dtlsParameters) as ms.DtlsParameters,
      ...(t.sctpParameters ? { sctpParameters: JSON.parse(t.sctpParameters) as ms.SctpParameters } : {}),
      // TURN from the server (fresh credentials per transport), for networks where UDP/TCP to
      // the SFU's ports is blocked; 'relay' forces it.
      iceServers: (t.iceServers ?? this.signal.join.iceServers ?? []) as RTCIceServer[],
      ...(this.opts.iceTransportPolicy ? { iceTransportPolicy: this.opts.iceTransportPolicy } : {}),
    };
  }

  private async makeTransport(dir: 'producing' | 'consuming'): Promise<ms.Transport> {
    const r = await this.signal.request({ createTransport: { [dir]: true } });
    const opts = this.transportOptions(r.transport!);
    const t = dir === 'producing' ? this.device.createSendTransport(opts) : this.device.createRecvTransport(opts);
    t.on('connect', ({ dtlsParameters }, ok, fail) => {
      this.signal
        .request({ connectTransport: { transportId: t.id, dtlsParameters: JSON.stringify(dtlsParameters) } })
        .then(() => ok(), fail);
    });
    if (dir === 'producing') {
      t.on('produce', ({ kind, rtpParameters, appData }, ok, fail) => {
        this.signal
          .request({
            produce: { transportId: t.id, kind, rtpParameters: JSON.stringify(rtpParameters), source: String(appData.source) },
          })
          .then((res) => ok({ id: res.id! }), fail);
      });
    }
    return t;
  }

  /** The live transport of a direction, created once even when asked for concurrently. */
  private async transport(dir: 'producing' | 'consuming'): Promise<ms.Transport> {
    const current = dir === 'producing' ? this.sendTransport : this.recvTransport;
    if (current && !current.closed) return current;
    this.pending[dir] ??= this.makeTransport(dir).then((t) => {
      if (dir === 'producing') this.sendTransport = t;
      else this.recvTransport = t;
      return t;
    });
    try {
      return await this.pending[dir]!;
    } finally {
      this.pending[dir] = null;
    }
  }

  private async subscribeAll(): Promise<void> {
    await Promise.all([...this.signal.producers.values()].map((p) => this.subscribe(p)));
  }

  private async subscribe(p: ProducerInfo): Promise<void> {
    if (p.kind !== 'audio' && p.kind !== 'video') return; // data producers: not handled by this SDK yet
    if (!this.me.permission.canSubscribe || this.remote.has(p.producerId) || this.consuming.has(p.producerId)) return;
    this.consuming.add(p.producerId);
    try {
      const t = await this.transport('consuming');
      const r = await this.signal.request({
        consume: { producerId: p.producerId, transportId: t.id, rtpCapabilities: JSON.stringify(this.device.rtpCapabilities) },
      });
      const info = r.consumer!;
      const consumer = await t.consume({
        id: info.id,
        producerId: info.producerId,
        kind: info.kind as 'audio' | 'video',
        rtpParameters: JSON.parse(info.rtpParameters) as ms.RtpParameters,
      });
      const remote: RemoteTrack = {
        producerId: p.producerId,
        participantSid: info.participantSid,
        participantIdentity: info.participantIdentity,
        kind: info.kind as 'audio' | 'video',
        source: info.source,
        track: consumer.track,
        consumer,
      };
      this.remote.set(p.producerId, remote);
      // Created paused on the server: resume only now that the track is wired up.
      await this.signal.request({ resumeConsumer: { consumerId: info.id } });
      this.emit('trackSubscribed', remote);
    } catch {
      // The producer went away meanwhile, or we are reconnecting: nothing to show.
    } finally {
      this.consuming.delete(p.producerId);
    }
  }

  private dropRemote(producerId: string): void {
    const r = this.remote.get(producerId);
    if (!r) return;
    this.remote.delete(producerId);
    r.consumer.close();
    this.emit('trackUnsubscribed', r);
  }

  /** Publishes a local track under a source (replacing what that source had). */
  async publish(track: MediaStreamTrack, source: TrackSource): Promise<void> {
    await this.unpublish(source, this.local.get(source)?.track !== track);
    const entry = { track, producer: null as ms.Producer | null };
    this.local.set(source, entry);
    entry.producer = await this.produce(track, source);
  }

  private async produce(track: MediaStreamTrack, source: TrackSource): Promise<ms.Producer> {
    const t = await this.transport('producing');
    return t.produce({
      track,
      // The Room owns its tracks: closing a producer (transport lost, media rebuilt) must not
      // end the camera, or there would be nothing left to republish.
      stopTracks: false,
      appData: { source },
      ...(source === 'camera' ? { encodings: CAMERA_ENCODINGS } : {}),
      ...(track.kind === 'audio' ? { codecOptions: { opusStereo: false, opusDtx: true } } : {}),
    });
  }

  /** Stops publishing a source (and ends its track unless told not to). */
  async unpublish(source: TrackSource, stopTrack = true): Promise<void> {
    const e = this.local.get(source);
    if (!e) return;
    this.local.delete(source);
    if (e.producer && !e.producer.closed) {
      const id = e.producer.id;
      e.producer.close();
      if (stopTrack) e.track.stop();
      await this.signal.request({ closeProducer: { producerId: id } }).catch(() => undefined);
    }
  }

  /** Mute: the producer is paused on both sides (subscribers see consumerPaused). */
  async setMuted(source: TrackSource, muted: boolean): Promise<void> {
    const p = this.local.get(source)?.producer;
    if (!p) return;
    if (muted) {
      p.pause();
      await this.signal.request({ pauseProducer: { producerId: p.id } });
    } else {
      p.resume();
      await this.signal.request({ resumeProducer: { producerId: p.id } });
    }
  }

  private async restartIce(): Promise<void> {
    for (const t of [this.sendTransport, this.recvTransport]) {
      if (!t || t.closed) continue;
      try {
        const r = await this.signal.request({ restartIce: { transportId: t.id } });
        await t.restartIce({ iceParameters: JSON.parse(r.json!) as ms.IceParameters });
      } catch {
        /* the transport is gone: a mediaReset or rebuild follows */
      }
    }
  }

  private closeMedia(): void {
    this.sendTransport?.close();
    this.recvTransport?.close();
    this.sendTransport = null;
    this.recvTransport = null;
    for (const id of [...this.remote.keys()]) this.dropRemote(id);
    for (const e of this.local.values()) e.producer = null;
  }

  /** Server-side media is gone: new transports, local tracks republished, room resubscribed. */
  private async rebuildMedia(): Promise<void> {
    this.closeMedia();
    for (const [source, e] of this.local) {
      if (e.track.readyState === 'live') e.producer = await this.produce(e.track, source).catch(() => null);
    }
    await this.subscribeAll();
    this.emit('mediaRestored');
  }

  /** Transport stats (RTCStatsReport) of the receiving side: what the app actually gets. */
  async receiveStats(): Promise<RTCStatsReport | null> {
    return this.recvTransport && !this.recvTransport.closed ? this.recvTransport.getStats() : null;
  }

  async sendStats(): Promise<RTCStatsReport | null> {
    return this.sendTransport && !this.sendTransport.closed ? this.sendTransport.getStats() : null;
  }

  async leave(): Promise<void> {
    for (const e of this.local.values()) e.track.stop();
    this.local.clear();
    this.closeMedia();
    await this.signal.leave();
  }
}
