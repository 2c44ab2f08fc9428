import { randomBytes } from 'node:crypto';
import type { Registry } from 'prom-client';
import type { Config } from '../config/schema.js';
import type { Logger } from '../obs/logger.js';
import { TurnCredentials, type IceServer } from './credentials.js';
import { EmbeddedTurn } from './embeddedTurn.js';
import { PeerFilter } from './peerFilter.js';

/**
 * Owns the TURN side of a node: the embedded server (mode embedded), or only the credentials
 * for an external coturn sharing `turn.secret` (mode external), and the iceServers handed to
 * every joining participant.
 */
export class TurnService {
  readonly credentials: TurnCredentials;
  readonly embedded: EmbeddedTurn | undefined;
  readonly urls: string[];

  constructor(
    private readonly cfg: Config['turn'],
    host: string,
    registry: Registry,
    log: Logger,
  ) {
    // Embedded with no secret: a random one per process (nothing else needs to know it).
    const secret = cfg.secret || randomBytes(32).toString('base64url');
    this.credentials = new TurnCredentials(secret, cfg.credential_ttl_s);
    if (cfg.mode === 'embedded') {
      this.embedded = new EmbeddedTurn(
        {
          listenIp: cfg.listen_ip,
          port: cfg.port,
          relayIp: cfg.relay_ip || host,
          externalIp: cfg.external_ip,
          minPort: cfg.relay_min_port,
          maxPort: cfg.relay_max_port,
          realm: cfg.realm,
          maxAllocationsPerUser: cfg.max_allocations_per_user,
        },
        this.credentials,
        new PeerFilter(cfg.allowed_peer_cidrs, cfg.denied_peer_cidrs),
        registry,
        log,
      );
      this.urls = cfg.urls.length > 0 ? cfg.urls : [`turn:${hostForUrl(cfg.external_ip || host)}:${cfg.port}?transport=udp`];
    } else {
      this.urls = cfg.urls;
    }
  }

  get enabled(): boolean {
    return this.cfg.mode !== 'off';
  }

  async start(): Promise<void> {
    await this.embedded?.start();
  }

  close(): void {
    this.embedded?.close();
  }

  /** Fresh credentials for one participant, as RTCConfiguration.iceServers entries. */
  iceServersFor(identity: string): IceServer[] {
    if (!this.enabled || this.urls.length === 0) return [];
    const c = this.credentials.issue(identity);
    return [{ urls: this.urls, username: c.username, credential: c.credential }];
  }
}

function hostForUrl(ip: string): string {
  return ip.includes(':') ? `[${ip}]` : ip;
}
