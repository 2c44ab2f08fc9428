import type { RouteDecision } from '../signal/messages.js';
import { Emitter } from './emitter.js';
import { P2PCall, type P2PTier } from './p2pCall.js';
import type { MediaRoute, RemoteTrack, RemoteTrackEvents } from './remoteTrack.js';
import type { SignalClient } from './signalClient.js';

export interface DirectPathEvents extends RemoteTrackEvents {
  /** Media flows directly (or through TURN) on this tier. */
  connected: [P2PTier];
  /** Every direct tier failed: the Room goes back to the SFU. */
  failed: [];
}

const CANDIDATE_TYPES = ['host', 'srflx', 'prflx', 'relay', ''] as const;
type CandidateType = (typeof CANDIDATE_TYPES)[number];
const candidateType = (s: string): CandidateType | undefined => CANDIDATE_TYPES.find((c) => c === s);

/**
 * Media straight to the one other participant, as the server's route decision says (the P2P
 * and TURN tiers): a P2PCall, the tracks it receives, and the route reports that train the
 * server's planner.
 */
export class DirectPath extends Emitter<DirectPathEvents> {
  readonly remote = new Map<string, RemoteTrack>();
  private readonly call: P2PCall;

  constructor(
    private readonly signal: SignalClient,
    readonly decision: RouteDecision & { peerIdentity: string },
    local: () => Iterable<[string, MediaStreamTrack]>,
    blockDirect: boolean,
  ) {
    super();
    const call = (this.call = new P2PCall(signal, decision, signal.join.iceServers ?? [], local, blockDirect));
    call.on('track', ({ track, receiver, source }) => {
      const r: RemoteTrack = {
        producerId: `p2p:${track.id}`,
        participantSid: signal.participants.get(decision.peerIdentity)?.sid ?? '',
        participantIdentity: decision.peerIdentity,
        kind: track.kind === 'audio' ? 'audio' : 'video',
        source,
        track,
        route: call.tier ?? 'p2p',
        receiver,
        getStats: () => receiver.getStats(),
      };
      this.remote.set(r.producerId, r);
      track.addEventListener('ended', () => this.drop(r.producerId));
      this.emit('trackSubscribed', r);
    });
    call.on('connected', (tier) => {
      for (const r of this.remote.values()) r.route = tier;
      this.emit('connected', tier);
      void this.report(tier, true);
    });
    call.on('attemptFailed', (tier) => {
      this.dropAll();
      void this.report(tier, false);
    });
    call.on('failed', () => this.emit('failed'));
  }

  get callId(): string {
    return this.decision.callId;
  }

  start(): void {
    this.call.start();
  }

  setTrack(source: string, track: MediaStreamTrack | null): void {
    this.call.setTrack(source, track);
  }

  /** 'relay' when either end of the selected ICE pair is a TURN candidate, else the local type. */
  async connectionType(): Promise<string | undefined> {
    const st = await this.call.stats();
    return st ? (st.relayed ? 'relay' : st.candidateType || undefined) : undefined;
  }

  /** Tells the server what this call got on a tier (route_performance, planner training). */
  async report(tier: MediaRoute, connected: boolean): Promise<void> {
    const st = connected && tier !== 'sfu' ? await this.call.stats().catch(() => null) : null;
    const type = st ? candidateType(st.candidateType) : undefined;
    await this.signal
      .request('routeReport', {
        callId: this.decision.callId,
        tier,
        connected,
        ...(st?.rttMs !== undefined ? { rttMs: st.rttMs } : {}),
        ...(type ? { candidateType: type } : {}),
      })
      .catch(() => undefined);
  }

  private drop(producerId: string): void {
    const r = this.remote.get(producerId);
    if (!r) return;
    this.remote.delete(producerId);
    this.emit('trackUnsubscribed', r);
  }

  private dropAll(): void {
    for (const id of [...this.remote.keys()]) this.drop(id);
  }

  close(): void {
    this.call.close();
    this.dropAll();
  }
}
