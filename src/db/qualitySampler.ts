import type { Logger } from 'pino';
import type { SfuService } from '../sfu/sfuService.js';
import { RowInsert } from './rowInsert.js';
import type { WriteBehind } from './writeBehind.js';

const METRIC = new RowInsert(
  'quality_metrics',
  [
    ['call_id', 'text'],
    ['participant_id', 'text'],
    ['track_id', 'text'],
    ['recorded_at', 'timestamptz'],
    ['packet_loss_percent', 'real'],
    ['jitter_ms', 'real'],
    ['rtt_ms', 'real'],
    ['bitrate_kbps', 'real'],
    ['score', 'real'],
  ],
  { fixed: [['connection_type', "'sfu'"]] },
);

interface RtpStat {
  type: string;
  kind?: string;
  bitrate?: number;
  fractionLost?: number;
  jitter?: number;
  roundTripTime?: number;
  score?: number;
  clockRate?: number;
}

/**
 * Every `intervalS`, mediasoup's stats of every producer and consumer become quality_metrics
 * rows (the seeds' fields: loss %, jitter ms, RTT ms, bitrate kbps, score 0-5; resolution and
 * fps are not in mediasoup's RTP stats and stay empty).
 */
export class QualitySampler {
  private timer: NodeJS.Timeout | undefined;
  private busy = false;

  constructor(
    private readonly sfu: SfuService,
    private readonly writes: WriteBehind,
    private readonly intervalS: number,
    private readonly log: Logger,
  ) {}

  start(): void {
    this.timer = setInterval(() => void this.sample(), this.intervalS * 1000);
    this.timer.unref();
  }

  private async sample(): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    try {
      const now = new Date();
      for (const sfuRoom of this.sfu.rooms.values()) {
        const callId = sfuRoom.roomSid;
        for (const peer of sfuRoom.peers.values()) {
          const sources: [string, { getStats(): Promise<unknown[]> }, string][] = [
            ...[...peer.producers.values()].map((p) => [p.producer.id, p.producer, 'inbound-rtp'] as [string, { getStats(): Promise<unknown[]> }, string]),
            ...[...peer.consumers.values()].map((c) => [c.consumer.id, c.consumer, 'outbound-rtp'] as [string, { getStats(): Promise<unknown[]> }, string]),
          ];
          for (const [trackId, src, want] of sources) {
            const stats = ((await src.getStats().catch(() => [])) as RtpStat[]).find((s) => s.type === want);
            if (!stats) continue;
            this.writes.enqueue(METRIC, [
              callId,
              peer.sid,
              trackId,
              now,
              ((stats.fractionLost ?? 0) / 256) * 100,
              stats.jitter !== undefined && stats.clockRate ? (stats.jitter / stats.clockRate) * 1000 : null,
              stats.roundTripTime ?? null,
              (stats.bitrate ?? 0) / 1000,
              stats.score !== undefined ? stats.score / 2 : null,
            ]);
          }
        }
      }
    } catch (err) {
      this.log.warn({ err }, 'quality sampling failed');
    } finally {
      this.busy = false;
    }
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }
}
