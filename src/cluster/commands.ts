import { createHmac, timingSafeEqual } from 'node:crypto';
import type { Claims } from '../auth/token.js';
import { TwirpError, type TwirpCode, type TwirpMethod } from '../api/twirp.js';
import type { Logger } from '../obs/logger.js';
import type { RoomDirectory } from './directory.js';

interface Request {
  k: 'req';
  id: number;
  from: string;
  method: string;
  claims: Claims;
  body: string; // base64 protobuf
}
interface Reply {
  k: 'res';
  id: number;
  body?: string;
  err?: { code: TwirpCode; msg: string };
}

/**
 * Node-to-node RoomService calls through Redis: a request on the target node's channel, the
 * reply on the caller's, within a timeout. The target runs its own local handler with the
 * caller's (already verified) claims, so the answer and errors are what that node would give.
 * Every message is signed (HMAC-SHA256 with an API secret, like the mesh API's tokens): a
 * client of Redis without the secret cannot make a node act.
 */
export class ClusterCommands {
  private nextId = 1;
  private readonly waiting = new Map<number, { resolve: (b: Uint8Array) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }>();
  private readonly channel: string;

  constructor(
    private readonly dir: RoomDirectory,
    private readonly nodeId: string,
    private readonly secret: string,
    /** This node's own (local) RoomService methods: what a forwarded call runs. */
    private readonly local: Record<string, TwirpMethod>,
    private readonly timeoutMs: number,
    private readonly log: Logger,
  ) {
    this.channel = dir.nodeChannel(nodeId);
    dir.sub.on('messageBuffer', (ch: Buffer, buf: Buffer) => {
      if (ch.toString() !== this.channel) return;
      this.onMessage(buf).catch((err: unknown) => this.log.warn({ err }, 'cluster command failed'));
    });
  }

  async start(): Promise<void> {
    await this.dir.sub.subscribe(this.channel);
  }

  private sign(payload: string): string {
    return createHmac('sha256', this.secret).update(payload).digest('base64');
  }

  private send(node: string, msg: Request | Reply): Promise<number> {
    const payload = JSON.stringify(msg);
    return this.dir.client.publish(this.dir.nodeChannel(node), `${this.sign(payload)}.${payload}`);
  }

  /** Runs `method` on `node`; rejects with the node's TwirpError, or unavailable on timeout. */
  async call(node: string, method: string, req: { toBinary(): Uint8Array }, claims: Claims): Promise<Uint8Array> {
    const id = this.nextId++;
    const reply = new Promise<Uint8Array>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(id);
        reject(new TwirpError('internal', `node ${node} did not answer ${method} within ${this.timeoutMs} ms`));
      }, this.timeoutMs);
      this.waiting.set(id, { resolve, reject, timer });
    });
    const receivers = await this.send(node, { k: 'req', id, from: this.nodeId, method, claims, body: Buffer.from(req.toBinary()).toString('base64') }).catch(() => 0);
    if (receivers === 0) {
      const w = this.waiting.get(id);
      if (w) {
        clearTimeout(w.timer);
        this.waiting.delete(id);
        w.reject(new TwirpError('internal', `node ${node} is not reachable`));
      }
    }
    return reply;
  }

  private async onMessage(buf: Buffer): Promise<void> {
    const s = buf.toString();
    const dot = s.indexOf('.');
    const payload = s.slice(dot + 1);
    const sig = Buffer.from(s.slice(0, Math.max(dot, 0)), 'base64');
    const want = Buffer.from(this.sign(payload), 'base64');
    if (dot <= 0 || sig.length !== want.length || !timingSafeEqual(sig, want)) {
      this.log.warn('cluster command with a bad signature dropped');
      return;
    }
    const msg = JSON.parse(payload) as Request | Reply;
    if (msg.k === 'res') {
      const w = this.waiting.get(msg.id);
      if (!w) return; // timed out already
      clearTimeout(w.timer);
      this.waiting.delete(msg.id);
      if (msg.err) w.reject(new TwirpError(msg.err.code, msg.err.msg));
      else w.resolve(Buffer.from(msg.body ?? '', 'base64'));
      return;
    }
    const m = Object.hasOwn(this.local, msg.method) ? this.local[msg.method] : undefined;
    let reply: Reply;
    try {
      if (!m) throw new TwirpError('bad_route', `no such method ${msg.method}`);
      const res = await m.handle(m.req.fromBinary(Buffer.from(msg.body, 'base64')), msg.claims);
      reply = { k: 'res', id: msg.id, body: Buffer.from(res.toBinary()).toString('base64') };
    } catch (err) {
      const e = err instanceof TwirpError ? err : new TwirpError('internal', 'internal error');
      if (!(err instanceof TwirpError)) this.log.error({ err, method: msg.method }, 'forwarded RoomService call failed');
      reply = { k: 'res', id: msg.id, err: { code: e.code, msg: e.message } };
    }
    await this.send(msg.from, reply);
  }

  /** Rejects what still waits (the node is stopping). */
  close(): void {
    for (const [id, w] of this.waiting) {
      clearTimeout(w.timer);
      w.reject(new TwirpError('internal', 'node stopping'));
      this.waiting.delete(id);
    }
  }
}
