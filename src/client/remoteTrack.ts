import type { types as ms } from 'mediasoup-client';

export type TrackSource = 'camera' | 'microphone' | 'screen_share' | 'screen_share_audio';
const SOURCES: readonly string[] = ['camera', 'microphone', 'screen_share', 'screen_share_audio'];

export function isTrackSource(s: unknown): s is TrackSource {
  return typeof s === 'string' && SOURCES.includes(s);
}

export type MediaRoute = 'sfu' | 'p2p' | 'turn';

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

export interface RemoteTrackEvents extends Record<string, unknown[]> {
  trackSubscribed: [RemoteTrack];
  trackUnsubscribed: [RemoteTrack];
  /** The same remote track now arrives on another consumer: `track` and `consumer` changed (the old track given). */
  trackSwitched: [RemoteTrack, MediaStreamTrack, string];
  /** An announced track could not be subscribed (after retries, if its refusal could pass). */
  trackSubscriptionFailed: [TrackSubscriptionFailure];
}

export interface TrackSubscriptionFailure {
  producerId: string;
  participantSid: string;
  participantIdentity: string;
  source: string;
  /** The server's refusal (a SignalRequestError with its code) or what else stopped it. */
  error: Error;
}
