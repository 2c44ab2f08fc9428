import type { ParticipantInfo, RouteDecision } from '../signal/messages.js';
import { AdaptiveStream } from './adaptiveStream.js';
import { DirectPath } from './directPath.js';
import { Emitter } from './emitter.js';
import type { MediaRoute, RemoteTrack, TrackSource, TrackSubscriptionFailure } from './remoteTrack.js';
import { SfuPath } from './sfuPath.js';
import { SignalClient, type SignalClientOptions } from './signalClient.js';

export type { MediaRoute, RemoteTrack, TrackSource, TrackSubscriptionFailure };

export interface RoomEvents extends Record<string, unknown[]> {
  participantJoined: [ParticipantInfo];
  participantLeft: [{ sid: string; identity: string }];
  trackSubscribed: [RemoteTrack];
  trackUnsubscribed: [RemoteTrack];
  /**
   * The server moved a remote track to another consumer (its RTP hooks fell back): elements
   * given to attach() already show the new `track`; apps that wired `track` themselves swap it.
   */
  trackSwitched: [RemoteTrack];
  /** An announced track could not be subscribed: refused for good, or still unavailable after a few tries (about 3 s). */
  trackSubscriptionFailed: [TrackSubscriptionFailure];
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

/**
 * A room with media, for browsers: connect(url, token) joins, subscribes automatically to
 * every track published in the room, and publishes local camera/microphone/screen tracks.
 * Media takes one of two paths, switched by the server's route decisions: the SFU
 * (SfuPath) or straight to the other participant (DirectPath, P2P then TURN). It survives
 * signalling drops (resume + ICE restart) and media loss on the server (mediaReset:
 * transports rebuilt, tracks republished) without anything from the app.
 */
export class Room extends Emitter<RoomEvents> {
  /** Remote tracks on whichever path carries them, by producer id. */
  readonly remote = new Map<string, RemoteTrack>();
  /** The tracks the app published, by source: the Room owns them (paths only carry them). */
  private readonly local = new Map<TrackSource, MediaStreamTrack>();
  readonly sfu: SfuPath;
  private direct: DirectPath | null = null;
  /** Sid of the participant speaking most (from the SFU's active speaker detection). */
  activeSpeakerSid: string | null = null;
  /** Where our media goes now. */
  route: MediaRoute = 'sfu';
  /** Viewer-side AIC reports (created on the first attach: browsers only). */
  private adaptive: AdaptiveStream | null = null;
  /** Elements attach() gave a remote track to, by producer id (a switched track is swapped in them). */
  private readonly shown = new Map<string, Set<HTMLMediaElement>>();

  private constructor(
    readonly signal: SignalClient,
    private readonly opts: RoomOptions,
  ) {
    super();
    this.sfu = new SfuPath(signal, opts.iceTransportPolicy);
    this.sfu.on('trackSubscribed', (r) => this.addRemote(r));
    this.sfu.on('trackSwitched', (r, oldTrack, oldConsumerId) => this.switchRemote(r, oldTrack, oldConsumerId));
    this.sfu.on('trackUnsubscribed', (r) => this.removeRemote(r));
    this.sfu.on('trackSubscriptionFailed', (f) => this.emit('trackSubscriptionFailed', f));
  }

  static async connect(url: string, token: string, opts: RoomOptions = {}): Promise<Room> {
    const signal = await SignalClient.connect(url, token, opts);
    // (opts.p2p is passed on: the server sends route decisions only to clients that say p2p=1.)
    const room = new Room(signal, opts);
    // Events that came with the join (before anyone could listen) are already in its state.
    signal.on('activeSpeaker', ({ participantSid }) => (room.activeSpeakerSid ??= participantSid));
    await room.sfu.load();
    room.wire();
    await room.sfu.subscribeAll(signal.producers.values());
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

  get device(): SfuPath['device'] {
    return this.sfu.device;
  }

  private wire(): void {
    const s = this.signal;
    s.on('participantJoined', (p) => this.emit('participantJoined', p));
    s.on('participantLeft', (p) => this.emit('participantLeft', p));
    s.on('producerAdded', (p) => void this.sfu.subscribe(p));
    s.on('producerRemoved', ({ producerId }) => this.sfu.drop(producerId));
    s.on('consumerClosed', ({ consumerId }) => this.sfu.dropConsumer(consumerId));
    s.on('consumerSwitched', ({ consumerId, consumer }) => void this.sfu.switchConsumer(consumerId, consumer));
    s.on('activeSpeaker', ({ participantSid }) => {
      this.activeSpeakerSid = participantSid;
      this.emit('activeSpeaker', { participantSid });
    });
    s.on('mediaReset', () => void this.rebuildMedia());
    s.on('route', (d) => void this.onRoute(d));
    s.on('trackMuted', ({ producerId, muted }) => this.sfu.mutedByServer(producerId, muted));
    s.on('layersWanted', ({ producerId, maxSpatialLayer }) => void this.sfu.setMaxLayer(producerId, maxSpatialLayer));
    s.on('reconnecting', () => this.emit('reconnecting'));
    s.on('reconnected', ({ resumed }) => {
      this.emit('reconnected');
      // Same session: the transports still exist server-side; a new network path needs ICE
      // restarted. A fresh join lost them: rebuild.
      if (resumed) void this.sfu.restartIce();
      else void this.rebuildMedia();
    });
    s.on('closed', (e) => {
      this.adaptive?.close();
      this.adaptive = null;
      this.sfu.close();
      this.emit('disconnected', e);
    });
  }

  /**
   * Shows a remote video in `el` and reports how it is shown (size × devicePixelRatio,
   * visibility, wanted fps) to the server, which sends the layer that covers it and pauses it
   * while hidden (AIC). Returns the function that stops the reports. Direct-path tracks are
   * only shown (there is no server between the two peers).
   */
  attach(r: RemoteTrack, el: HTMLVideoElement, opts: { fps?: number } = {}): () => void {
    const stream = el.srcObject instanceof MediaStream ? el.srcObject : new MediaStream();
    if (!stream.getTracks().includes(r.track)) {
      for (const t of stream.getTracks()) if (t.kind === r.track.kind) stream.removeTrack(t);
      stream.addTrack(r.track);
    }
    if (el.srcObject !== stream) el.srcObject = stream;
    let els = this.shown.get(r.producerId);
    if (!els) this.shown.set(r.producerId, (els = new Set()));
    els.add(el);
    if (r.kind !== 'video' || !r.consumer) return () => undefined;
    const consumerId = r.consumer.id;
    this.adaptive ??= new AdaptiveStream((rep) => {
      const { consumerId: id, ...settings } = rep;
      void this.signal.request('trackSettings', { consumerId: id, ...settings }).catch(() => undefined);
    });
    return this.adaptive.attach(consumerId, el, opts.fps ?? 0);
  }

  private addRemote(r: RemoteTrack): void {
    this.remote.set(r.producerId, r);
    this.emit('trackSubscribed', r);
  }

  /** The new track replaces the old one in every element showing it; AIC reports follow the new consumer. */
  private switchRemote(r: RemoteTrack, oldTrack: MediaStreamTrack, oldConsumerId: string): void {
    for (const el of this.shown.get(r.producerId) ?? []) {
      const stream = el.srcObject;
      if (!(stream instanceof MediaStream) || !stream.getTracks().includes(oldTrack)) continue;
      // A new stream object: a media element reloads it for sure (a changed track set of the
      // same stream is not always picked up), and plays on as before.
      el.srcObject = new MediaStream([...stream.getTracks().filter((t) => t !== oldTrack), r.track]);
      if (!el.paused || el.autoplay) void el.play().catch(() => undefined);
    }
    if (r.consumer) this.adaptive?.rename(oldConsumerId, r.consumer.id);
    this.emit('trackSwitched', r);
  }

  private removeRemote(r: RemoteTrack): void {
    if (this.remote.get(r.producerId) !== r) return;
    this.remote.delete(r.producerId);
    this.shown.delete(r.producerId);
    if (r.consumer) this.adaptive?.forget(r.consumer.id);
    this.emit('trackUnsubscribed', r);
  }

  connectionTypes(): Promise<{ producing?: string; consuming?: string }> {
    return this.sfu.connectionTypes();
  }

  /** Publishes a local track under a source (replacing what that source had). */
  async publish(track: MediaStreamTrack, source: TrackSource): Promise<void> {
    await this.unpublish(source, this.local.get(source) !== track);
    this.local.set(source, track);
    if (this.direct) this.direct.setTrack(source, track);
    else await this.sfu.publish(track, source);
  }

  /** Stops publishing a source (and ends its track unless told not to). */
  async unpublish(source: TrackSource, stopTrack = true): Promise<void> {
    const track = this.local.get(source);
    if (!track) return;
    this.local.delete(source);
    this.direct?.setTrack(source, null);
    await this.sfu.unpublish(source);
    if (stopTrack) track.stop();
  }

  /** Mute: paused on both sides through the SFU (subscribers see consumerPaused); disabled when direct. */
  async setMuted(source: TrackSource, muted: boolean): Promise<void> {
    const track = this.local.get(source);
    if (track && this.direct) track.enabled = !muted; // direct: nothing on the server to pause
    await this.sfu.setMuted(source, muted);
  }

  /** Server-side media is gone: new transports, local tracks republished, room resubscribed. */
  private async rebuildMedia(): Promise<void> {
    this.sfu.close();
    if (!this.direct) await this.republish();
    await this.sfu.subscribeAll(this.signal.producers.values());
    this.emit('mediaRestored');
  }

  receiveStats(): Promise<RTCStatsReport | null> {
    return this.sfu.receiveStats();
  }

  sendStats(): Promise<RTCStatsReport | null> {
    return this.sfu.sendStats();
  }

  private async republish(): Promise<void> {
    for (const [source, track] of this.local) {
      if (!this.sfu.isPublishing(source) && track.readyState === 'live') await this.sfu.publish(track, source).catch(() => undefined);
    }
  }

  // ---------- routes ----------

  private async onRoute(d: RouteDecision): Promise<void> {
    if (d.tier === 'p2p' && d.peerIdentity) return this.enterDirect({ ...d, peerIdentity: d.peerIdentity });
    if (this.direct?.callId === d.callId || d.tier === 'sfu') await this.toSfu();
  }

  private async enterDirect(d: RouteDecision & { peerIdentity: string }): Promise<void> {
    this.leaveDirect();
    // Our SFU producers are not needed while media goes direct: free them (tracks stay).
    void this.sfu.unpublishAll();
    const path = new DirectPath(this.signal, d, () => this.local.entries(), !!this.opts.p2pBlockDirect);
    this.direct = path;
    path.on('trackSubscribed', (r) => this.addRemote(r));
    path.on('trackUnsubscribed', (r) => this.removeRemote(r));
    path.on('connected', (tier) => {
      if (this.direct === path) this.setRoute(tier);
    });
    path.on('failed', () => {
      if (this.direct !== path) return;
      void this.toSfu().then(() => path.report('sfu', true));
    });
    path.start();
  }

  private leaveDirect(): void {
    this.direct?.close();
    this.direct = null;
  }

  private async toSfu(): Promise<void> {
    this.leaveDirect();
    await this.republish();
    await this.sfu.subscribeAll(this.signal.producers.values());
    this.setRoute('sfu');
  }

  private setRoute(route: MediaRoute): void {
    if (this.route === route) return;
    this.route = route;
    this.emit('routeChanged', route);
  }

  /** The direct call's path ('relay' through TURN, else 'host', 'srflx', 'prflx'); undefined off it. */
  async p2pConnectionType(): Promise<string | undefined> {
    return this.direct?.connectionType();
  }

  async leave(): Promise<void> {
    this.adaptive?.close();
    this.adaptive = null;
    this.leaveDirect();
    for (const track of this.local.values()) track.stop();
    this.local.clear();
    this.sfu.close();
    await this.signal.leave();
  }
}
