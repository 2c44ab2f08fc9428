import type { Logger } from 'pino';
import { CircuitBreaker } from '../util/circuitBreaker.js';
import { adviceResponse, type AdviceRequest, type AdviceResponse } from './advice.js';

export interface AiCoreOptions {
  /** Base URL; the node POSTs to `${endpoint}/v1/aic/advice`. */
  endpoint: string;
  timeoutMs: number;
  failureThreshold: number;
  openMs: number;
  /** The largest answer read (bytes); a longer one is an error. */
  maxResponseBytes: number;
}

export type AdviceOutcome = 'ok' | 'timeout' | 'error' | 'invalid' | 'open' | 'closed';

export interface AiCoreObserver {
  request(outcome: AdviceOutcome, seconds: number | undefined): void;
  breaker(open: boolean): void;
}

/**
 * The AI core's HTTP client: one POST per room per interval, a timeout per request, and a
 * circuit breaker so a dead or slow AI core costs nothing but the local policy. Owns its
 * in-flight requests: close() aborts them.
 */
export class AiCoreClient {
  private readonly breaker: CircuitBreaker;
  private readonly url: string;
  private readonly inflight = new Set<AbortController>();
  private closed = false;

  constructor(
    private readonly opts: AiCoreOptions,
    private readonly observer: AiCoreObserver,
    private readonly log: Logger,
    now: () => number = Date.now,
  ) {
    this.breaker = new CircuitBreaker(opts.failureThreshold, opts.openMs, now);
    this.url = `${opts.endpoint.replace(/\/+$/, '')}/v1/aic/advice`;
  }

  get state(): 'closed' | 'open' | 'half-open' {
    return this.breaker.state;
  }

  /** The advice for one room, or why there is none (then the local policy decides alone). */
  async advise(req: AdviceRequest): Promise<{ outcome: AdviceOutcome; advice?: AdviceResponse }> {
    if (this.closed) return { outcome: 'closed' };
    if (!this.breaker.allow()) {
      this.observer.request('open', undefined);
      return { outcome: 'open' };
    }
    const ac = new AbortController();
    this.inflight.add(ac);
    const timer = setTimeout(() => ac.abort(new DOMException('AI core timeout', 'TimeoutError')), this.opts.timeoutMs);
    const t0 = process.hrtime.bigint();
    let outcome: AdviceOutcome = 'error';
    let advice: AdviceResponse | undefined;
    try {
      const res = await fetch(this.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/json' },
        body: JSON.stringify(req),
        signal: ac.signal,
      });
      const body = await readBounded(res, this.opts.maxResponseBytes);
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      let json: unknown;
      try {
        json = JSON.parse(body);
      } catch {
        outcome = 'invalid';
        throw new Error('answer is not JSON');
      }
      const parsed = adviceResponse.safeParse(json);
      if (!parsed.success) {
        outcome = 'invalid';
        throw new Error(`answer does not follow the contract: ${parsed.error.issues[0]?.path.join('.') ?? ''} ${parsed.error.issues[0]?.message ?? ''}`);
      }
      advice = parsed.data;
      outcome = 'ok';
    } catch (err) {
      if (this.closed) return { outcome: 'closed' };
      if (ac.signal.aborted) outcome = 'timeout';
      this.log.debug({ err: (err as Error).message, room: req.room, outcome }, 'AI core advice failed; local policy');
    } finally {
      clearTimeout(timer);
      this.inflight.delete(ac);
    }
    const wasOpen = this.breaker.state !== 'closed';
    if (outcome === 'ok') this.breaker.success();
    else this.breaker.failure();
    const isOpen = this.breaker.state !== 'closed';
    if (isOpen !== wasOpen) {
      this.observer.breaker(isOpen);
      if (isOpen) this.log.warn({ url: this.url, openMs: this.opts.openMs, outcome }, 'AI core circuit open: local policy only');
      else this.log.info({ url: this.url }, 'AI core circuit closed: advice applied again');
    }
    this.observer.request(outcome, Number(process.hrtime.bigint() - t0) / 1e9);
    return advice ? { outcome, advice } : { outcome };
  }

  close(): void {
    this.closed = true;
    for (const ac of this.inflight) ac.abort();
    this.inflight.clear();
  }
}

/** The response body as text, refusing more than `max` bytes (the AI core is not trusted with memory). */
async function readBounded(res: Response, max: number): Promise<string> {
  const declared = Number(res.headers.get('content-length') ?? NaN);
  if (declared > max) {
    await res.body?.cancel().catch(() => undefined);
    throw new Error(`answer of ${declared} bytes is over ${max}`);
  }
  if (!res.body) return '';
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let n = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    n += value.byteLength;
    if (n > max) {
      await reader.cancel().catch(() => undefined);
      throw new Error(`answer is over ${max} bytes`);
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks).toString('utf8');
}
