import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { types } from 'mediasoup';
import type { MediaLinks } from '../../mesh/mediaLinks.js';
import type { Logger } from '../../obs/logger.js';
import type { MediaControl } from '../../sfu/mediaControl.js';
import { SfuPeer } from '../../sfu/sfuPeer.js';
import type { SfuRoom } from '../../sfu/sfuRoom.js';
import { NodeCallError, type NodeClient, type NodeHandlers } from '../nodeChannel.js';
import type { ClusterMethods } from '../nodeMethods.js';
import { DataPipes } from './dataPipes.js';
import { MEDIA_SCHEMAS, type MediaMethods, type PipedProducer } from './mediaMethods.js';
import type { MediaRooms } from './mediaRooms.js';
import { PipeLink } from './pipeLink.js';

export interface PipeRouterOptions {
  nodeId: string;
  listenIp: string;
  announcedIp: string;
  /** A piped-in producer nobody here uses stays this long (a re-subscribe costs nothing). */
  lingerMs: number;
  /** How often the loss on each outgoing link is read from the pipe consumers' RTCP. */
  lossSampleMs: number;
  /**
   * mediasoup keyFrameRequestDelay of piped-in video producers (0: none): the key-frame
   * requests of every viewer behind this node go to the hop before as one per this window.
   */
  keyFrameRequestDelayMs: number;
}

/** A track piped in here: where from (the path from its origin to this node) and the copy of it here. */
export interface PipedIn {
  room: string;
  /** The track (the origin's producer id). */
  producerId: string;
  path: string[];
  info: PipedProducer;
  /** The copy here (its id is the track's, or a fresh one for a copy pulled while another served). */
  producer: types.Producer;
  /** Reported lost (once): it is kept, silent, until `retire` once its subscribers have moved. */
  lost?: boolean;
}

export interface PipeRouterEvents {
  /**
   * A piped-in track stopped coming without its origin closing it (a hop died, a link went
   * dead, a hop before lost it): pull it over another path, move its consumers, then `retire`
   * it. Until then it stays (silent), so consumers have something to move from.
   */
  lost: [PipedIn];
}

const key = (room: string, other: string): string => `${room}\n${other}`;

// How long a message naming a link this node has not had the far end's answer for yet waits for it.
const FAR_ID_WAIT_MS = 5000;
// A dead link whose lost tracks were not all retired (a re-route stuck) closes after this anyway.
const DEAD_LINK_CLOSE_MS = 15_000;

/**
 * The forwarding core of the cascade, on edges and relays alike (mediasoup 3.12 pipe
 * transports: `pipeToRouter` is same-host only). Per room and node pair one PipeLink (SRTP +
 * RTX), made by whichever node needs it first (both may: each connects its one end). A
 * producer travels a path origin → relays → far edge hop by hop, each hop pulling from the
 * one before it (`media.pipe` with the rest of the path), and crosses each link once however
 * many use it after. Pause, resume and close travel down the path. A piped-in producer is
 * kept while something here uses it (a local consumer, or a pipe consumer towards the next
 * hop) and released `lingerMs` after the last goes; a link with nothing on it closes.
 */
export class PipeRouter extends EventEmitter<PipeRouterEvents> {
  private readonly links = new Map<string, PipeLink>();
  private readonly opening = new Map<string, Promise<PipeLink>>();
  private readonly linking = new Map<string, Promise<PipeLink>>();
  private readonly pulling = new Map<string, Promise<boolean>>();
  private readonly pipedIn = new Map<string, PipedIn>();
  /** Users here of each piped-in producer (local consumers + pipe consumers to the next hop). */
  private readonly users = new Map<string, number>();
  private readonly lingering = new Map<string, NodeJS.Timeout>();
  /** Piped-in producers whose close is expected (released, or closed by their publisher). */
  private readonly expected = new Set<string>();
  /** What this node last asked of each piped-in track (AIC demand). */
  private readonly demanded = new Map<string, number>();
  /** Dead links kept for their lost tracks, each closed at the latest by its timer. */
  private readonly deadLinks = new Map<PipeLink, NodeJS.Timeout>();
  /** Data producers (SCTP) over the same links. */
  readonly data: DataPipes;
  private closed = false;
  /** Loss last read per peer node (outgoing media, from the far side's receiver reports). */
  readonly lossByPeer = new Map<string, number>();
  private readonly sampler: NodeJS.Timeout;

  constructor(
    private readonly rooms: MediaRooms,
    private readonly nodes: NodeClient<ClusterMethods>,
    /**
     * The layer controller (AIC, edges): told each node's demand for this node's producers,
     * and of the producers piped in (its viewers here make this node's demand upstream).
     */
    private readonly control: MediaControl | undefined,
    private readonly demandRoom: (room: string) => Parameters<MediaControl['pipeDemand']>[0] | undefined,
    private readonly opts: PipeRouterOptions,
    private readonly log: Logger,
    /** Where the loss media sees on links goes (the mesh prober folds it into link metrics). */
    private readonly mediaLinks?: MediaLinks,
  ) {
    super();
    this.data = new DataPipes(
      {
        nodeId: opts.nodeId,
        lingerMs: opts.lingerMs,
        nodes,
        links: () => this.links.values(),
        link: (room, sfuRoom, node) => this.link(room, sfuRoom, node),
        afterRelease: (link) => this.afterRelease(link),
        closed: () => this.closed,
      },
      rooms,
      log,
    );
    this.sampler = setInterval(() => void this.sampleLoss(), opts.lossSampleMs);
    this.sampler.unref();
  }

  /** Per link: the worst loss any of its pipe consumers' receiver reports gives (0-255 → %). */
  private async sampleLoss(): Promise<void> {
    const worst = new Map<string, number>();
    for (const l of this.links.values()) {
      for (const c of l.out.values()) {
        const stats = (await c.getStats().catch(() => [])) as { type: string; fractionLost?: number }[];
        for (const s of stats) {
          if (s.type !== 'outbound-rtp' || s.fractionLost === undefined) continue;
          worst.set(l.node, Math.max(worst.get(l.node) ?? 0, (s.fractionLost / 256) * 100));
        }
      }
    }
    this.lossByPeer.clear();
    for (const [peer, pct] of worst) {
      this.lossByPeer.set(peer, pct);
      this.mediaLinks?.record(peer, pct);
    }
  }

  // ---------- pulling a producer here ----------

  /** Brings `producerId` into the room here over `path` (origin first, this node last). */
  pull(room: string, sfuRoom: SfuRoom, producerId: string, path: string[]): Promise<boolean> {
    const k = key(room, producerId);
    let p = this.pulling.get(k);
    if (!p) {
      p = this.doPull(room, sfuRoom, producerId, path).finally(() => this.pulling.delete(k));
      this.pulling.set(k, p);
    }
    return p;
  }

  /**
   * Pulls a second copy of a piped-in track over `path` while `old` still serves (make before
   * break: its consumers are moved to the new copy, then `retire(old)`). The new copy takes
   * its place here; undefined when it could not be had. Not over the link `old` came by (one
   * pipe carries a track once): the caller moves it the plain way then.
   */
  async pullReplacement(sfuRoom: SfuRoom, old: PipedIn, path: string[]): Promise<PipedIn | undefined> {
    const k = key(old.room, old.producerId);
    if (this.pipedIn.get(k) !== old || path.at(-2) === this.linkOf(old)?.node) return undefined;
    await this.pulling.get(k)?.catch(() => undefined);
    if (this.pipedIn.get(k) !== old) return undefined;
    const p = this.doPull(old.room, sfuRoom, old.producerId, path, old).finally(() => this.pulling.delete(k));
    this.pulling.set(k, p);
    return (await p) ? this.pipedIn.get(k) : undefined;
  }

  private async doPull(room: string, sfuRoom: SfuRoom, producerId: string, path: string[], replacing?: PipedIn): Promise<boolean> {
    const k = key(room, producerId);
    if (this.closed) return false;
    if (replacing ? this.pipedIn.get(k) !== replacing : sfuRoom.producers.has(producerId)) return !replacing;
    const upstream = path.at(-2);
    if (!upstream || path.at(-1) !== this.opts.nodeId) return false;
    const link = await this.link(room, sfuRoom, upstream);
    const info = await this.nodes.call(upstream, 'media.pipe', { room, link: link.id, producerId, via: path.slice(0, -2) });
    if (link.closed || sfuRoom.closed) return false;
    if (replacing && this.pipedIn.get(k) !== replacing && this.pipedIn.has(k)) {
      // Another copy took its place meanwhile: the upstream's consumer for this one goes.
      this.nodes.call(upstream, 'media.unpipe', { room, link: link.id, producerId }).catch(() => undefined);
      return false;
    }
    // (The copy being replaced went meanwhile: this one is simply the copy now.)
    const producer = await link.transport.produce({
      // mediasoup ids are unique per router: a copy made while the old one serves gets its own.
      id: replacing ? randomUUID() : producerId,
      kind: info.kind,
      rtpParameters: info.rtpParameters as types.RtpParameters,
      paused: info.paused,
      ...(info.kind === 'video' && this.opts.keyFrameRequestDelayMs > 0 ? { keyFrameRequestDelay: this.opts.keyFrameRequestDelayMs } : {}),
      appData: { pipedFrom: upstream, trackId: producerId },
    });
    const entry: PipedIn = { room, producerId, path, info, producer };
    link.in.set(producerId, producer);
    this.pipedIn.set(k, entry);
    if (replacing) {
      // Users are counted afresh against the new copy (moved consumers count as they come).
      this.users.delete(k);
      clearTimeout(this.lingering.get(k));
      this.lingering.delete(k);
      // The new upstream hears what this node last asked of the track (else it assumes every layer).
      const layer = this.demanded.get(k);
      if (layer !== undefined) this.nodes.call(upstream, 'media.demand', { room, link: link.id, producerId, layer }).catch(() => undefined);
    }
    producer.observer.once('close', () => {
      if (link.in.get(producerId) === producer) link.in.delete(producerId);
      if (this.pipedIn.get(k) !== entry) {
        // A copy another has replaced (a re-route): retired, nothing else to do.
        this.afterRelease(link);
        return;
      }
      this.pipedIn.delete(k);
      this.users.delete(k);
      this.demanded.delete(k);
      clearTimeout(this.lingering.get(k));
      this.lingering.delete(k);
      const wasExpected = this.expected.delete(k);
      this.tellDownstream(room, producerId, wasExpected ? 'producer' : 'upstream');
      if (!wasExpected && !entry.lost && !this.closed) this.emit('lost', entry);
      this.afterRelease(link);
    });
    await sfuRoom.addProducer(producer, new SfuPeer(info.publisherSid, info.publisherIdentity), info.source, path[0]);
    const r = this.demandRoom(room);
    if (r) this.control?.producerCreated(r, info.publisherSid, producer, info.source, { width: 0, height: 0 });
    this.log.debug({ room, producerId, path }, 'producer piped in');
    this.release(k, link); // until its first user
    return true;
  }

  /** One more (+1) or one fewer (-1) user here of a piped-in producer. */
  use(room: string, producerId: string, delta: 1 | -1): void {
    const k = key(room, producerId);
    const entry = this.pipedIn.get(k);
    if (!entry) return;
    const n = (this.users.get(k) ?? 0) + delta;
    if (n > 0) {
      this.users.set(k, n);
      clearTimeout(this.lingering.get(k));
      this.lingering.delete(k);
      return;
    }
    this.users.delete(k);
    const link = this.linkOf(entry);
    if (link) this.release(k, link);
  }

  /** The link a piped-in copy came by. */
  private linkOf(entry: PipedIn): PipeLink | undefined {
    for (const l of [...this.links.values(), ...this.deadLinks.keys()]) if (l.room === entry.room && l.in.get(entry.producerId) === entry.producer) return l;
    return undefined;
  }

  private linkWithIn(room: string, producerId: string): PipeLink | undefined {
    const entry = this.pipedIn.get(key(room, producerId));
    return entry && this.linkOf(entry);
  }

  /**
   * A lost (or replaced) copy goes: closed here, its upstream told to stop sending it. A copy
   * that is still the current one and was lost closes as lost (hops after this one are told
   * their upstream lost it, and re-route themselves).
   */
  retire(entry: PipedIn): void {
    const k = key(entry.room, entry.producerId);
    const link = this.linkOf(entry);
    if (this.pipedIn.get(k) === entry && !entry.lost) this.expected.add(k);
    entry.producer.close();
    if (link && !link.closed && !link.dead) {
      this.nodes.call(link.node, 'media.unpipe', { room: entry.room, link: link.id, producerId: entry.producerId }).catch(() => undefined);
    }
  }

  /** Tells (once) that a current copy is lost: it stays until retired. */
  private reportLost(entry: PipedIn): void {
    if (entry.lost || this.closed || this.pipedIn.get(key(entry.room, entry.producerId)) !== entry) return;
    entry.lost = true;
    // A relay has nothing to move (no subscribers; no Cascade listens): it lets the copy go at
    // once, and the hops after it are told their upstream lost it (they re-route themselves).
    if (this.listenerCount('lost') === 0) this.retire(entry);
    else this.emit('lost', entry);
  }

  /**
   * A link whose far node is gone or unreachable: its tracks are reported lost and it stays
   * (silent) until they are retired, or `DEAD_LINK_CLOSE_MS` at most; with none it closes now.
   */
  private linkDead(link: PipeLink, tell: boolean): void {
    if (link.closed || link.dead) return;
    // Current copies that came by it (one already reported lost is being moved: kept too).
    const held = [...this.pipedIn.values()].filter((e) => e.room === link.room && link.in.get(e.producerId) === e.producer);
    if (held.length === 0) return this.closeLink(link, tell);
    link.markDead();
    // The far node, if only slow, closes its end now (what it had from here is lost there, and re-routed).
    if (tell) this.nodes.call(link.node, 'media.unlink', { room: link.room, link: link.id }).catch(() => undefined);
    const t = setTimeout(() => this.closeLink(link, false), DEAD_LINK_CLOSE_MS);
    t.unref();
    this.deadLinks.set(link, t);
    link.once('closed', () => {
      clearTimeout(this.deadLinks.get(link));
      this.deadLinks.delete(link);
    });
    for (const e of held) this.reportLost(e);
  }

  /** After `lingerMs` with no user here: the piped producer goes, and the upstream's pipe consumer. */
  private release(k: string, link: PipeLink): void {
    if (this.closed || this.users.has(k) || this.lingering.has(k)) return;
    const entry = this.pipedIn.get(k);
    if (!entry) return;
    const t = setTimeout(() => {
      this.lingering.delete(k);
      if (this.users.has(k) || link.closed || this.pipedIn.get(k) !== entry) return;
      this.retire(entry);
    }, this.opts.lingerMs);
    this.lingering.set(k, t);
  }

  private afterRelease(link: PipeLink): void {
    if (link.idle && !link.closed) this.closeLink(link, true);
  }

  // ---------- links ----------

  /** The room's link to `node`, made and connected once. */
  private async link(room: string, sfuRoom: SfuRoom, node: string): Promise<PipeLink> {
    const k = key(room, node);
    const have = this.links.get(k);
    if (have && !have.dead) return have;
    let p = this.linking.get(k);
    if (!p) {
      p = (async () => {
        const link = await this.open(room, sfuRoom, node);
        try {
          await link.connect(await this.nodes.call(node, 'media.link', { room, ...link.local }));
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

  /**
   * This node's end of a link (not yet connected), made once: this node's pull and the far
   * node's link request (both nodes may make theirs at once) share it.
   */
  private open(room: string, sfuRoom: SfuRoom, node: string): Promise<PipeLink> {
    const k = key(room, node);
    const have = this.links.get(k);
    if (have && !have.dead) return Promise.resolve(have);
    let p = this.opening.get(k);
    if (!p) {
      p = this.make(room, sfuRoom, node).finally(() => this.opening.delete(k));
      this.opening.set(k, p);
    }
    return p;
  }

  private async make(room: string, sfuRoom: SfuRoom, node: string): Promise<PipeLink> {
    const k = key(room, node);
    const transport = await sfuRoom.main.router.createPipeTransport({
      listenIp: { ip: this.opts.listenIp, ...(this.opts.announcedIp ? { announcedIp: this.opts.announcedIp } : {}) },
      enableSrtp: true,
      enableRtx: true,
      // Data producers cross too (SCTP over the same tuple; mediasoup's pipeToRouter's streams).
      enableSctp: true,
      numSctpStreams: { OS: 1024, MIS: 1024 },
      appData: { room, node },
    });
    const link = new PipeLink(room, node, transport);
    this.links.set(k, link);
    link.once('closed', () => {
      if (this.links.get(k) === link) this.links.delete(k);
      if (![...this.links.values()].some((l) => l.room === room)) this.rooms.unused(room);
    });
    return link;
  }

  private closeLink(link: PipeLink, tell: boolean): void {
    if (link.closed) return;
    link.close();
    if (tell && !this.closed) this.nodes.call(link.node, 'media.unlink', { room: link.room, link: link.id }).catch(() => undefined);
  }

  /** Closes this room's links (the room ended here), dead ones kept for their lost tracks too. */
  closeRoom(room: string): void {
    for (const l of [...this.links.values()]) if (l.room === room) this.closeLink(l, true);
    for (const l of [...this.deadLinks.keys()]) if (l.room === room) this.closeLink(l, false);
  }

  /** A node is gone: its links are dead (what came through them is re-routed by the edges). */
  nodeGone(node: string): void {
    for (const l of [...this.links.values()]) if (l.node === node) this.linkDead(l, false);
  }

  /**
   * A node found unreachable before the mesh expired it: its links are taken as dead (what
   * came through them is re-routed by the edges). It is told, in case it was only slow.
   */
  peerDown(node: string): void {
    for (const l of [...this.links.values()]) if (l.node === node) this.linkDead(l, true);
  }

  /** The nodes something is piped in from now (over links not known dead). */
  upstreams(): Set<string> {
    const out = new Set<string>();
    for (const l of this.links.values()) if (!l.closed && !l.dead && l.in.size > 0) out.add(l.node);
    return out;
  }

  /** Closes the links of `room` to the nodes `drop` names (edges that left the room). */
  closeLinksWhere(room: string, drop: (node: string) => boolean): void {
    for (const l of [...this.links.values()]) if (l.room === room && drop(l.node)) this.closeLink(l, true);
  }

  // ---------- what other nodes ask of this one ----------

  /** The room's link to `from`, if `farLink` is its far end (a message for an earlier link is stale). */
  private async linkFrom(room: string, from: string, farLink: string): Promise<PipeLink | undefined> {
    const l = this.links.get(key(room, from));
    if (!l) return undefined;
    // Both nodes may open the link at once: the far node can use it (it has this node's answer)
    // before this node's own ask has its answer, i.e. before this end knows the far end's id
    // (seen: a participant's second track refused "no link", never crossing).
    await l.whenKnown(FAR_ID_WAIT_MS);
    return l.isFrom(farLink) && !l.closed ? l : undefined;
  }

  handlers(): NodeHandlers<MediaMethods> {
    const parse = <K extends keyof MediaMethods>(k: K, body: unknown): MediaMethods[K]['req'] => {
      const r = MEDIA_SCHEMAS[k].safeParse(body);
      if (!r.success) throw new NodeCallError('invalid_argument', `${k}: ${r.error.issues[0]?.path.join('.')} ${r.error.issues[0]?.message}`);
      return r.data as MediaMethods[K]['req'];
    };
    const live = (): void => {
      if (this.closed) throw new NodeCallError('unavailable', 'node stopping');
    };
    return {
      'media.link': async (body, from) => {
        const req = parse('media.link', body);
        live();
        const link = await this.open(req.room, await this.rooms.forLink(req.room), from);
        await link.connect(req);
        return link.local;
      },
      'media.pipe': async (body, from) => {
        const req = parse('media.pipe', body);
        live();
        const link = await this.linkFrom(req.room, from, req.link);
        const sfuRoom = this.rooms.get(req.room);
        if (!link || !sfuRoom) throw new NodeCallError('not_found', `no link for room ${JSON.stringify(req.room)} to ${from}`);
        if (!sfuRoom.producers.has(req.producerId)) {
          // A hop on the way: pull it from the one before first.
          if (req.via.length === 0 || !(await this.pull(req.room, sfuRoom, req.producerId, [...req.via, this.opts.nodeId]))) {
            throw new NodeCallError('not_found', `no producer ${req.producerId} here`);
          }
        }
        const owner = sfuRoom.producers.get(req.producerId);
        if (!owner || link.closed) throw new NodeCallError('not_found', `no producer ${req.producerId} here`);
        const existing = link.out.get(req.producerId);
        const consumer = existing ?? (await link.transport.consume({ producerId: owner.producer.id }));
        if (!existing) this.watchOut(link, consumer, req.producerId, !!owner.remote);
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
        (await this.linkFrom(req.room, from, req.link))?.out.get(req.producerId)?.close();
        return {};
      },
      'media.unlink': async (body, from) => {
        const req = parse('media.unlink', body);
        const link = await this.linkFrom(req.room, from, req.link);
        // Nothing more comes over it: what came in is lost, kept until its consumers here have moved.
        if (link) this.linkDead(link, false);
        return {};
      },
      'media.demand': async (body, from) => {
        const req = parse('media.demand', body);
        const link = await this.linkFrom(req.room, from, req.link);
        if (!link?.out.has(req.producerId)) return {};
        link.demand.set(req.producerId, req.layer);
        const room = this.demandRoom(req.room);
        if (this.isPipedIn(req.room, req.producerId)) this.relayDemand(req.room, req.producerId);
        else if (room) this.control?.pipeDemand(room, req.producerId, from, req.layer);
        return {};
      },
      ...this.data.handlers(parse, live, (room, from, link) => this.linkFrom(room, from, link)),
      'media.producerState': async (body, from) => {
        const req = parse('media.producerState', body);
        const p = (await this.linkFrom(req.room, from, req.link))?.in.get(req.producerId);
        if (!p) return {};
        const entry = this.pipedIn.get(key(req.room, req.producerId));
        const current = entry?.producer === p ? entry : undefined;
        if (req.state === 'closed') {
          if (req.reason === 'upstream') {
            // Lost before that hop: kept until its consumers here have moved over another path
            // (a copy already replaced: its re-route retires it).
            if (current) this.reportLost(current);
            return {};
          }
          if (current) this.expected.add(key(req.room, req.producerId));
          p.close();
        } else if (req.state === 'paused') await p.pause();
        else await p.resume();
        return {};
      },
    };
  }

  /** A pipe consumer towards the next hop: its producer's state goes down the path. */
  private watchOut(link: PipeLink, consumer: types.Consumer, producerId: string, pipedIn: boolean): void {
    link.out.set(producerId, consumer);
    if (pipedIn) {
      this.use(link.room, producerId, 1);
      // A relay: a next hop that has not reported yet needs every layer (until it says).
      this.relayDemand(link.room, producerId);
    }
    // The far node's subscribers' layers are not reported back yet: it is taken to need all
    // of them (a publisher-side layer pause must not starve viewers on other nodes).
    const room = this.demandRoom(link.room);
    if (room) this.control?.pipeDemand(room, producerId, link.node, Number.MAX_SAFE_INTEGER);
    const tell = (state: 'paused' | 'resumed'): void => {
      if (link.closed) return;
      this.nodes.call(link.node, 'media.producerState', { room: link.room, link: link.id, producerId, state }).catch((err: Error) => this.log.debug({ err: err.message }, 'producer state not delivered'));
    };
    consumer.on('producerpause', () => tell('paused'));
    consumer.on('producerresume', () => tell('resumed'));
    // This node's own producer closed (its publisher): gone for good. A piped-in one that
    // closes is told down by its close handler, with the reason (tellDownstream).
    consumer.on('producerclose', () => {
      if (!pipedIn && !link.closed) this.nodes.call(link.node, 'media.producerState', { room: link.room, link: link.id, producerId, state: 'closed', reason: 'producer' }).catch(() => undefined);
    });
    consumer.observer.once('close', () => {
      if (link.out.get(producerId) === consumer) {
        link.out.delete(producerId);
        // A later pipe to that node starts unknown again, not at what this one was told.
        link.demand.delete(producerId);
      }
      const r = this.demandRoom(link.room);
      if (r) this.control?.pipeDemand(r, producerId, link.node, undefined);
      if (pipedIn) {
        this.use(link.room, producerId, -1);
        // A relay: the hop that went no longer counts in what is asked upstream.
        if (this.isPipedIn(link.room, producerId)) this.relayDemand(link.room, producerId);
      }
      this.afterRelease(link);
    });
  }

  /** Tells every next hop of a producer that it closed here (its publisher, or a lost upstream). */
  private tellDownstream(room: string, producerId: string, reason: 'producer' | 'upstream'): void {
    for (const l of this.links.values()) {
      if (l.room !== room || l.closed || !l.out.has(producerId)) continue;
      this.nodes.call(l.node, 'media.producerState', { room, link: l.id, producerId, state: 'closed', reason }).catch(() => undefined);
    }
  }

  /** Demand of this node for a piped-in producer: told to the hop it comes from (and to the next one after a re-route). */
  demand(room: string, producerId: string, layer: number): void {
    this.demanded.set(key(room, producerId), layer);
    const link = this.linkWithIn(room, producerId);
    if (!link || link.closed) return;
    this.nodes.call(link.node, 'media.demand', { room, link: link.id, producerId, layer }).catch((err: Error) => this.log.debug({ err: err.message }, 'demand not delivered'));
  }

  /** A relay's demand for what it forwards: the highest its next hops asked for, sent upstream. */
  private relayDemand(room: string, producerId: string): void {
    let max = -1;
    for (const l of this.links.values()) {
      if (l.room === room && !l.closed && l.out.has(producerId)) max = Math.max(max, l.demand.get(producerId) ?? Number.MAX_SAFE_INTEGER);
    }
    if (max >= 0) this.demand(room, producerId, Math.min(max, 15));
  }

  isPipedIn(room: string, producerId: string): boolean {
    return this.pipedIn.has(key(room, producerId));
  }

  /** The piped-in producer as it is now (a re-route makes a new one under the same id). */
  current(room: string, producerId: string): PipedIn | undefined {
    return this.pipedIn.get(key(room, producerId));
  }

  linkList(): readonly PipeLink[] {
    return [...this.links.values()];
  }

  paths(): PipedIn[] {
    return [...this.pipedIn.values()];
  }

  close(): void {
    this.closed = true;
    clearInterval(this.sampler);
    for (const [l, t] of this.deadLinks) {
      clearTimeout(t);
      l.close();
    }
    this.deadLinks.clear();
    for (const t of this.lingering.values()) clearTimeout(t);
    this.lingering.clear();
    this.data.close();
    for (const link of [...this.links.values()]) link.close();
    this.links.clear();
  }
}
