import { Device } from 'mediasoup-client';
import type { types as ms } from 'mediasoup-client';
import type { ParticipantInfo, ProducerInfo, RouteDecision, TransportInfo } from '../signal/messages.js';
import { Emitter } from './emitter.js';
import { P2PCall } from './p2pCall.js';
import { selectedPair } from './selectedPair.js';
import { SignalClient, type SignalClientOptions } from './signalClient.js';

export type TrackSource = 'camera' | 'microphone' | 'screen_share' | 'screen_share_audio';

export interface RemoteTrack {
  producerId: string;
  participantSid: string;
  participantIdentity: string;
  kind: 'audio' | 'video';
  source: string;
  track: MediaStreamTrack;
  /** How it reaches us: an SFU consumer, or a direct (P2P / TURN-relayed) peer connection. */
  route: MediaRoute;
  consumer?: ms.Consumer;
  receiver?: RTCRtpReceiver;
  /** The receiving side's RTCStatsReport for this track. */
  getStats(): Promise<RTCStatsReport>;
}

export type MediaRoute = 'sfu' | 'p2p' | 'turn';

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
  /** Media moved to another route (P2P connected, fell back to TURN or the SFU). */
  routeChanged: [MediaRoute];
  disconnected: [{ code: number; reason: string }];
}

export interface RoomOptions extends SignalClientOptions {
  /** 'relay' sends all media through the TURN servers the server hands out. */
  iceTransportPolicy?: RTCIceTransportPolicy;
  /**
   * Accept direct routes: in a two-party room the server may tell both sides to connect
   * peer to peer (then via TURN, then the SFU if that fails); the SDK switches by itself.
   */
  p2p?: boolean;
  /** Fault injection for tests: drop the peer's non-relay candidates, so direct ICE fails. */
  p2pBlockDirect?: boolean;
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
  /** Where our media goes now. */
  route: MediaRoute = 'sfu';
  private p2pCall: P2PCall | null = null;

  private constructor(
    readonly signal: SignalClient,
    private readonly opts: RoomOptions,
  ) {
    super();
  }

  static async connect(url: string, token: string, opts: RoomOptions = {}): Promise<Room> {
    const signal = await SignalClient.connect(url, token, opts);
    // (opts.p2p is passed on: the server sends route decisions only to clients that say p2p=1.)
    const room = new Room(signal, opts);
    // Events that came with the join (before anyone could listen) are already in its state.
    signal.on('activeSpeaker', ({ participantSid }) => (room.activeSpeakerSid ??= participantSid));
    const caps = await signal.routerCapabilities();
    await room.device.load({ routerRtpCapabilities: JSON.parse(caps) as ms.RtpCapabilities });
    room.wire();
    await room.subscribeAll();
    if (signal.route) void room.onRoute(signal.route);
    // RTT to nearby mesh nodes, for the server's route planner (in the background).
    void signal.measureMesh().catch(() => undefined);
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
      for (const r of this.remote.values()) if (r.consumer?.id === consumerId) this.dropRemote(r.producerId);
    });
    s.on('activeSpeaker', ({ participantSid }) => {
      this.activeSpeakerSid = participantSid;
      this.emit('activeSpeaker', { participantSid });
    });
    s.on('mediaReset', () => void this.rebuildMedia());
    s.on('route', (d) => void this.onRoute(d));
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
      const local = selectedPair(await t.getStats())?.local;
      if (local) out[dir] = local;
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
        route: 'sfu',
        consumer,
        getStats: () => consumer.getStats(),
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
    r.consumer?.close();
    this.emit('trackUnsubscribed', r);
  }

  /** Publishes a local track under a source (replacing what that source had). */
  async publish(track: MediaStreamTrack, source: TrackSource): Promise<void> {
    await this.unpublish(source, this.local.get(source)?.track !== track);
    const entry = { track, producer: null as ms.Producer | null };
    this.local.set(source, entry);
    if (this.p2pCall) this.p2pCall.setTrack(source, track);
    else entry.producer = await this.produce(track, source);
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
    this.p2pCall?.setTrack(source, null);
    if (!e.producer && stopTrack) e.track.stop();
    if (e.producer && !e.producer.closed) {
      const id = e.producer.id;
      e.producer.close();
      if (stopTrack) e.track.stop();
      await this.signal.request({ closeProducer: { producerId: id } }).catch(() => undefined);
    }
  }

  /** Mute: the producer is paused on both sides (subscribers see consumerPaused). */
  async setMuted(source: TrackSource, muted: boolean): Promise<void> {
    const e = this.local.get(source);
    if (e && this.p2pCall) e.track.enabled = !muted; // direct: nothing on the server to pause
    const p = e?.producer;
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
    if (!this.p2pCall) await this.republish();
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

  private async republish(): Promise<void> {
    for (const [source, e] of this.local) {
      if (!e.producer && e.track.readyState === 'live') e.producer = await this.produce(e.track, source).catch(() => null);
    }
  }

  // ---------- routes (P2P tier) ----------

  private async onRoute(d: RouteDecision): Promise<void> {
    if (d.tier === 'p2p' && d.peerIdentity) return this.enterP2P(d);
    if (this.p2pCall?.decision.callId === d.callId || d.tier === 'sfu') await this.toSfu();
  }

  private async enterP2P(d: RouteDecision): Promise<void> {
    this.leaveP2P();
    // Our SFU producers are not needed while media goes direct: free them (tracks stay).
    for (const e of this.local.values()) {
      const p = e.producer;
      e.producer = null;
      if (p && !p.closed) {
        p.close();
        void this.signal.request({ closeProducer: { producerId: p.id } }).catch(() => undefined);
      }
    }
    const iceServers = (this.signal.join.iceServers ?? []) as RTCIceServer[];
    const call = new P2PCall(this.signal, d, iceServers, () => [...this.local].map(([s, e]) => [s, e.track] as [string, MediaStreamTrack]), this.opts.p2pBlockDirect);
    this.p2pCall = call;
    call.on('track', ({ track, receiver, source }) => {
      const peer = this.signal.participants.get(d.peerIdentity!);
      const r: RemoteTrack = {
        producerId: `p2p:${track.id}`,
        participantSid: peer?.sid ?? '',
        participantIdentity: d.peerIdentity!,
        kind: track.kind as 'audio' | 'video',
        source,
        track,
        route: call.tier ?? 'p2p',
        receiver,
        getStats: () => receiver.getStats(),
      };
      this.remote.set(r.producerId, r);
      track.addEventListener('ended', () => this.dropRemote(r.producerId));
      this.emit('trackSubscribed', r);
    });
    call.on('connected', (tier) => {
      if (this.p2pCall !== call) return;
      for (const r of this.remote.values()) if (r.receiver) r.route = tier;
      this.setRoute(tier);
      void this.reportRoute(d.callId, tier, true);
    });
    call.on('attemptFailed', (tier) => {
      this.dropP2PTracks();
      void this.reportRoute(d.callId, tier, false);
    });
    call.on('failed', () => {
      if (this.p2pCall !== call) return;
      void this.toSfu().then(() => this.reportRoute(d.callId, 'sfu', true));
    });
    call.start();
  }

  private leaveP2P(): void {
    this.p2pCall?.close();
    this.p2pCall = null;
    this.dropP2PTracks();
  }

  private dropP2PTracks(): void {
    for (const r of [...this.remote.values()]) if (r.receiver) this.dropRemote(r.producerId);
  }

  private async toSfu(): Promise<void> {
    this.leaveP2P();
    await this.republish();
    await this.subscribeAll();
    this.setRoute('sfu');
  }

  private setRoute(route: MediaRoute): void {
    if (this.route === route) return;
    this.route = route;
    this.emit('routeChanged', route);
  }

  private async reportRoute(callId: string, tier: MediaRoute, connected: boolean): Promise<void> {
    const st = connected && tier !== 'sfu' ? await this.p2pCall?.stats().catch(() => null) : null;
    await this.signal
      .request({
        routeReport: {
          callId,
          tier,
          connected,
          ...(st?.rttMs !== undefined ? { rttMs: st.rttMs } : {}),
          ...(st?.candidateType ? { candidateType: st.candidateType } : {}),
        },
      })
      .catch(() => undefined);
  }

  /**
   * The direct call's path: 'relay' when either end of the selected ICE pair is a TURN
   * candidate, else the local candidate type ('host', 'srflx', 'prflx'); undefined off P2P.
   */
  async p2pConnectionType(): Promise<string | undefined> {
    const st = await this.p2pCall?.stats();
    return st ? (st.relayed ? 'relay' : st.candidateType || undefined) : undefined;
  }

  async leave(): Promise<void> {
    this.leaveP2P();
    for (const e of this.local.values()) e.track.stop();
    this.local.clear();
    this.closeMedia();
    await this.signal.leave();
  }
}
