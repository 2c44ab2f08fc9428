import { randomBytes } from 'node:crypto';
import type { Registry } from 'prom-client';
import type { Config } from '../config/schema.js';
import type { Logger } from '../obs/logger.js';
import { TurnCredentials, type IceServer } from './credentials.js';
import { EmbeddedTurnThread } from './turnThread.js';

/**
 * Owns the TURN side of a node: the embedded server in its own thread (mode embedded), or only the credentials
 * for an external coturn sharing `turn.secret` (mode external), and the iceServers handed to
 * every joining participant.
 */
export class TurnService {
  readonly credentials: TurnCredentials;
  readonly embedded: EmbeddedTurnThread | undefined;
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
      this.embedded = new EmbeddedTurnThread(
        {
          opts: {
            listenIp: cfg.listen_ip,
            port: cfg.port,
            relayIp: cfg.relay_ip || host,
            externalIp: cfg.external_ip,
            minPort: cfg.relay_min_port,
            maxPort: cfg.relay_max_port,
            realm: cfg.realm,
            maxAllocationsPerUser: cfg.max_allocations_per_user,
            listenBufferBytes: cfg.listen_buffer_bytes,
            relayBufferBytes: cfg.relay_buffer_bytes,
          },
          // The thread checks credentials with the same secret (credentials.ts, in the thread).
          secret,
          ttlS: cfg.credential_ttl_s,
          allowedPeerCidrs: cfg.allowed_peer_cidrs,
          deniedPeerCidrs: cfg.denied_peer_cidrs,
        },
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

  /** Ends the TURN thread and its sockets; resolves once the thread has exited. */
  close(): Promise<void> {
    return this.embedded?.close() ?? Promise.resolve();
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
