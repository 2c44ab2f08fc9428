import { execFileSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { Redis } from 'ioredis';
import { eventually } from './helpers.js';

/**
 * A redis-server of one test file's own, on a random port: the shared one on 6379 is
 * stopped and started by other suites' outage tests. `stop(true)` keeps its data (a dump
 * file of this server's own) for the next `start()`.
 */
export class PrivateRedis {
  readonly port = 16400 + Math.floor(Math.random() * 2000);
  readonly url = `redis://127.0.0.1:${this.port}`;
  private readonly dump = `auralink-test-redis-${this.port}.rdb`;

  async up(): Promise<boolean> {
    const r = new Redis(this.url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    r.on('error', () => undefined);
    try {
      await r.connect();
      return (await r.ping()) === 'PONG';
    } catch {
      return false;
    } finally {
      r.disconnect();
    }
  }

  async start(): Promise<void> {
    const args = ['--port', String(this.port), '--bind', '127.0.0.1', '--daemonize', 'yes', '--save', '', '--appendonly', 'no', '--dir', '/tmp', '--dbfilename', this.dump];
    execFileSync('redis-server', args);
    await eventually(() => this.up(), 5000, 'redis-server up');
  }

  async stop(keep = false): Promise<void> {
    execFileSync('redis-cli', ['-p', String(this.port), 'shutdown', keep ? 'save' : 'nosave']);
    await eventually(async () => !(await this.up()), 5000, 'redis-server down');
  }

  /** Stops it for good and removes its dump file. */
  async dispose(): Promise<void> {
    if (await this.up()) await this.stop();
    rmSync(`/tmp/${this.dump}`, { force: true });
  }

  /** Keys under a prefix (a test's own), sorted. */
  async keys(pattern: string): Promise<string[]> {
    const r = new Redis(this.url);
    try {
      return (await r.keys(pattern)).sort();
    } finally {
      r.disconnect();
    }
  }
}
