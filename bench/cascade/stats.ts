// Percentiles and the "range over runs" formatting of bench/cascade.

/** Nearest-rank percentile (NaN for no samples). */
export function pct(xs: readonly number[], p: number): number {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!;
}

export const f = (x: number, d = 2): string => (Number.isFinite(x) ? x.toFixed(d) : '-');

/** "min–max" of the finite values (one value alone if they are equal; '-' if none). */
export function range(xs: readonly number[], d = 2): string {
  const v = xs.filter(Number.isFinite);
  if (v.length === 0) return '-';
  const lo = Math.min(...v);
  const hi = Math.max(...v);
  return f(lo, d) === f(hi, d) ? f(lo, d) : `${f(lo, d)}–${f(hi, d)}`;
}

export interface Quantiles {
  n: number;
  p50: number;
  p99: number;
  max: number;
}

export function quantiles(xs: readonly number[]): Quantiles {
  return { n: xs.length, p50: pct(xs, 50), p99: pct(xs, 99), max: xs.length ? Math.max(...xs) : Number.NaN };
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export async function eventually(check: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

/** Runs `fn` over `items` with at most `limit` in flight. */
export async function pool<T, R>(items: readonly T[], limit: number, fn: (x: T, i: number) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    for (let i = next++; i < items.length; i = next++) out[i] = await fn(items[i]!, i);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}
