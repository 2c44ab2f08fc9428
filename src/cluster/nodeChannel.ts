import { createHmac, timingSafeEqual } from 'node:crypto';
import type { Logger } from '../obs/logger.js';
import type { RoomDirectory } from './directory.js';

/**
 * What nodes ask each other: method name -> request and response shapes (JSON). Every
 * node-to-node call goes through one NodeChannel; the map is the contract, its `v` the
 * version a receiver checks.
 */
export type NodeMethods<M> = { [K in keyof M]: { req: unknown; res: unknown } };

/** One handler per method: the compiler says each is served. `from` is the calling node. */
export type NodeHandlers<M extends NodeMethods<M>> = { [K in keyof M]: (req: M[K]['req'], from: string) => Promise<M[K]['res']> };

/** A call refused or failed on the far node (or not answered): a code and a message. */
export class NodeCallError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'NodeCallError';
  }
}

/** Protocol version of the frames; a node drops frames of another version (logged). */
export const NODE_CHANNEL_VERSION = 1;
/** A signed frame older than this is refused: a captured one cannot be replayed later. */
const MAX_AGE_MS = 30_000;

interface Req {
  v: number;
  k: 'req';
  id: number;
  from: string;
  ts: number;
  m: string;
  b: unknown;
}
interface Res {
  v: number;
  k: 'res';
  id: number;
  from: string;
  ts: number;
  b?: unknown;
  err?: { code: string; msg: string };
}

/** Signing, time-stamping and checking of frames on the nodes' command channels. */
class Frames {
  constructor(
    private readonly dir: RoomDirectory,
    private readonly secret: string,
    private readonly log: Logger,
    /** Cluster time (util/clusterClock.ts): stamps agree across nodes whose clocks do not. */
    readonly now: () => number,
  ) {}

  private sign(payload: string): string {
    return createHmac('sha256', this.secret).update(payload).digest('base64');
  }

  send(node: string, msg: Req | Res): Promise<number> {
    const payload = JSON.stringify(msg);
    return this.dir.client.publish(this.dir.nodeChannel(node), `${this.sign(payload)}.${payload}`);
  }

  /** The frame if its signature, version and age are right; otherwise dropped (logged). */
  open(buf: Buffer): Req | Res | undefined {
    const s = buf.toString();
    const dot = s.indexOf('.');
    const payload = s.slice(dot + 1);
    const sig = Buffer.from(s.slice(0, Math.max(dot, 0)), 'base64');
    const want = Buffer.from(this.sign(payload), 'base64');
    if (dot <= 0 || sig.length !== want.length || !timingSafeEqual(sig, want)) {
      this.log.warn('node call with a bad signature dropped');
      return undefined;
    }
    let msg: Req | Res;
    try {
      msg = JSON.parse(payload) as Req | Res;
    } catch {
      return undefined;
    }
    if (msg.v !== NODE_CHANNEL_VERSION) {
      this.log.warn({ v: msg.v, from: msg.from }, 'node call of another protocol version dropped');
      return undefined;
    }
    if (!(Math.abs(this.now() - msg.ts) <= MAX_AGE_MS)) {
      this.log.warn({ from: msg.from }, 'stale node call dropped (clock skew or replay)');
      return undefined;
    }
    return msg;
  }
}

/** Subscribes to this node's command channel; each frame goes to `onFrame`. */
function listen(dir: RoomDirectory, nodeId: string, frames: Frames, onFrame: (f: Req | Res) => void): string {
  const channel = dir.nodeChannel(nodeId);
  dir.sub.on('messageBuffer', (ch: Buffer, buf: Buffer) => {
    if (ch.toString() !== channel) return;
    const f = frames.open(buf);
    if (f) onFrame(f);
  });
  return channel;
}

/**
 * Node-to-node calls through Redis, the calling side: a request on the target node's
 * channel, the reply on this node's, within a timeout. Frames are signed (HMAC-SHA256 with an
 * API secret, as the mesh API's tokens are) and time-stamped: a client of Redis without the
 * secret cannot make a node act, nor replay what it saw. The answering side is NodeServer.
 */
export class NodeClient<M extends NodeMethods<M>> {
  private nextId = 1;
  private readonly waiting = new Map<number, { resolve: (b: unknown) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }>();
  private readonly frames: Frames;
  private readonly channel: string;
  private closed = false;

  constructor(
    private readonly dir: RoomDirectory,
    private readonly nodeId: string,
    secret: string,
    private readonly timeoutMs: number,
    log: Logger,
    now: () => number = Date.now,
  ) {
    this.frames = new Frames(dir, secret, log, now);
    this.channel = listen(dir, nodeId, this.frames, (f) => {
      if (f.k === 'res') this.settle(f.id, f.err ? new NodeCallError(f.err.code, f.err.msg) : undefined, f.b);
    });
  }

  async start(): Promise<void> {
    await this.dir.sub.subscribe(this.channel);
  }

  /** Runs `method` on `node`; rejects with the node's NodeCallError, or code 'unavailable'. */
  async call<K extends keyof M & string>(node: string, method: K, req: M[K]['req'], timeoutMs = this.timeoutMs): Promise<M[K]['res']> {
    if (this.closed) throw new NodeCallError('unavailable', 'node stopping');
    const id = this.nextId++;
    const reply = new Promise<unknown>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(id);
        reject(new NodeCallError('unavailable', `node ${node} did not answer ${method} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiting.set(id, { resolve, reject, timer });
    });
    const receivers = await this.frames.send(node, { v: NODE_CHANNEL_VERSION, k: 'req', id, from: this.nodeId, ts: this.frames.now(), m: method, b: req }).catch(() => 0);
    if (receivers === 0) this.settle(id, new NodeCallError('unavailable', `node ${node} is not reachable`));
    return reply as Promise<M[K]['res']>;
  }

  private settle(id: number, err: Error | undefined, body?: unknown): void {
    const w = this.waiting.get(id);
    if (!w) return; // timed out already
    clearTimeout(w.timer);
    this.waiting.delete(id);
    if (err) w.reject(err);
    else w.resolve(body);
  }

  /** Rejects what still waits (the node is stopping). */
  close(): void {
    this.closed = true;
    for (const id of [...this.waiting.keys()]) this.settle(id, new NodeCallError('unavailable', 'node stopping'));
  }
}

/** The answering side: runs this node's handler for each request and replies to the caller. */
export class NodeServer<M extends NodeMethods<M>> {
  private readonly frames: Frames;

  constructor(
    dir: RoomDirectory,
    nodeId: string,
    secret: string,
    private readonly handlers: NodeHandlers<M>,
    private readonly log: Logger,
    now: () => number = Date.now,
  ) {
    this.frames = new Frames(dir, secret, log, now);
    listen(dir, nodeId, this.frames, (f) => {
      if (f.k === 'req') this.answer(f).catch((err: unknown) => this.log.debug({ err }, 'node call reply not sent'));
    });
  }

  private async answer(req: Req): Promise<void> {
    const h = Object.hasOwn(this.handlers, req.m) ? (this.handlers[req.m as keyof M] as (b: unknown, from: string) => Promise<unknown>) : undefined;
    const base = { v: NODE_CHANNEL_VERSION, k: 'res' as const, id: req.id, from: '', ts: 0 };
    let reply: Res;
    try {
      if (!h) throw new NodeCallError('bad_route', `no such method ${req.m}`);
      reply = { ...base, b: await h(req.b, req.from) };
    } catch (err) {
      const code = (err as { code?: unknown } | undefined)?.code;
      const known = err instanceof Error && typeof code === 'string';
      if (!known) this.log.error({ err, method: req.m }, 'node call failed');
      reply = { ...base, err: { code: known ? code : 'internal', msg: known ? err.message : 'internal error' } };
    }
    await this.frames.send(req.from, { ...reply, ts: this.frames.now() });
  }
}
