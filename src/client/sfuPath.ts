import { Device } from 'mediasoup-client';
import type { types as ms } from 'mediasoup-client';
import type { ConsumerInfo, ProducerInfo, TransportInfo } from '../signal/messages.js';
import { Emitter } from './emitter.js';
import { IceWatch } from './iceWatch.js';
import { isTrackSource, type RemoteTrack, type RemoteTrackEvents, type TrackSource } from './remoteTrack.js';
import { selectedPair } from './selectedPair.js';
import { SignalRequestError, type SignalClient } from './signalClient.js';

// Camera simulcast: three layers, so the SFU can pick one per subscriber.
const CAMERA_ENCODINGS: RTCRtpEncodingParameters[] = [
  { scaleResolutionDownBy: 4, maxBitrate: 150_000 },
  { scaleResolutionDownBy: 2, maxBitrate: 500_000 },
  { scaleResolutionDownBy: 1, maxBitrate: 1_200_000 },
];

type Direction = 'producing' | 'consuming';

// Waits between tries of a subscription the server could not serve just now (about 3 s in all).
const SUBSCRIBE_RETRY_MS = [200, 400, 800, 1600];

function retryable(err: unknown): boolean {
  if (err instanceof SignalRequestError) return err.code === 'UNAVAILABLE' || err.code === 'NOT_FOUND';
  return err instanceof Error && err.message === 'request timed out';
}

/**
 * Media through the SFU (mediasoup-client): one send and one receive transport, a producer
 * per published source, a consumer per subscribed track. The Room owns the local tracks and
 * decides when this path carries them.
 */
export class SfuPath extends Emitter<RemoteTrackEvents> {
  readonly device = new Device();
  /** Tracks received through the SFU, by producer id. */
  readonly remote = new Map<string, RemoteTrack>();
  private readonly producers = new Map<TrackSource, ms.Producer>();
  private sendTransport: ms.Transport | null = null;
  private recvTransport: ms.Transport | null = null;
  private readonly pending: Record<Direction, Promise<ms.Transport> | null> = { producing: null, consuming: null };
  private readonly iceWatches = new Map<ms.Transport, IceWatch>();
  /** Consumers answered but not yet wired up, and a switch the server sent for one meanwhile. */
  private readonly settingUp = new Set<string>();
  private readonly earlySwitch = new Map<string, ConsumerInfo>();
  private readonly consuming = new Set<string>();
  private readonly wantedLayer = new Map<string, number>();
  private readonly layerQueue = new Map<string, Promise<void>>();
  /** Bumped by close(): a subscription being retried from before stops. */
  private generation = 0;

  constructor(
    private readonly signal: SignalClient,
    private readonly iceTransportPolicy: RTCIceTransportPolicy | undefined,
  ) {
    super();
  }

  async load(): Promise<void> {
    const caps: unknown = JSON.parse(await this.signal.routerCapabilities());
    await this.device.load({ routerRtpCapabilities: caps as ms.RtpCapabilities });
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
      iceServers: t.iceServers ?? this.signal.join.iceServers ?? [],
      ...(this.iceTransportPolicy ? { iceTransportPolicy: this.iceTransportPolicy } : {}),
    };
  }

  private async makeTransport(dir: Direction): Promise<ms.Transport> {
    const { transport: info } = await this.signal.request('createTransport', { [dir]: true });
    const opts = this.transportOptions(info);
    const t = dir === 'producing' ? this.device.createSendTransport(opts) : this.device.createRecvTransport(opts);
    this.iceWatches.set(t, new IceWatch(t, { restart: () => this.restartTransportIce(t), canRestart: () => this.signal.connected }));
    t.observer.once('close', () => {
      this.iceWatches.get(t)?.stop();
      this.iceWatches.delete(t);
    });
    t.on('connect', ({ dtlsParameters }, ok, fail) => {
      this.signal.request('connectTransport', { transportId: t.id, dtlsParameters: JSON.stringify(dtlsParameters) }).then(() => ok(), fail);
    });
    if (dir === 'producing') {
      t.on('produce', ({ kind, rtpParameters, appData }, ok, fail) => {
        const source = isTrackSource(appData.source) ? appData.source : undefined;
        // The source size lets the server's layer controller know each layer's resolution.
        const size = typeof appData.width === 'number' && typeof appData.height === 'number' ? { width: appData.width, height: appData.height } : {};
        this.signal
          .request('produce', { transportId: t.id, kind, rtpParameters: JSON.stringify(rtpParameters), ...(source ? { source } : {}), ...size })
          .then(({ id }) => ok({ id }), fail);
      });
    }
    return t;
  }

  /** The live transport of a direction, created once even when asked for concurrently. */
  private async transport(dir: Direction): Promise<ms.Transport> {
    const current = dir === 'producing' ? this.sendTransport : this.recvTransport;
    if (current && !current.closed) return current;
    const made = (this.pending[dir] ??= this.makeTransport(dir).then((t) => {
      if (dir === 'producing') this.sendTransport = t;
      else this.recvTransport = t;
      return t;
    }));
    try {
      return await made;
    } finally {
      this.pending[dir] = null;
    }
  }

  async subscribeAll(producers: Iterable<ProducerInfo>): Promise<void> {
    await Promise.all([...producers].map((p) => this.subscribe(p)));
  }

  /**
   * Consumes an announced producer. A refusal that can pass (UNAVAILABLE: the media server or
   * the node the track comes from could not serve it just now; NOT_FOUND: a track published on
   * another node not yet known here; a timed-out request) is tried again a few times while the
   * producer is still announced; then `trackSubscriptionFailed` says so (as LiveKit's SDK does).
   */
  async subscribe(p: ProducerInfo): Promise<void> {
    if (p.kind !== 'audio' && p.kind !== 'video') return; // data producers: not handled by this SDK yet
    if (!this.signal.me.permission.canSubscribe || this.remote.has(p.producerId) || this.consuming.has(p.producerId)) return;
    this.consuming.add(p.producerId);
    const generation = this.generation;
    try {
      for (let attempt = 0; ; attempt++) {
        try {
          await this.consumeOnce(p);
          return;
        } catch (err) {
          // Gone meanwhile, media reset, or not connected (a resume replays, a rejoin resubscribes): nothing to show.
          const announced = this.signal.producers.has(p.producerId) && !this.remote.has(p.producerId);
          if (!announced || generation !== this.generation || !this.signal.connected) return;
          if (!retryable(err) || attempt >= SUBSCRIBE_RETRY_MS.length) {
            this.emit('trackSubscriptionFailed', { producerId: p.producerId, participantSid: p.participantSid, participantIdentity: p.participantIdentity, source: p.source, error: err instanceof Error ? err : new Error(String(err)) });
            return;
          }
          await new Promise((r) => setTimeout(r, SUBSCRIBE_RETRY_MS[attempt]));
        }
      }
    } finally {
      this.consuming.delete(p.producerId);
    }
  }

  private async consumeOnce(p: ProducerInfo): Promise<void> {
    const t = await this.transport('consuming');
    const { consumer: info } = await this.signal.request('consume', {
      producerId: p.producerId,
      transportId: t.id,
      rtpCapabilities: JSON.stringify(this.device.rtpCapabilities),
    });
    const kind = info.kind === 'audio' ? 'audio' : 'video';
    this.settingUp.add(info.id);
    let consumer: ms.Consumer;
    try {
      consumer = await t.consume({
        id: info.id,
        producerId: info.producerId,
        kind,
        rtpParameters: JSON.parse(info.rtpParameters) as ms.RtpParameters,
      });
    } finally {
      this.settingUp.delete(info.id);
    }
    const remote: RemoteTrack = {
      producerId: p.producerId,
      participantSid: info.participantSid,
      participantIdentity: info.participantIdentity,
      kind,
      source: info.source,
      track: consumer.track,
      route: 'sfu',
      consumer,
      getStats: () => consumer.getStats(),
    };
    this.remote.set(p.producerId, remote);
    const early = this.earlySwitch.get(info.id);
    this.earlySwitch.delete(info.id);
    if (early) {
      // Replaced by the server before it was wired up (a re-route): the replacement is what is shown.
      await this.replaceConsumer(remote, early);
    } else {
      // Created paused on the server: resume only now that the track is wired up. A switch that
      // came meanwhile (the old one closed there) has resumed its replacement already.
      await this.signal.request('resumeConsumer', { consumerId: info.id }).catch((err: unknown) => {
        if (remote.consumer === consumer) throw err;
      });
    }
    this.emit('trackSubscribed', remote);
  }

  drop(producerId: string): void {
    const r = this.remote.get(producerId);
    if (!r) return;
    this.remote.delete(producerId);
    r.consumer?.close();
    this.emit('trackUnsubscribed', r);
  }

  /**
   * consumerSwitched: the server replaced a consumer with `info` (same track, e.g. its RTP
   * hook chain fell back). The new consumer is set up and resumed, the old one closed, and
   * the RemoteTrack keeps its identity with the new track and consumer in it.
   */
  async switchConsumer(consumerId: string, info: ConsumerInfo): Promise<void> {
    const r = [...this.remote.values()].find((x) => x.consumer?.id === consumerId);
    if (!r) {
      // Still being set up (the consume's answer came just before): applied once it is.
      if (this.settingUp.has(consumerId)) this.earlySwitch.set(consumerId, info);
      return;
    }
    const oldTrack = r.track;
    if (await this.replaceConsumer(r, info)) this.emit('trackSwitched', r, oldTrack, consumerId);
  }

  /** Sets up `info` in place of the track's consumer (closed), then resumes it; false if the track or transport went meanwhile. */
  private async replaceConsumer(r: RemoteTrack, info: ConsumerInfo): Promise<boolean> {
    const t = this.recvTransport;
    if (!t || t.closed) return false;
    try {
      const consumer = await t.consume({
        id: info.id,
        producerId: info.producerId,
        kind: r.kind,
        rtpParameters: JSON.parse(info.rtpParameters) as ms.RtpParameters,
      });
      if (this.remote.get(r.producerId) !== r) {
        consumer.close(); // dropped meanwhile
        return false;
      }
      r.consumer?.close();
      r.consumer = consumer;
      r.track = consumer.track;
      r.getStats = () => consumer.getStats();
      void this.signal.request('resumeConsumer', { consumerId: info.id }).catch(() => undefined);
      return true;
    } catch {
      // The transport or the track went away meanwhile: a mediaReset or producerRemoved follows.
      return false;
    }
  }

  dropConsumer(consumerId: string): void {
    for (const r of this.remote.values()) if (r.consumer?.id === consumerId) this.drop(r.producerId);
  }

  isPublishing(source: TrackSource): boolean {
    const p = this.producers.get(source);
    return !!p && !p.closed;
  }

  async publish(track: MediaStreamTrack, source: TrackSource): Promise<void> {
    const t = await this.transport('producing');
    const { width, height } = track.kind === 'video' ? track.getSettings() : {};
    const producer = await t.produce({
      track,
      // The Room owns its tracks: closing a producer (transport lost, media rebuilt) must not
      // end the camera, or there would be nothing left to republish.
      stopTracks: false,
      appData: { source, ...(width && height ? { width, height } : {}) },
      ...(source === 'camera' ? { encodings: CAMERA_ENCODINGS } : {}),
      ...(track.kind === 'audio' ? { codecOptions: { opusStereo: false, opusDtx: true } } : {}),
    });
    this.producers.set(source, producer);
    const early = this.wantedLayer.get(producer.id);
    if (early !== undefined) void this.setMaxLayer(producer.id, early);
  }

  /** Stops a source's producer here and on the server (its track is the Room's). */
  async unpublish(source: TrackSource): Promise<void> {
    const p = this.producers.get(source);
    this.producers.delete(source);
    if (!p || p.closed) return;
    p.close();
    await this.signal.request('closeProducer', { producerId: p.id }).catch(() => undefined);
  }

  async unpublishAll(): Promise<void> {
    await Promise.all([...this.producers.keys()].map((s) => this.unpublish(s)));
  }

  /** Mute: the producer is paused on both sides (subscribers see consumerPaused). */
  async setMuted(source: TrackSource, muted: boolean): Promise<void> {
    const p = this.producers.get(source);
    if (!p) return;
    if (muted) {
      p.pause();
      await this.signal.request('pauseProducer', { producerId: p.id });
    } else {
      p.resume();
      await this.signal.request('resumeProducer', { producerId: p.id });
    }
  }

  /**
   * Dynacast (AIC): encode only simulcast layers 0..max (-1: none); the others' encodings are
   * switched off (RTCRtpSender.setParameters, encodings[i].active). Calls for one producer run
   * one after another (setParameters must follow its own getParameters), the newest wins.
   */
  setMaxLayer(producerId: string, max: number): Promise<void> {
    this.wantedLayer.set(producerId, max); // kept if the producer is not registered yet (publish applies it)
    const p = [...this.producers.values()].find((x) => x.id === producerId);
    if (!p) return Promise.resolve();
    const run = (this.layerQueue.get(producerId) ?? Promise.resolve()).then(async () => {
      const sender = p.rtpSender;
      const want = this.wantedLayer.get(producerId);
      if (p.closed || !sender || want === undefined) return;
      const params = sender.getParameters();
      if (params.encodings.length < 2) return;
      let changed = false;
      params.encodings.forEach((e, i) => {
        const active = i <= want;
        if (e.active !== active) changed = true;
        e.active = active;
      });
      if (changed) await sender.setParameters(params);
    }).catch(() => undefined);
    this.layerQueue.set(producerId, run);
    return run;
  }

  /** Which of a source's simulcast encodings are on (dynacast), for the app and tests. */
  activeEncodings(source: TrackSource): boolean[] {
    const sender = this.producers.get(source)?.rtpSender;
    return sender ? sender.getParameters().encodings.map((e) => e.active !== false) : [];
  }

  /** Muted by an admin: stop sending too (the server already paused the producer). */
  mutedByServer(producerId: string, muted: boolean): void {
    for (const p of this.producers.values()) {
      if (p.id !== producerId) continue;
      if (muted) p.pause();
      else p.resume();
    }
  }

  async restartIce(): Promise<void> {
    for (const t of [this.sendTransport, this.recvTransport]) {
      if (!t || t.closed) continue;
      try {
        await this.restartTransportIce(t);
      } catch {
        /* the transport is gone: a mediaReset or rebuild follows */
      }
    }
  }

  private async restartTransportIce(t: ms.Transport): Promise<void> {
    const { json } = await this.signal.request('restartIce', { transportId: t.id });
    if (!t.closed) await t.restartIce({ iceParameters: JSON.parse(json) as ms.IceParameters });
  }

  /** Each media transport's connection state (its PeerConnection's: 'new', 'connecting', 'connected', 'disconnected', 'failed'). */
  transportStates(): { producing?: string; consuming?: string } {
    const out: { producing?: string; consuming?: string } = {};
    if (this.sendTransport) out.producing = this.sendTransport.connectionState;
    if (this.recvTransport) out.consuming = this.recvTransport.connectionState;
    return out;
  }

  /** ICE restarts the SDK made by itself (a transport failed, stayed disconnected or never connected), per direction. */
  iceRestarts(): { producing: number; consuming: number } {
    const n = (t: ms.Transport | null): number => (t ? (this.iceWatches.get(t)?.restarts ?? 0) : 0);
    return { producing: n(this.sendTransport), consuming: n(this.recvTransport) };
  }

  /**
   * How each media transport reaches the SFU: the ICE candidate type of the selected pair's
   * local side ('host', 'srflx', 'prflx' or 'relay' = through TURN); undefined before ICE connects.
   */
  async connectionTypes(): Promise<{ producing?: string; consuming?: string }> {
    const out: { producing?: string; consuming?: string } = {};
    for (const [dir, t] of [['producing', this.sendTransport], ['consuming', this.recvTransport]] as const) {
      if (!t) continue;
      const local = selectedPair(await t.getStats())?.local;
      if (local) out[dir] = local;
    }
    return out;
  }

  async receiveStats(): Promise<RTCStatsReport | null> {
    return this.recvTransport && !this.recvTransport.closed ? this.recvTransport.getStats() : null;
  }

  async sendStats(): Promise<RTCStatsReport | null> {
    return this.sendTransport && !this.sendTransport.closed ? this.sendTransport.getStats() : null;
  }

  /** Closes the transports (so every producer and consumer); the tracks stay the Room's. */
  close(): void {
    this.generation++;
    this.sendTransport?.close();
    this.recvTransport?.close();
    this.sendTransport = null;
    this.recvTransport = null;
    for (const id of [...this.remote.keys()]) this.drop(id);
    this.producers.clear();
  }
}
