/** The selected ICE candidate pair of a connection, from its RTCStatsReport. */
export interface SelectedPair {
  /** Candidate types: 'host', 'srflx', 'prflx' or 'relay' (TURN). */
  local: string;
  remote: string;
  rttMs?: number;
}

/** undefined until ICE has selected a pair. */
export function selectedPair(report: RTCStatsReport): SelectedPair | undefined {
  let pairId: string | undefined;
  report.forEach((s: { type: string; selectedCandidatePairId?: string }) => {
    if (s.type === 'transport' && s.selectedCandidatePairId) pairId = s.selectedCandidatePairId;
  });
  const pair = pairId ? (report.get(pairId) as { localCandidateId?: string; remoteCandidateId?: string; currentRoundTripTime?: number } | undefined) : undefined;
  if (!pair) return undefined;
  const type = (id: string | undefined): string => (id ? ((report.get(id) as { candidateType?: string } | undefined)?.candidateType ?? '') : '');
  return {
    local: type(pair.localCandidateId),
    remote: type(pair.remoteCandidateId),
    ...(pair.currentRoundTripTime !== undefined ? { rttMs: pair.currentRoundTripTime * 1000 } : {}),
  };
}
