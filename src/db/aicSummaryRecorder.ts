import type { EventEmitter } from 'node:events';
import type { AicServiceEvents } from '../aic/aicService.js';
import { RowInsert } from './rowInsert.js';
import type { WriteBehind } from './writeBehind.js';

const SUMMARY = new RowInsert(
  'aic_call_summaries',
  [
    ['call_id', 'text'],
    ['node_id', 'text'],
    ['room_name', 'text'],
    ['arm', 'text'],
    ['started_at', 'timestamptz'],
    ['ended_at', 'timestamptz'],
    ['bytes_forwarded', 'double precision'],
    ['forward_all_bytes', 'double precision'],
    ['reduction_percent', 'real'],
    ['target_reduction_percent', 'real'],
    ['quality_samples', 'integer'],
    ['quality_mean', 'real'],
    ['quality_min', 'real'],
    ['below_threshold', 'integer'],
    ['decisions', 'integer'],
    ['dynacast_updates', 'integer'],
    ['advice_applied', 'integer'],
  ],
  // A room name reused within one session id cannot happen; a node restarted with the same
  // id and a re-sent summary keeps the first.
  { tail: 'ON CONFLICT (call_id, node_id) DO NOTHING' },
);

/** Each room session's AIC summary becomes an aic_call_summaries row (write-behind). */
export function recordAicSummaries(aic: EventEmitter<AicServiceEvents>, writes: WriteBehind, nodeId: string): void {
  aic.on('callSummary', (s) => {
    writes.enqueue(SUMMARY, [
      s.callId,
      nodeId,
      s.room,
      s.arm,
      s.startedAt,
      s.endedAt,
      s.bytesForwarded,
      s.forwardAllBytes,
      s.reductionPercent,
      s.targetReductionPercent,
      s.qualitySamples,
      s.qualityMean,
      s.qualityMin,
      s.belowThreshold,
      s.decisions,
      s.dynacastUpdates,
      s.adviceApplied,
    ]);
  });
}
