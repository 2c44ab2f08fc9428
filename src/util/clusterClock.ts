import { Redis } from 'ioredis';
import type { Logger } from 'pino';

/** Round trips slower than this say too little about when Redis read its clock. */
const MAX_RTT_MS = 50;
/** An offset this large is worth an operator's attention (NTP is off on this host). */
const WARN_OFFSET_MS = 1000;

/**
 * Wall-clock time for whatever nodes compare with each other (leases, node-call stamps, token
 * nbf/exp, move tokens): the local clock corrected to Redis's, the cluster's one reference,
 * so a node whose clock is off does not reap its peers, drop their calls or refuse tokens.
 * Without Redis it is the local clock. `now` is a bound function: inject it where Date.now was.
 */
export class ClusterClock {
  private offset = 0;
  private timer: NodeJS.Timeout | undefined;
  private synced = false;
  private redis: Redis | undefined;

  readonly now = (): number => Date.now() + this.offset;

  constructor(private readonly log?: Logger) {}

  /** Milliseconds added to the local clock (Redis time − local time). */
  get offsetMs(): number {
    return this.offset;
  }

  /**
   * One reading: Redis's TIME against the midpoint of the round trip. Returns whether it was
   * used (a slow round trip is not).
   */
  sample(sentAt: number, redisMs: number, receivedAt: number): boolean {
    const rtt = receivedAt - sentAt;
    if (!(rtt >= 0 && rtt <= MAX_RTT_MS) || !Number.isFinite(redisMs)) return false;
    const offset = Math.round(redisMs - (sentAt + receivedAt) / 2);
    const was = this.offset;
    this.offset = offset;
    if (!this.synced || Math.abs(offset - was) > WARN_OFFSET_MS) {
      if (Math.abs(offset) > WARN_OFFSET_MS) this.log?.warn({ offsetMs: offset }, "this host's clock differs from Redis's: using Redis time for leases, node calls and tokens (check NTP)");
    }
    this.synced = true;
    return true;
  }

  /**
   * Reads Redis's TIME now and every `intervalMs` on a connection of its own (a failed read
   * keeps the last offset). Resolves after the first reading, or `firstWithinMs`.
   */
  start(url: string, intervalMs: number, firstWithinMs: number): Promise<void> {
    const redis = (this.redis = new Redis(url, { lazyConnect: false, enableOfflineQueue: false, maxRetriesPerRequest: 0, retryStrategy: () => 1000 }));
    redis.on('error', () => undefined); // the registry and the directory report Redis trouble
    const first = new Promise<void>((resolve) => {
      const t = setTimeout(resolve, firstWithinMs);
      redis.once('ready', () => void this.startReading(() => redis.time(), intervalMs).then(() => (clearTimeout(t), resolve())));
    });
    return first;
  }

  /** Reads `time` (Redis TIME: seconds, microseconds) now and every `intervalMs`. */
  startReading(time: () => Promise<(string | number)[]>, intervalMs: number): Promise<void> {
    const read = async (): Promise<void> => {
      try {
        for (let i = 0; i < 3; i++) {
          const t0 = Date.now();
          const [s = NaN, us = NaN] = await time();
          if (this.sample(t0, Number(s) * 1000 + Math.floor(Number(us) / 1000), Date.now())) return;
        }
      } catch {
        /* Redis away: keep the last offset */
      }
    };
    this.timer = setInterval(() => void read(), intervalMs);
    this.timer.unref();
    return read();
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.redis?.disconnect();
    this.redis = undefined;
  }
}
