import type { EventEmitter } from 'node:events';
import type { types } from 'mediasoup';
import type { MeshService } from '../../mesh/meshService.js';
import type { Logger } from '../../obs/logger.js';
import type { Room } from '../../rooms/room.js';
import type { RoomManager } from '../../rooms/roomManager.js';
import type { RemoteProducers } from '../../sfu/remoteProducers.js';
import { ConsumerSwitch } from '../../sfu/consumerSwitch.js';
import type { MediaControl } from '../../sfu/mediaControl.js';
import type { SfuNotifier } from '../../sfu/sfuNotifier.js';
import { SfuPeer } from '../../sfu/sfuPeer.js';
import { SignalError } from '../../signal/errors.js';
import type { SfuRoom } from '../../sfu/sfuRoom.js';
import type { SfuService } from '../../sfu/sfuService.js';
import type { RosterEvents } from '../clusterTypes.js';
import type { RoomDirectory } from '../directory.js';
import { PeerWatch } from './peerWatch.js';
import type { PipedIn, PipeRouter } from './pipeRouter.js';

export interface CascadeOptions {
  nodeId: string;
  /** How often the paths of piped-in producers are compared with the best the mesh knows. */
  rerouteCheckMs: number;
  /** A new path must cost under this fraction of the current one to replace it (hysteresis). */
  rerouteRatio: number;
  /** And a producer keeps a path at least this long before it moves again. */
  rerouteHoldMs: number;
  /** A node media comes from that answers no probe this long is routed around (PeerWatch; 0: off). */
  peerTimeoutMs: number;
  /** For this long at most (or until the mesh expires it or it registers again). */
  peerDownHoldMs: number;
}

const key = (room: string, id: string): string => `${room}\n${id}`;

// A producer not (yet) in the directory's tracks is looked up this many times, this far apart.
const ORIGIN_READS = 8;
const ORIGIN_READ_GAP_MS = 100;

/**
 * Media of a room across edge nodes, as an edge sees it: subscribers here consuming a
 * producer published on another node (RemoteProducers) get it piped in over the path the mesh
 * picks (direct, or through relay nodes; PipeRouter carries it); this node's producers are
 * announced to participants who join on other nodes. A piped producer that is lost (a relay
 * died) or whose path the mesh now beats by a margin (held a while, so paths do not flap) is
 * pulled again over the new path before the old copy goes, and its consumers here are moved to
 * the new copy (ConsumerSwitch, reason "reroute": the SDK swaps the track in place; a
 * plain-RTP subscriber just keeps receiving). mediasoup 3.12 cannot move a consumer to another
 * producer, so each is a new consumer on the same transport. Only when the new path ends on
 * the same link as the old (one pipe carries a track once) is the old copy dropped first and
 * the track announced again (its subscribers subscribe anew).
 */
export class Cascade implements RemoteProducers {
  /** Per room and producer: the participants here consuming it, with how many consumers each (a switched consumer overlaps its successor). */
  private readonly subscribers = new Map<string, Map<string, number>>();
  private readonly movedAt = new Map<string, number>();
  private readonly timer: NodeJS.Timeout;
  private readonly watch: PeerWatch;
  private readonly switcher: ConsumerSwitch;
  /** Copies being re-routed (a loss can be reported while a better path is being taken). */
  private readonly rerouting = new Set<PipedIn>();
  private closed = false;

  constructor(
    private readonly router: PipeRouter,
    private readonly sfu: SfuService,
    private readonly notifier: SfuNotifier,
    control: MediaControl,
    private readonly manager: RoomManager,
    private readonly dir: RoomDirectory,
    private readonly mesh: MeshService,
    roster: EventEmitter<RosterEvents>,
    private readonly opts: CascadeOptions,
    private readonly log: Logger,
  ) {
    // A participant who joined on another node learns this node's producers from here.
    roster.on('remoteJoined', (room, info) => {
      const sfuRoom = this.sfu.rooms.get(room.name);
      if (sfuRoom && info.permission.canSubscribe) this.notifier.localProducersTo(room, sfuRoom, info.sid);
    });
    // An edge with nobody left in the room (left, reaped, dead) has nothing to carry. Links
    // to relays are not the roster's business: they close when idle or when the relay goes.
    roster.on('remoteChanged', (room) => {
      const edges = new Set([...room.remote.values()].map((r) => r.node));
      router.closeLinksWhere(room.name, (node) => !edges.has(node) && !this.isRelay(node));
    });
    manager.on('roomFinished', (room) => router.closeRoom(room.name));
    mesh.nodes.on('nodeOffline', (id) => router.nodeGone(id));
    // Faster than the mesh's expiry: a node pipes come from that stops answering.
    this.watch = new PeerWatch(
      () => router.upstreams(),
      (id) => mesh.registry.snapshot().nodes.get(id)?.addresses.http,
      (id) => {
        mesh.markMediaDown(id, opts.peerDownHoldMs);
        router.peerDown(id);
      },
      { timeoutMs: opts.peerTimeoutMs },
      log,
    );
    this.switcher = new ConsumerSwitch(notifier, control, this);
    router.on('lost', (p) => this.lost(p));
    this.timer = setInterval(() => this.recheck(), opts.rerouteCheckMs);
    this.timer.unref();
  }

  private isRelay(node: string): boolean {
    return this.mesh.registry.snapshot().nodes.get(node)?.role === 'relay';
  }

  /** Origin first, this node last: the mesh's path over relays, else direct. */
  private pathFrom(origin: string): string[] {
    return this.mesh.mediaPath(origin, this.opts.nodeId)?.path ?? [origin, this.opts.nodeId];
  }

  /** A path from the same origin avoiding the hops of `failed`, else the best there is. */
  private pathAround(failed: readonly string[]): string[] {
    const hops = failed.slice(1, -1);
    return (hops.length > 0 ? this.mesh.mediaPath(failed[0]!, this.opts.nodeId, undefined, hops)?.path : undefined) ?? this.pathFrom(failed[0]!);
  }

  async fetch(room: Room, sfuRoom: SfuRoom, producerId: string): Promise<boolean> {
    if (this.closed) return false;
    const origin = await this.originOf(room.name, producerId);
    if (!origin) {
      this.log.warn({ room: room.name, producerId }, 'cascade: no node publishes this producer (not in the directory)');
      return false;
    }
    const path = this.pathFrom(origin);
    let ok: boolean;
    try {
      ok = await this.router.pull(room.name, sfuRoom, producerId, path);
    } catch (err) {
      // The subscriber's SDK tries again while the producer is still announced.
      this.log.warn({ room: room.name, producerId, path, err: (err as Error).message }, 'cascade: pull failed');
      throw new SignalError('UNAVAILABLE', `consume.producerId: could not bring the producer from node ${origin}`, 'consume.producerId');
    }
    if (ok) this.movedAt.set(key(room.name, producerId), Date.now());
    else if (!this.closed) this.log.warn({ room: room.name, producerId, path }, 'cascade: pull gave nothing (link or room closed meanwhile)');
    return ok;
  }

  /** A data producer published on another node: its origin asked for (data is not in the directory's tracks). */
  async fetchData(room: Room, sfuRoom: SfuRoom, dataProducerId: string): Promise<boolean> {
    if (this.closed) return false;
    const nodes = new Set([...(await this.dir.participants(room.name)).values()].map((e) => e.node).filter((n) => n !== this.opts.nodeId));
    const origin = await this.router.data.origin(room.name, dataProducerId, nodes);
    return origin ? this.router.data.pull(room.name, sfuRoom, dataProducerId, this.pathFrom(origin)) : false;
  }

  dataConsumed(room: Room, dataProducerId: string, dataConsumer: types.DataConsumer): void {
    this.router.data.use(room.name, dataProducerId, 1);
    const piped = this.sfu.rooms.get(room.name)?.remoteData.get(dataProducerId)?.dataProducer;
    dataConsumer.observer.once('close', () => {
      // Counted against the data producer it consumed (a new one may have been piped since).
      if (this.sfu.rooms.get(room.name)?.remoteData.get(dataProducerId)?.dataProducer === piped) this.router.data.use(room.name, dataProducerId, -1);
    });
  }

  /**
   * The node that publishes it, from the directory's tracks. The origin writes a track after
   * announcing it, and a newcomer on another node can be told of a producer still being added
   * there (Cascade's `remoteJoined` handler, during `addProducer`'s awaits), before its track
   * write is even sent: a miss is read again a few times, briefly. (By reasoning; the failure
   * that prompted it was the link race PipeRouter.linkFrom waits out.)
   */
  private async originOf(room: string, producerId: string): Promise<string | undefined> {
    for (let attempt = 0; attempt < ORIGIN_READS; attempt++) {
      if (attempt > 0) await new Promise((r) => setTimeout(r, ORIGIN_READ_GAP_MS));
      if (this.closed) return undefined;
      for (const e of (await this.dir.participants(room)).values()) {
        if (e.node !== this.opts.nodeId && e.tracks.some((t) => t.producerId === producerId)) return e.node;
      }
    }
    return undefined;
  }

  consumed(room: Room, producerId: string, consumer: types.Consumer): void {
    const k = key(room.name, producerId);
    const sid = (consumer.appData as { participantSid?: string }).participantSid;
    let subs = this.subscribers.get(k);
    if (!subs) this.subscribers.set(k, (subs = new Map()));
    if (sid) subs.set(sid, (subs.get(sid) ?? 0) + 1);
    this.router.use(room.name, producerId, 1);
    const piped = this.router.current(room.name, producerId);
    consumer.observer.once('close', () => {
      // Counted against the producer it consumed (after a re-route, the old one).
      if (this.router.current(room.name, producerId) === piped) this.router.use(room.name, producerId, -1);
      if (sid) {
        const n = (subs.get(sid) ?? 1) - 1;
        if (n > 0) subs.set(sid, n);
        else subs.delete(sid);
      }
      if (subs.size === 0 && this.subscribers.get(k) === subs) this.subscribers.delete(k);
    });
  }

  /**
   * Moves a piped-in track to the best path now: the new copy first, its consumers here
   * moved to it, then the old copy retired. A lost copy nobody here consumes, or one no path
   * brings again (its origin went too), is retired (hops after this one are told).
   */
  private async reroute(p: PipedIn): Promise<void> {
    if (this.rerouting.has(p)) return;
    this.rerouting.add(p);
    try {
      await this.moveCopy(p);
    } finally {
      this.rerouting.delete(p);
    }
  }

  private async moveCopy(p: PipedIn): Promise<void> {
    const room = this.manager.rooms.get(p.room);
    const sfuRoom = this.sfu.rooms.get(p.room);
    const k = key(p.room, p.producerId);
    const subs = [...(this.subscribers.get(k)?.keys() ?? [])];
    if (!room || !sfuRoom || this.closed || subs.length === 0) {
      if (p.lost) this.router.retire(p);
      return;
    }
    // Gone already (its link closed outright): its consumers went with it, nothing to move.
    if (p.producer.closed) return this.pullAgain(room, sfuRoom, p, subs, this.pathAround(p.path));
    // A lost copy: around every hop of the path that failed, when the mesh knows such a path
    // (which hop broke is not known here, and the mesh may not have seen it yet).
    const path = p.lost ? this.pathAround(p.path) : this.pathFrom(p.path[0]!);
    let next: PipedIn | undefined;
    try {
      next = await this.router.pullReplacement(sfuRoom, p, path);
    } catch (err) {
      this.log.warn({ room: p.room, producerId: p.producerId, path, err: (err as Error).message }, 'cascade: re-route failed');
      // A lost copy that could not be replaced: let it go and try the plain way (the origin may be gone too).
      if (!p.lost || this.router.current(p.room, p.producerId) !== p) return;
      this.router.retire(p);
      return this.pullAgain(room, sfuRoom, p, subs, path);
    }
    if (!next) {
      const current = this.router.current(p.room, p.producerId);
      if (current && current !== p) return; // another re-route took it over
      // Over the same last hop as the old copy, or the old copy went meanwhile (its consumers
      // with it): the plain way, the track announced again.
      if (!p.producer.closed) this.router.retire(p);
      return this.pullAgain(room, sfuRoom, p, subs, path);
    }
    this.movedAt.set(k, Date.now());
    if (p.producer.closed) {
      // The old copy went while the new one came (its consumers with it): tell them it is back.
      this.announce(room, p, subs);
      return;
    }
    // Twice: a consume that was on its way to the old copy during the first pass is moved too.
    // Only to the copy that is current (a newer re-route may have taken over meanwhile).
    let moved = await this.switcher.switchTrack(room, sfuRoom, p.producerId, next.producer.id, 'reroute');
    moved += await this.switcher.switchTrack(room, sfuRoom, p.producerId, next.producer.id, 'reroute');
    this.router.retire(p);
    this.log.info({ room: p.room, producerId: p.producerId, from: p.path, to: path, consumersMoved: moved }, 'cascade: producer re-routed');
  }

  /** Pulls a track whose copy here is gone and tells its subscribers here it is back (they subscribe anew). */
  private async pullAgain(room: Room, sfuRoom: SfuRoom, p: PipedIn, subs: string[], path: string[]): Promise<void> {
    try {
      if (!(await this.router.pull(p.room, sfuRoom, p.producerId, path))) return;
    } catch (err) {
      this.log.warn({ room: p.room, producerId: p.producerId, path, err: (err as Error).message }, 'cascade: re-route failed');
      return;
    }
    this.movedAt.set(key(p.room, p.producerId), Date.now());
    this.log.info({ room: p.room, producerId: p.producerId, from: p.path, to: path }, 'cascade: producer pulled again; subscribers told');
    this.announce(room, p, subs);
  }

  private announce(room: Room, p: PipedIn, subs: string[]): void {
    const peer = new SfuPeer(p.info.publisherSid, p.info.publisherIdentity);
    const producer = { id: p.producerId, kind: p.info.kind, paused: p.info.paused };
    for (const sid of subs) if (room.participantBySid(sid)) this.notifier.producerAdded(room, peer, producer, p.info.source, sid);
  }

  private lost(p: PipedIn): void {
    this.log.warn({ room: p.room, producerId: p.producerId, path: p.path }, 'cascade: piped producer lost; re-routing');
    void this.reroute(p);
  }

  /** Moves piped-in producers whose path the mesh now beats by the margin (and held long enough). */
  private recheck(): void {
    if (this.closed) return;
    const now = Date.now();
    for (const p of this.router.paths()) {
      if (p.path.at(-1) !== this.opts.nodeId) continue; // a hop for others (relays only)
      const k = key(p.room, p.producerId);
      if (now - (this.movedAt.get(k) ?? 0) < this.opts.rerouteHoldMs) continue;
      const best = this.mesh.mediaPath(p.path[0]!, this.opts.nodeId, p.path);
      const bestPath = best?.path ?? [p.path[0]!, this.opts.nodeId];
      if (bestPath.join() === p.path.join()) continue;
      const current = best?.currentCost;
      // A path the mesh can no longer cost (a link of it unmeasured or a node gone) moves when a
      // measured one exists; a measured one moves only for a clear gain.
      if (best && current !== undefined && best.cost >= current * this.opts.rerouteRatio) continue;
      if (!best && current === undefined) continue; // nothing measured either way: stay
      this.movedAt.set(k, now);
      void this.reroute(p);
    }
  }

  close(): void {
    this.closed = true;
    clearInterval(this.timer);
    this.watch.close();
  }
}
