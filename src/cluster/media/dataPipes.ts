import type { types } from 'mediasoup';
import type { Logger } from '../../obs/logger.js';
import { SfuPeer } from '../../sfu/sfuPeer.js';
import type { SfuRoom } from '../../sfu/sfuRoom.js';
import { NodeCallError, type NodeClient, type NodeHandlers } from '../nodeChannel.js';
import type { ClusterMethods } from '../nodeMethods.js';
import type { MediaMethods, PipedDataProducer } from './mediaMethods.js';
import type { MediaRooms } from './mediaRooms.js';
import type { PipeLink } from './pipeLink.js';

/** What DataPipes uses of its PipeRouter: the links, made and released there. */
export interface DataPipeHost {
  nodeId: string;
  lingerMs: number;
  nodes: NodeClient<ClusterMethods>;
  links(): Iterable<PipeLink>;
  /** The room's link to `node`, made and connected once. */
  link(room: string, sfuRoom: SfuRoom, node: string): Promise<PipeLink>;
  /** Something on `link` went: it closes when nothing is left on it. */
  afterRelease(link: PipeLink): void;
  closed(): boolean;
}

type DataMethods = Pick<MediaMethods, 'media.hasData' | 'media.pipeData' | 'media.unpipeData' | 'media.dataClosed'>;

const key = (room: string, id: string): string => `${room}\n${id}`;

/**
 * Data producers (SCTP) across nodes, over the PipeRouter's links (their pipe transports have
 * SCTP on): pulled hop by hop on the first consumeData as producers are (a relay pulls from
 * the hop before it first), each crossing a link once, kept while used here (data consumers,
 * pipe data consumers to next hops) and released `lingerMs` after the last; a close travels
 * down the path. Not re-routed when a path is lost. The origin is found by asking the room's
 * nodes (data producers are not in the directory's tracks).
 */
export class DataPipes {
  private readonly pulling = new Map<string, Promise<boolean>>();
  /** Users here of each piped-in data producer, and linger timers. */
  private readonly users = new Map<string, number>();
  private readonly lingering = new Map<string, NodeJS.Timeout>();

  constructor(
    private readonly host: DataPipeHost,
    private readonly rooms: MediaRooms,
    private readonly log: Logger,
  ) {}

  /** Brings data producer `id` into the room here over `path` (origin first, this node last). */
  pull(room: string, sfuRoom: SfuRoom, id: string, path: string[]): Promise<boolean> {
    const k = key(room, id);
    let p = this.pulling.get(k);
    if (!p) {
      p = this.doPull(room, sfuRoom, id, path).finally(() => this.pulling.delete(k));
      this.pulling.set(k, p);
    }
    return p;
  }

  private async doPull(room: string, sfuRoom: SfuRoom, id: string, path: string[]): Promise<boolean> {
    if (this.host.closed() || sfuRoom.remoteData.has(id)) return !this.host.closed();
    const upstream = path.at(-2);
    if (!upstream || path.at(-1) !== this.host.nodeId) return false;
    const link = await this.host.link(room, sfuRoom, upstream);
    const info = await this.host.nodes.call(upstream, 'media.pipeData', { room, link: link.id, dataProducerId: id, via: path.slice(0, -2) });
    if (link.closed || sfuRoom.closed) return false;
    const dp = await link.transport.produceData({
      id,
      sctpStreamParameters: info.sctpStreamParameters as types.SctpStreamParameters,
      label: info.label,
      protocol: info.protocol,
      appData: { pipedFrom: upstream },
    });
    const k = key(room, id);
    link.dataIn.set(id, dp);
    dp.observer.once('close', () => {
      link.dataIn.delete(id);
      this.users.delete(k);
      clearTimeout(this.lingering.get(k));
      this.lingering.delete(k);
      // Next hops (a relay's) lose it too: not re-routed (data producers are not; a subscriber
      // consumes again if it is told the data producer again).
      for (const l of this.host.links()) {
        if (l.room === room && !l.closed && l.dataOut.has(id)) this.host.nodes.call(l.node, 'media.dataClosed', { room, link: l.id, dataProducerId: id }).catch(() => undefined);
      }
      this.host.afterRelease(link);
    });
    sfuRoom.addRemoteData(dp, new SfuPeer(info.publisherSid, info.publisherIdentity));
    this.release(room, id, link); // until its first user
    return true;
  }

  /** Which of `nodes` publishes data producer `id` in the room (each asked at once), if any. */
  async origin(room: string, id: string, nodes: Iterable<string>): Promise<string | undefined> {
    const asked = await Promise.all(
      [...nodes].map((n) =>
        this.host.nodes
          .call(n, 'media.hasData', { room, dataProducerId: id })
          .then((r) => (r.has ? n : undefined))
          .catch(() => undefined),
      ),
    );
    return asked.find((n) => n !== undefined);
  }

  /** One more (+1) or one fewer (-1) user here of a piped-in data producer (data consumers, next hops). */
  use(room: string, id: string, delta: 1 | -1): void {
    const k = key(room, id);
    const link = this.linkWithIn(room, id);
    if (!link) return;
    const n = (this.users.get(k) ?? 0) + delta;
    if (n > 0) {
      this.users.set(k, n);
      clearTimeout(this.lingering.get(k));
      this.lingering.delete(k);
      return;
    }
    this.users.delete(k);
    this.release(room, id, link);
  }

  private linkWithIn(room: string, id: string): PipeLink | undefined {
    for (const l of this.host.links()) if (l.room === room && l.dataIn.has(id)) return l;
    return undefined;
  }

  /** After `lingerMs` with no user here: the piped data producer goes, and the upstream's pipe data consumer. */
  private release(room: string, id: string, link: PipeLink): void {
    const k = key(room, id);
    if (this.host.closed() || this.users.has(k) || this.lingering.has(k)) return;
    const t = setTimeout(() => {
      this.lingering.delete(k);
      if (this.users.has(k) || link.closed) return;
      link.dataIn.get(id)?.close();
      this.host.nodes.call(link.node, 'media.unpipeData', { room, link: link.id, dataProducerId: id }).catch((err: Error) => this.log.debug({ err: err.message }, 'unpipeData not delivered'));
    }, this.host.lingerMs);
    this.lingering.set(k, t);
  }

  /** A pipe data consumer towards the next hop: its data producer's close goes down the path. */
  private watchOut(link: PipeLink, dc: types.DataConsumer, pipedIn: boolean): void {
    const id = dc.dataProducerId;
    link.dataOut.set(id, dc);
    if (pipedIn) this.use(link.room, id, 1);
    // This node's own data producer closed (its publisher). A piped-in one tells down on its close.
    dc.on('dataproducerclose', () => {
      if (!pipedIn && !link.closed) this.host.nodes.call(link.node, 'media.dataClosed', { room: link.room, link: link.id, dataProducerId: id }).catch(() => undefined);
    });
    dc.observer.once('close', () => {
      if (link.dataOut.get(id) === dc) link.dataOut.delete(id);
      if (pipedIn) this.use(link.room, id, -1);
      this.host.afterRelease(link);
    });
  }

  /** This node's own data producer `id` in the room (a local peer's), if any. */
  private own(sfuRoom: SfuRoom, id: string): { dp: types.DataProducer; peer: SfuPeer } | undefined {
    for (const peer of sfuRoom.peers.values()) {
      const dp = peer.dataProducers.get(id);
      if (dp) return { dp, peer };
    }
    return undefined;
  }

  handlers(
    parse: <K extends keyof MediaMethods>(k: K, body: unknown) => MediaMethods[K]['req'],
    live: () => void,
    linkFrom: (room: string, from: string, farLink: string) => Promise<PipeLink | undefined>,
  ): NodeHandlers<DataMethods> {
    return {
      'media.hasData': async (body) => {
        const req = parse('media.hasData', body);
        const r = this.rooms.get(req.room);
        return { has: !!r && !!this.own(r, req.dataProducerId) };
      },
      'media.pipeData': async (body, from) => {
        const req = parse('media.pipeData', body);
        live();
        const link = await linkFrom(req.room, from, req.link);
        const sfuRoom = this.rooms.get(req.room);
        if (!link || !sfuRoom) throw new NodeCallError('not_found', `no link for room ${JSON.stringify(req.room)} to ${from}`);
        const missing = (): NodeCallError => new NodeCallError('not_found', `no data producer ${req.dataProducerId} here`);
        const find = (): { dp: types.DataProducer; peer: SfuPeer; pipedIn: boolean } | undefined => {
          const own = this.own(sfuRoom, req.dataProducerId);
          if (own) return { ...own, pipedIn: false };
          const r = sfuRoom.remoteData.get(req.dataProducerId);
          return r && { dp: r.dataProducer, peer: r.peer, pipedIn: true };
        };
        // A hop on the way: pull it from the one before first.
        if (!find() && (req.via.length === 0 || !(await this.pull(req.room, sfuRoom, req.dataProducerId, [...req.via, this.host.nodeId])))) throw missing();
        const owner = find();
        if (!owner || link.closed) throw missing();
        const existing = link.dataOut.get(req.dataProducerId);
        const dc = existing ?? (await link.transport.consumeData({ dataProducerId: req.dataProducerId }));
        if (!existing) this.watchOut(link, dc, owner.pipedIn);
        return {
          sctpStreamParameters: dc.sctpStreamParameters,
          label: dc.label,
          protocol: dc.protocol,
          publisherSid: owner.peer.sid,
          publisherIdentity: owner.peer.identity,
        } satisfies PipedDataProducer;
      },
      'media.unpipeData': async (body, from) => {
        const req = parse('media.unpipeData', body);
        (await linkFrom(req.room, from, req.link))?.dataOut.get(req.dataProducerId)?.close();
        return {};
      },
      'media.dataClosed': async (body, from) => {
        const req = parse('media.dataClosed', body);
        (await linkFrom(req.room, from, req.link))?.dataIn.get(req.dataProducerId)?.close();
        return {};
      },
    };
  }

  close(): void {
    for (const t of this.lingering.values()) clearTimeout(t);
    this.lingering.clear();
  }
}
