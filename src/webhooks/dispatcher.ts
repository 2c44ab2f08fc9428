import { createHash } from 'node:crypto';
import jwt from 'jsonwebtoken';
import { Counter, Gauge, type Registry } from 'prom-client';
import type { Logger } from 'pino';
import type { Database } from '../db/database.js';
import { storableString } from '../util/text.js';

interface Row {
  id: string;
  room_name: string;
  url: string;
  body: string;
  attempts: number;
  next_attempt_at: Date;
}

/** LiveKit's webhook signature: a JWT whose sha256 claim is the base64 SHA-256 of the body. */
export function signWebhook(body: string, apiKey: string, secret: string): string {
  const sha256 = createHash('sha256').update(body).digest('base64');
  return jwt.sign({ sha256 }, secret, { algorithm: 'HS256', issuer: apiKey, expiresIn: 600, notBefore: 0 });
}

export interface DispatcherOptions {
  pollMs: number;
  timeoutMs: number;
  maxBackoffMs: number;
  /** Attempts per event; after the last failed one the row is dead (dead_at) and skipped. */
  maxAttempts: number;
}

/**
 * Delivers the webhook outbox: at least once, in order per room and URL (only the oldest
 * undelivered row of each (room, url) is tried), retried with exponential backoff while a
 * receiver is down. An event that fails `maxAttempts` times is marked dead (kept in the
 * outbox with its last error, counted, listed by GET /api/v1/webhooks/dead) so one event a
 * receiver never accepts cannot hold its room's queue. State lives in the database, so a
 * restart loses nothing.
 */
export class WebhookDispatcher {
  private timer: NodeJS.Timeout | undefined;
  private busy = false;
  private readonly delivered: Counter;
  private readonly failed: Counter;
  private readonly dead: Counter;

  constructor(
    private readonly db: Database,
    private readonly signer: { apiKey: string; secret: string },
    registry: Registry,
    private readonly log: Logger,
    private readonly opts: DispatcherOptions = { pollMs: 200, timeoutMs: 5000, maxBackoffMs: 30_000, maxAttempts: 30 },
  ) {
    this.delivered = new Counter({ name: 'auralink_webhooks_delivered_total', help: 'Webhook deliveries acknowledged (2xx)', registers: [registry] });
    this.failed = new Counter({ name: 'auralink_webhooks_failed_total', help: 'Webhook delivery attempts that failed (retried)', registers: [registry] });
    this.dead = new Counter({
      name: 'auralink_webhooks_dead_total',
      help: 'Webhooks given up after webhook.max_attempts failed attempts (kept in the outbox, dead_at set)',
      registers: [registry],
    });
    new Gauge({
      name: 'auralink_webhooks_pending',
      help: 'Webhooks in the outbox not yet delivered',
      registers: [registry],
      async collect() {
        try {
          const r = await db.query<{ n: string }>('SELECT count(*) AS n FROM webhook_outbox WHERE delivered_at IS NULL AND dead_at IS NULL');
          this.set(Number(r.rows[0]?.n ?? 0));
        } catch {
          /* database away: keep the last value */
        }
      },
    });
  }

  start(): void {
    this.timer = setInterval(() => void this.tick(), this.opts.pollMs);
    this.timer.unref();
  }

  private async tick(): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    try {
      const { rows } = await this.db.query<Row>(
        `SELECT id, room_name, url, body, attempts, next_attempt_at FROM webhook_outbox WHERE delivered_at IS NULL AND dead_at IS NULL ORDER BY id LIMIT 500`,
      );
      const heads = new Map<string, Row>();
      for (const r of rows) {
        const k = `${r.room_name}\n${r.url}`;
        if (!heads.has(k)) heads.set(k, r);
      }
      const now = Date.now();
      await Promise.all([...heads.values()].filter((r) => new Date(r.next_attempt_at).getTime() <= now).map((r) => this.deliver(r)));
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'webhook outbox unavailable');
    } finally {
      this.busy = false;
    }
  }

  private async deliver(r: Row): Promise<void> {
    // Claim the row first: nodes of a cluster share the outbox, and only the one whose claim
    // lands sends it (the claim lapses after the timeout if that node dies mid-delivery).
    const claim = await this.db.query(
      `UPDATE webhook_outbox SET next_attempt_at = now() + ($2 || ' milliseconds')::interval WHERE id = $1 AND delivered_at IS NULL AND dead_at IS NULL AND next_attempt_at <= now() RETURNING id`,
      [r.id, String(this.opts.timeoutMs + 1000)],
    );
    if (claim.rows.length === 0) return;
    let error: string | null = null;
    try {
      const res = await fetch(r.url, {
        method: 'POST',
        headers: { 'content-type': 'application/webhook+json', authorization: signWebhook(r.body, this.signer.apiKey, this.signer.secret) },
        body: r.body,
        signal: AbortSignal.timeout(this.opts.timeoutMs),
      });
      if (!res.ok) error = `HTTP ${res.status}`;
      await res.body?.cancel().catch(() => undefined);
    } catch (err) {
      error = (err as Error).message;
    }
    if (error === null) {
      this.delivered.inc();
      await this.db.query('UPDATE webhook_outbox SET delivered_at = now(), attempts = attempts + 1 WHERE id = $1', [r.id]);
      return;
    }
    this.failed.inc();
    error = storableString(error);
    if (r.attempts + 1 >= this.opts.maxAttempts) {
      await this.db.query('UPDATE webhook_outbox SET attempts = attempts + 1, last_error = $2, dead_at = now() WHERE id = $1', [r.id, error]);
      this.dead.inc();
      this.log.warn({ id: r.id, room: r.room_name, url: r.url, attempts: r.attempts + 1, err: error }, 'webhook given up: dead, the room queue moves on');
      return;
    }
    const backoff = Math.min(this.opts.maxBackoffMs, 250 * 2 ** Math.min(r.attempts, 10));
    await this.db.query(
      `UPDATE webhook_outbox SET attempts = attempts + 1, last_error = $2, next_attempt_at = now() + ($3 || ' milliseconds')::interval WHERE id = $1`,
      [r.id, error, String(backoff)],
    );
  }

  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    while (this.busy) await new Promise((res) => setTimeout(res, 10));
  }
}
