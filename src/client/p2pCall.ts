import type { RelaySignal, RouteDecision } from '../signal/messages.js';
import { Emitter } from './emitter.js';
import { selectedPair } from './selectedPair.js';
import type { SignalClient } from './signalClient.js';

export type P2PTier = 'p2p' | 'turn';

export interface P2PCallEvents extends Record<string, unknown[]> {
  /** ICE connected on this tier. */
  connected: [P2PTier];
  /** An attempt did not connect in time (or failed): the next tier is being tried. */
  attemptFailed: [P2PTier];
  track: [{ track: MediaStreamTrack; receiver: RTCRtpReceiver; source: string }];
  /** Every direct tier failed: use the SFU. */
  failed: [];
}

/**
 * One direct call with one peer, as the server's RouteDecision describes it: attempt 0 is
 * ICE over every candidate (direct first; ICE itself falls back to the TURN servers'
 * relay candidates), attempt 1 (when 'turn' is a fallback) forces iceTransportPolicy 'relay';
 * each gets `timeoutMs` to connect. The tier reported is what the selected pair really is. Signalling goes over the
 * server's relay with `callId/attempt`, so both sides move between attempts together: the
 * side that gives up sends HANGUP for its attempt, and a message for a later attempt moves the
 * other side on. Negotiation is WebRTC's "perfect negotiation" (the polite side yields).
 */
export class P2PCall extends Emitter<P2PCallEvents> {
  private readonly tiers: P2PTier[];
  private attempt = -1;
  private pc: RTCPeerConnection | null = null;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private makingOffer = false;
  private readonly senders = new Map<string, RTCRtpSender>(); // by source
  private readonly streams = new Map<string, MediaStream>(); // by source
  private readonly remoteSources = new Map<string, string>(); // remote stream id -> source
  private closed = false;
  private readonly early: RelaySignal[];
  /** Local tracks are on the connection (the polite side attaches them when the first offer comes). */
  private attached = false;
  connectedTier: P2PTier | null = null;
  // Signals are applied one at a time, in arrival order: a candidate must not be added while
  // the offer before it is still being applied.
  private queue: Promise<void> = Promise.resolve();
  private readonly onRelay = (s: RelaySignal): void => {
    this.queue = this.queue.then(() => this.handle(s));
  };

  constructor(
    private readonly signal: SignalClient,
    readonly decision: RouteDecision,
    private readonly iceServers: RTCIceServer[],
    private readonly local: () => Iterable<[string, MediaStreamTrack]>,
    /** Fault injection for tests: drop remote non-relay candidates (a NAT no direct path crosses). */
    private readonly blockDirect = false,
  ) {
    super();
    const fallbacks = decision.fallbacks ?? ['sfu'];
    this.tiers = ['p2p', ...(fallbacks.includes('turn') && iceServers.length > 0 ? (['turn'] as const) : [])];
    this.early = signal.recentRelays.filter((s) => s.callId?.startsWith(`${decision.callId}/`));
    signal.on('relay', this.onRelay);
  }

  get tier(): P2PTier | undefined {
    return this.tiers[this.attempt];
  }

  start(): void {
    this.tryAttempt(0);
    // Signals for this call that came before we listened (the peer may have offered already).
    for (const s of this.early) this.onRelay(s);
    this.early.length = 0;
  }

  /** Adds or replaces the track of a source (renegotiates). */
  setTrack(source: string, track: MediaStreamTrack | null): void {
    if (!this.pc || !this.attached) return; // attached with the others when the offer comes
    const sender = this.senders.get(source);
    if (sender && track) {
      void sender.replaceTrack(track);
      return;
    }
    if (sender && !track) {
      this.pc.removeTrack(sender);
      this.senders.delete(source);
      return;
    }
    if (track) this.addTrack(source, track);
  }

  /** The selected candidate pair's local type and RTT, for reports and apps. */
  async stats(): Promise<{ candidateType: string; relayed: boolean; rttMs?: number } | null> {
    if (!this.pc) return null;
    const pair = selectedPair(await this.pc.getStats());
    return {
      candidateType: pair?.local ?? '',
      relayed: pair?.local === 'relay' || pair?.remote === 'relay',
      ...(pair?.rttMs !== undefined ? { rttMs: pair.rttMs } : {}),
    };
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.timer);
    this.signal.off('relay', this.onRelay);
    this.pc?.close();
    this.pc = null;
  }

  private send(kind: RelaySignal['kind'], extra: Partial<RelaySignal> = {}): void {
    const callId = `${this.decision.callId}/${this.attempt}`;
    void this.signal.relay({ identity: this.decision.peerIdentity!, kind, callId, ...extra }).catch(() => undefined);
  }

  private tryAttempt(attempt: number): void {
    if (this.closed) return;
    clearTimeout(this.timer);
    if (this.attempt >= 0 && this.attempt < attempt && this.pc) {
      this.emit('attemptFailed', this.tiers[this.attempt]!);
    }
    this.pc?.close();
    this.pc = null;
    this.senders.clear();
    this.attempt = attempt;
    const tier = this.tiers[attempt];
    if (!tier) {
      this.close();
      this.emit('failed');
      return;
    }
    const pc = new RTCPeerConnection({ iceServers: this.iceServers, iceTransportPolicy: tier === 'turn' ? 'relay' : 'all' });
    this.pc = pc;
    pc.onicecandidate = ({ candidate }) => {
      if (!candidate || pc !== this.pc) return;
      this.send('CANDIDATE', {
        candidate: {
          candidate: candidate.candidate,
          sdpMid: candidate.sdpMid ?? '',
          sdpMLineIndex: candidate.sdpMLineIndex ?? 0,
          usernameFragment: candidate.usernameFragment ?? '',
        },
      });
    };
    pc.onnegotiationneeded = async () => {
      if (pc !== this.pc) return;
      try {
        this.makingOffer = true;
        await pc.setLocalDescription();
        this.sendDescription(pc);
      } catch {
        /* superseded */
      } finally {
        this.makingOffer = false;
      }
    };
    pc.ontrack = ({ track, receiver, streams }) => {
      const source = (streams[0] && this.remoteSources.get(streams[0].id)) ?? (track.kind === 'audio' ? 'microphone' : 'camera');
      this.emit('track', { track, receiver, source });
    };
    pc.onconnectionstatechange = () => {
      if (pc !== this.pc) return;
      if (pc.connectionState === 'connected') {
        clearTimeout(this.timer);
        // ICE may have chosen a TURN candidate even on the first attempt: the tier is what the
        // selected pair really is.
        void (async () => {
          let st = await this.stats();
          // Right at 'connected' the stats may not name the selected pair yet (no pair: not
          // known to be relayed): asked again briefly before the tier is decided.
          for (let i = 0; i < 10 && pc === this.pc && st && !st.candidateType; i++) {
            await new Promise((r) => setTimeout(r, 100));
            st = await this.stats();
          }
          if (pc !== this.pc) return;
          const got: P2PTier = tier === 'turn' || st?.relayed ? 'turn' : 'p2p';
          this.connectedTier = got;
          this.emit('connected', got);
        })();
      } else if (pc.connectionState === 'failed' && this.connectedTier === null) {
        this.giveUp();
      }
    };
    this.attached = false;
    if (!this.decision.polite) {
      // The impolite side offers, with a transceiver of each kind at least, so the polite side
      // can answer with its own tracks on them: no offer from both sides at once (glare).
      for (const [source, track] of this.local()) this.addTrack(source, track);
      const kinds = new Set(pc.getTransceivers().map((t) => t.receiver.track.kind));
      for (const kind of ['audio', 'video'] as const) if (!kinds.has(kind)) pc.addTransceiver(kind, { direction: 'recvonly' });
      this.attached = true;
    }
    this.timer = setTimeout(() => this.giveUp(), this.decision.timeoutMs ?? 6000);
  }

  private giveUp(): void {
    this.send('HANGUP');
    this.tryAttempt(this.attempt + 1);
  }

  private addTrack(source: string, track: MediaStreamTrack): void {
    this.senders.set(source, this.pc!.addTrack(track, this.streamFor(source)));
  }

  /** One stream per source, so the peer can tell camera from screen share by stream id. */
  private streamFor(source: string): MediaStream {
    let stream = this.streams.get(source);
    if (!stream) this.streams.set(source, (stream = new MediaStream()));
    return stream;
  }

  /** Polite side, first offer: our tracks ride the offered transceivers of their kind. */
  private async attachToOffer(pc: RTCPeerConnection): Promise<void> {
    this.attached = true;
    const free = pc.getTransceivers().filter((t) => t.mid !== null && !t.sender.track);
    const later: [string, MediaStreamTrack][] = [];
    for (const [source, track] of this.local()) {
      const t = free.find((x) => x.receiver.track.kind === track.kind);
      if (!t) {
        later.push([source, track]);
        continue;
      }
      free.splice(free.indexOf(t), 1);
      t.direction = 'sendrecv';
      await t.sender.replaceTrack(track);
      t.sender.setStreams(this.streamFor(source));
      this.senders.set(source, t.sender);
    }
    // More tracks than offered transceivers: added now, negotiated by us once stable.
    for (const [source, track] of later) this.addTrack(source, track);
  }

  /**
   * Sends our current local description under its real type (with concurrent negotiation a
   * description started as an offer can end up an answer), with which stream carries which
   * source.
   */
  private sendDescription(pc: RTCPeerConnection): void {
    const d = pc.localDescription;
    if (!d || pc !== this.pc) return;
    const map: Record<string, string> = {};
    for (const [source, stream] of this.streams) map[stream.id] = source;
    this.send(d.type === 'offer' ? 'OFFER' : 'ANSWER', { sdp: d.sdp, streams: JSON.stringify(map) });
  }

  private learnStreams(json: string | undefined): void {
    if (!json) return;
    try {
      for (const [id, source] of Object.entries(JSON.parse(json) as Record<string, unknown>)) {
        if (typeof source === 'string') this.remoteSources.set(id, source);
      }
    } catch {
      /* optional hint */
    }
  }

  /** blockDirect: candidates also travel inside descriptions (renegotiations): drop those too. */
  private filterSdp(sdp: string): string {
    if (!this.blockDirect) return sdp;
    return sdp
      .split('\r\n')
      .filter((l) => !l.startsWith('a=candidate:') || / typ relay /.test(l))
      .join('\r\n');
  }

  private async handle(s: RelaySignal): Promise<void> {
    if (s.identity !== this.decision.peerIdentity || !s.callId?.startsWith(`${this.decision.callId}/`)) return;
    const attempt = Number(s.callId.slice(this.decision.callId.length + 1));
    if (!Number.isInteger(attempt) || attempt < this.attempt) return; // stale
    if (attempt > this.attempt) {
      if (this.connectedTier !== null) return;
      this.tryAttempt(attempt); // the peer moved on first
    }
    const pc = this.pc;
    if (!pc) return;
    this.learnStreams(s.streams);
    try {
      switch (s.kind) {
        case 'OFFER': {
          const collision = this.makingOffer || pc.signalingState !== 'stable';
          if (collision && !this.decision.polite) return; // the impolite side ignores it
          await pc.setRemoteDescription({ type: 'offer', sdp: this.filterSdp(s.sdp!) });
          if (!this.attached) await this.attachToOffer(pc);
          await pc.setLocalDescription();
          this.sendDescription(pc);
          break;
        }
        case 'ANSWER':
          // An answer to an offer we since rolled back (glare, polite side) is moot.
          if (pc.signalingState !== 'have-local-offer') return;
          await pc.setRemoteDescription({ type: 'answer', sdp: this.filterSdp(s.sdp!) });
          break;
        case 'CANDIDATE': {
          const c = s.candidate!;
          if (this.blockDirect && !/ typ relay /.test(c.candidate)) return;
          await pc.addIceCandidate({ candidate: c.candidate, sdpMid: c.sdpMid || null, sdpMLineIndex: c.sdpMLineIndex ?? null });
          break;
        }
        case 'HANGUP':
          if (this.connectedTier === null) this.tryAttempt(attempt + 1);
          break;
      }
    } catch {
      /* a stale description or candidate for a renegotiated session */
    }
  }
}
