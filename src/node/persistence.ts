import type { Registry } from 'prom-client';
import type { Config } from '../config/schema.js';
import type { AicService } from '../aic/aicService.js';
import { recordAicSummaries } from '../db/aicSummaryRecorder.js';
import { recordCalls } from '../db/callRecorder.js';
import { migrate, openDatabase, type Database } from '../db/database.js';
import { recordMesh } from '../db/meshRecorder.js';
import { QualitySampler } from '../db/qualitySampler.js';
import { WriteBehind } from '../db/writeBehind.js';
import type { DirectCallPolicy } from '../mesh/directCallPolicy.js';
import type { NodeRegistry } from '../mesh/types.js';
import type { Logger } from '../obs/logger.js';
import type { RoomEvents } from '../rooms/types.js';
import type { SfuService } from '../sfu/sfuService.js';
import { WebhookDispatcher } from '../webhooks/dispatcher.js';
import { notifyWebhooks } from '../webhooks/notifier.js';

export interface PersistenceDeps {
  /** Room-level events: the cluster's when there is one (once per session cluster-wide). */
  events: RoomEvents;
  mesh: NodeRegistry;
  calls: DirectCallPolicy;
  sfu: SfuService | undefined;
  /** AIC (aic.enabled): its per-call summaries are written. */
  aic: AicService | undefined;
  registry: Registry;
  clustered: boolean;
  log: Logger;
}

/**
 * What a node keeps: the database (migrated), the write-behind queue fed by room, mesh and
 * route events, the quality sampler, the webhook outbox and its dispatcher. Owns them all.
 */
export class Persistence {
  private constructor(
    readonly db: Database,
    private readonly writes: WriteBehind,
    private readonly sampler: QualitySampler | undefined,
    private readonly webhooks: WebhookDispatcher | undefined,
  ) {}

  static async start(c: Config, d: PersistenceDeps): Promise<Persistence> {
    const db = await openDatabase({ url: c.database.url, dataDir: c.database.data_dir }, d.log);
    await migrate(db, d.log);
    const writes = new WriteBehind(db, { maxBuffered: c.database.write_queue_max }, d.registry, d.log);
    recordCalls(d.events, writes, c.node_id);
    recordMesh(d.mesh, d.calls, writes);
    if (d.aic) recordAicSummaries(d.aic, writes, c.node_id);
    let sampler: QualitySampler | undefined;
    if (d.sfu) {
      sampler = new QualitySampler(d.sfu, writes, c.database.quality_sample_s, d.log);
      sampler.start();
    }
    let webhooks: WebhookDispatcher | undefined;
    if (c.webhook.urls.length > 0) {
      const keys = Object.keys(c.keys);
      const apiKey = c.webhook.api_key || keys[0];
      const secret = apiKey ? c.keys[apiKey] : undefined;
      if (!apiKey || !secret) throw new Error('webhook.urls are set but there is no API key to sign webhooks with');
      notifyWebhooks(d.events, writes, c.webhook.urls);
      webhooks = new WebhookDispatcher(db, { apiKey, secret }, d.registry, d.log, {
        pollMs: 200, timeoutMs: 5000, maxBackoffMs: 30_000, maxAttempts: c.webhook.max_attempts,
      });
      webhooks.start();
    }
    d.log.info({ db: db.kind, webhooks: c.webhook.urls.length }, 'persistence ready');
    if (d.clustered && db.kind === 'pglite') {
      d.log.warn('cluster (redis.url) with embedded PGlite: this node keeps its own call history and webhook outbox; give every node the same database.url (PostgreSQL) for one history per call');
    }
    return new Persistence(db, writes, sampler, webhooks);
  }

  /** Stops reading media stats (before the SFU closes). */
  stopSampling(): void {
    this.sampler?.stop();
  }

  /** Writes what is queued (the rows closeAll() just queued), then stops. */
  async close(): Promise<void> {
    this.sampler?.stop();
    await this.writes.close();
    await this.webhooks?.close();
    await this.db.close();
  }
}
