import type { EventEmitter } from 'node:events';
import type { types } from 'mediasoup';
import type { Logger } from '../../obs/logger.js';
import type { Room } from '../../rooms/room.js';
import type { RoomManager } from '../../rooms/roomManager.js';
import type { MediaControl } from '../../sfu/mediaControl.js';
import type { RemoteProducers } from '../../sfu/remoteProducers.js';
import type { SfuNotifier } from '../../sfu/sfuNotifier.js';
import { SfuPeer } from '../../sfu/sfuPeer.js';
import type { SfuRoom } from '../../sfu/sfuRoom.js';
import type { SfuService } from '../../sfu/sfuService.js';
import type { RosterEvents } from '../clusterTypes.js';
import type { RoomDirectory } from '../directory.js';
import { NodeCallError, type NodeClient, type NodeHandlers } from '../nodeChannel.js';
import type { ClusterMethods } from '../nodeMethods.js';
import { MEDIA_SCHEMAS, type MediaMethods } from './mediaMethods.js';
import { PipeLink } from './pipeLink.js';

export interface CascadeOptions {
  nodeId: string;
  listenIp: string;
  announcedIp: string;
  /** A piped-in producer nobody here consumes stays this long (a re-subscribe costs nothing). */
  lingerMs: number;
}

export interface CascadeStats {
  links: number;
  pipedIn: number;
  pipedOut: number;
}

const key = (room: string, node: string): string => `${room}\n${node}`;

/**
 * Media of a room across edge nodes (mediasoup 3.12 pipe transports; `pipeToRouter` is
 * same-host only). Pull on demand: a subscriber here consuming a producer published on
 * another node makes this node ask that node (NodeChannel) for the room's link (one
 * PipeTransport pair per room and node pair, SRTP + RTX) and for the producer across it,
 * once, whoever asks after. The far node produces it with the origin's id, so every
 * subscriber here consumes it as a local one. Pause, resume and close travel from the origin;
 * a piped producer nobody here consumes is released after `lingerMs`; a link with nothing
 * on it, a room that ends, or a node that leaves the room's roster closes the link.
 */
export class Cascade implements RemoteProducers {
  private readonly links = new Map<string, PipeLink>();
  private readonly linking = new Map<string, Promise<PipeLink>>();
  private readonly pulling = new Map<string, Promise<boolean>>();
  /** Consumers here of each piped-in producer, and the release timers of unconsumed ones. */
  private readonly consumers = new Map<string, number>();
  private readonly lingering = new Map<string, NodeJS.Timeout>();
  private closed = false;

  constructor(
    private readonly sfu: SfuService,
    private readonly notifier: SfuNotifier,
    private readonly manager: RoomManager,
    private readonly dir: RoomDirectory,
    private readonly nodes: NodeClient<ClusterMethods>,
    roster: EventEmitter<RosterEvents>,
    /** The layer controller (AIC): told each node's demand for this node's producers. */
    private readonly control: MediaControl,
    private readonly opts: CascadeOptions,
    private readonly log: Logger,
  ) {
    // A participant who joined on another node learns this node's producers from here.
    roster.on('remoteJoined', (room, info) => {
      const sfuRoom = this.sfu.rooms.get(room.name);
      if (sfuRoom && info.permission.canSubscribe) this.notifier.localProducersTo(room, sfuRoom, info.sid);
    });
    // A node with nobody left in the room (left, reaped, dead) has nothing to carry.
    roster.on('remoteChanged', (room) => {
      for (const link of [...this.links.values()]) {
        if (link.room !== room.name) continue;
        let there = false;
        for (const r of room.remote.values()) if (r.node === link.node) there = true;
        if (!there) this.closeLink(link, true);
      }
    });
    manager.on('roomFinished', (room) => {
      for (const link of [...this.links.values()]) if (link.room === room.name) this.closeLink(link, true);
    });
  }

  // ---------- the far side: a subscriber here needs a producer from another node ----------

  fetch(room: Room, sfuRoom: SfuRoom, producerId: string): Promise<boolean> {
    const k = key(room.name, producerId);
    let p = this.pulling.get(k);
    if (!p) {
      p = this.pull(room, sfuRoom, producerId).finally(() => this.pulling.delete(k));
      this.pulling.set(k, p);
    }
    return p;
  }

  private async pull(room: Room, sfuRoom: SfuRoom, producerId: string): Promise<boolean> {
    if (this.closed) return false;
    let origin: string | undefined;
    for (const e of (await this.dir.participants(room.name)).values()) {
      if (e.node !== this.opts.nodeId && e.tracks.some((t) => t.producerId === producerId)) origin = e.node;
    }
    if (!origin) return false;
    const link = await this.link(room, sfuRoom, origin);
    const piped = await this.nodes.call(origin, 'media.pipe', { room: room.name, producerId });
    if (link.closed || sfuRoom.closed) return false;
    const producer = await link.transport.produce({
      id: producerId,
      kind: piped.kind,
      rtpParameters: piped.rtpParameters as types.RtpParameters,
      paused: piped.paused,
      appData: { pipedFrom: origin },
    });
    link.in.set(producerId, producer);
    producer.observer.once('close', () => {
      link.in.delete(producerId);
      this.afterRelease(link);
    });
    await sfuRoom.addProducer(producer, new SfuPeer(piped.publisherSid, piped.publisherIdentity), piped.source, origin);
    this.log.debug({ room: room.name, producerId, from: origin }, 'producer piped in');
    this.release(room.name, producerId, link); // until its first consumer
    return true;
  }

  consumed(room: Room, producerId: string, consumer: types.Consumer): void {
    const k = key(room.name, producerId);
    this.consumers.set(k, (this.consumers.get(k) ?? 0) + 1);
    clearTimeout(this.lingering.get(k));
    this.lingering.delete(k);
    consumer.observer.once('close', () => {
      const n = (this.consumers.get(k) ?? 1) - 1;
      if (n > 0) return void this.consumers.set(k, n);
      this.consumers.delete(k);
      const link = [...this.links.values()].find((l) => l.room === room.name && l.in.has(producerId));
      if (link) this.release(room.name, producerId, link);
    });
  }

  /** After `lingerMs` with no consumer here: the piped producer goes, and the origin's pipe consumer. */
  private release(room: string, producerId: string, link: PipeLink): void {
    const k = key(room, producerId);
    if (this.closed || this.consumers.has(k) || this.lingering.has(k)) return;
    const t = setTimeout(() => {
      this.lingering.delete(k);
      if (this.consumers.has(k) || link.closed) return;
      link.in.get(producerId)?.close();
      this.nodes.call(link.node, 'media.unpipe', { room, producerId }).catch((err: Error) => this.log.debug({ err: err.message }, 'unpipe not delivered'));
    }, this.opts.lingerMs);
    this.lingering.set(k, t);
  }

  private afterRelease(link: PipeLink): void {
    if (link.idle && !link.closed) this.closeLink(link, true);
  }

  /** The room's link to `node`: made once (both nodes may ask at once: each connects its one end). */
  private async link(room: Room, sfuRoom: SfuRoom, node: string): Promise<PipeLink> {
    const k = key(room.name, node);
    const have = this.links.get(k);
    if (have) return have;
    let p = this.linking.get(k);
    if (!p) {
      p = (async () => {
        const link = await this.open(room.name, sfuRoom, node);
        try {
          await link.connect(await this.nodes.call(node, 'media.link', { room: room.name, ...link.local }));
        } catch (err) {
          this.closeLink(link, false);
          throw err;
        }
        return link;
      })().finally(() => this.linking.delete(k));
      this.linking.set(k, p);
    }
    return p;
  }

  /** This node's end of a link (not yet connected), kept and owned from here on. */
  private async open(room: string, sfuRoom: SfuRoom, node: string): Promise<PipeLink> {
    const k = key(room, node);
    const have = this.links.get(k);
    if (have) return have;
    const transport = await sfuRoom.main.router.createPipeTransport({
      listenIp: { ip: this.opts.listenIp, ...(this.opts.announcedIp ? { announcedIp: this.opts.announcedIp } : {}) },
      enableSrtp: true,
      enableRtx: true,
      appData: { room, node },
    });
    const raced = this.links.get(k); // the other node's link request arrived meanwhile
    if (raced) {
      transport.close();
      return raced;
    }
    const link = new PipeLink(room, node, transport);
    this.links.set(k, link);
    link.once('closed', () => {
      if (this.links.get(k) === link) this.links.delete(k);
    });
    return link;
  }

  private closeLink(link: PipeLink, tell: boolean): void {
    if (link.closed) return;
    link.close();
    if (tell && !this.closed) this.nodes.call(link.node, 'media.unlink', { room: link.room }).catch(() => undefined);
  }

  // ---------- the origin side: what other nodes ask of this one ----------

  handlers(): NodeHandlers<MediaMethods> {
    const parse = <K extends keyof MediaMethods>(k: K, body: unknown): MediaMethods[K]['req'] => {
      const r = MEDIA_SCHEMAS[k].safeParse(body);
      if (!r.success) throw new NodeCallError('invalid_argument', `${k}: ${r.error.issues[0]?.path.join('.')} ${r.error.issues[0]?.message}`);
      return r.data as MediaMethods[K]['req'];
    };
    const roomOf = (name: string): SfuRoom => {
      const r = this.sfu.rooms.get(name);
      if (!r || r.closed || this.closed) throw new NodeCallError('not_found', `no media for room ${JSON.stringify(name)} here`);
      return r;
    };
    const linkOf = (room: string, node: string): PipeLink => {
      const l = this.links.get(key(room, node));
      if (!l) throw new NodeCallError('not_found', `no link for room ${JSON.stringify(room)} to ${node}`);
      return l;
    };
    return {
      'media.link': async (body, from) => {
        const req = parse('media.link', body);
        const link = await this.open(req.room, roomOf(req.room), from);
        await link.connect(req);
        return link.local;
      },
      'media.pipe': async (body, from) => {
        const req = parse('media.pipe', body);
        const owner = roomOf(req.room).producers.get(req.producerId);
        if (!owner) throw new NodeCallError('not_found', `no producer ${req.producerId} here`);
        const link = linkOf(req.room, from);
        const existing = link.out.get(req.producerId);
        const consumer = existing ?? (await link.transport.consume({ producerId: req.producerId }));
        if (!existing) this.watchOut(link, consumer);
        return {
          kind: consumer.kind,
          rtpParameters: consumer.rtpParameters,
          paused: consumer.producerPaused,
          source: owner.source,
          publisherSid: owner.peer.sid,
          publisherIdentity: owner.peer.identity,
        };
      },
      'media.unpipe': async (body, from) => {
        const req = parse('media.unpipe', body);
        this.links.get(key(req.room, from))?.out.get(req.producerId)?.close();
        return {};
      },
      'media.unlink': async (body, from) => {
        const req = parse('media.unlink', body);
        const link = this.links.get(key(req.room, from));
        if (link) this.closeLink(link, false);
        return {};
      },
      'media.producerState': async (body, from) => {
        const req = parse('media.producerState', body);
        const p = this.links.get(key(req.room, from))?.in.get(req.producerId);
        if (!p) return {};
        if (req.state === 'closed') p.close();
        else if (req.state === 'paused') await p.pause();
        else await p.resume();
        return {};
      },
    };
  }

  /** A pipe consumer of one of this node's producers: its producer's state goes to the far node. */
  private watchOut(link: PipeLink, consumer: types.Consumer): void {
    const producerId = consumer.producerId;
    link.out.set(producerId, consumer);
    // The far node's subscribers' layers are not reported back yet: it is taken to need all
    // of them (a publisher-side layer pause must not starve viewers on other nodes).
    const room = this.manager.rooms.get(link.room);
    if (room) this.control.pipeDemand(room, producerId, link.node, Number.MAX_SAFE_INTEGER);
    const tell = (state: 'paused' | 'resumed' | 'closed'): void => {
      if (link.closed) return;
      this.nodes.call(link.node, 'media.producerState', { room: link.room, producerId, state }).catch((err: Error) => this.log.debug({ err: err.message }, 'producer state not delivered'));
    };
    consumer.on('producerpause', () => tell('paused'));
    consumer.on('producerresume', () => tell('resumed'));
    consumer.on('producerclose', () => tell('closed'));
    consumer.observer.once('close', () => {
      if (link.out.get(producerId) === consumer) link.out.delete(producerId);
      const r = this.manager.rooms.get(link.room);
      if (r) this.control.pipeDemand(r, producerId, link.node, undefined);
      this.afterRelease(link);
    });
  }

  linkList(): readonly PipeLink[] {
    return [...this.links.values()];
  }

  stats(): CascadeStats {
    let pipedIn = 0;
    let pipedOut = 0;
    for (const l of this.links.values()) {
      pipedIn += l.in.size;
      pipedOut += l.out.size;
    }
    return { links: this.links.size, pipedIn, pipedOut };
  }

  /** Closes every link (the SFU closes the routers after). */
  close(): void {
    this.closed = true;
    for (const t of this.lingering.values()) clearTimeout(t);
    this.lingering.clear();
    for (const link of [...this.links.values()]) link.close();
    this.links.clear();
  }
}
