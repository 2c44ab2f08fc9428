export interface MeshRtt {
  nodeId: string;
  rttMs: number;
  lossPct: number;
}

/** RTT to each probe target by HTTP (`samples` probes, the lowest kept; failures count as loss). */
export async function measureMesh(targets: readonly { nodeId: string; url: string }[], samples: number, timeoutMs: number): Promise<MeshRtt[]> {
  const out: MeshRtt[] = [];
  for (const t of targets) {
    let best = Infinity;
    let lost = 0;
    for (let i = 0; i < samples; i++) {
      const t0 = performance.now();
      try {
        const res = await fetch(t.url, { cache: 'no-store', signal: AbortSignal.timeout(timeoutMs) });
        await res.arrayBuffer();
        if (!res.ok) throw new Error(String(res.status));
        best = Math.min(best, performance.now() - t0);
      } catch {
        lost++;
      }
    }
    if (Number.isFinite(best)) out.push({ nodeId: t.nodeId, rttMs: Math.round(best * 100) / 100, lossPct: Math.round((lost / samples) * 100) });
  }
  return out;
}
