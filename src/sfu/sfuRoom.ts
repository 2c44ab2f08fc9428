import type { types } from 'mediasoup';
import type { Logger } from 'pino';
import type { SfuPeer } from './sfuPeer.js';
import { trackIdOf } from './trackId.js';
import type { WorkerPool, WorkerSlot } from './workerPool.js';

/** A room's router on one worker, with the consumers it serves. */
export class RouterSlot {
  consumers = 0;
  constructor(
    readonly router: types.Router,
    readonly worker: WorkerSlot,
  ) {}
}

export interface SfuRoomOptions {
  maxConsumersPerRouter: number;
  activeSpeakerIntervalMs: number;
  audioLevelIntervalMs: number;
}

export interface SfuRoomSink {
  activeSpeaker(producerId: string): void;
  audioLevels(levels: { producerId: string; volume: number }[]): void;
}

/**
 * The media side of one room: a main router (producers live there) and, when the room has
 * more subscribers than one router should serve, extra routers on other workers with every
 * producer piped to them. Closing it closes its routers, which closes everything below.
 */
export class SfuRoom {
  readonly slots: RouterSlot[] = [];
  readonly peers = new Map<string, SfuPeer>(); // by participant sid
  /**
   * Every track in the room (by track id: see trackIdOf) with the producer carrying it here
   * and its owner. `remote`: piped in from that node (its publisher is there; that node tells
   * newcomers about it).
   */
  readonly producers = new Map<string, { producer: types.Producer; peer: SfuPeer; source: string; remote?: string }>();
  /** Data producers piped in from other nodes (this node's own are their peers'), with the publisher. */
  readonly remoteData = new Map<string, { dataProducer: types.DataProducer; peer: SfuPeer }>();
  /** The track the ActiveSpeakerObserver last named (it reports changes only). */
  dominantProducerId: string | null = null;
  private activeSpeakerObserver!: types.ActiveSpeakerObserver;
  private audioLevelObserver!: types.AudioLevelObserver;
  private pending: Promise<RouterSlot> | null = null;
  closed = false;

  private constructor(
    readonly name: string,
    /** The room session's sid (the call id in the database). */
    readonly roomSid: string,
    private readonly pool: WorkerPool,
    private readonly opts: SfuRoomOptions,
    private readonly log: Logger,
  ) {}

  static async create(name: string, roomSid: string, pool: WorkerPool, opts: SfuRoomOptions, sink: SfuRoomSink, log: Logger): Promise<SfuRoom> {
    const room = new SfuRoom(name, roomSid, pool, opts, log);
    const worker = pool.leastLoaded();
    if (!worker) throw new Error('no mediasoup worker available');
    const main = await room.addSlot(worker);
    room.activeSpeakerObserver = await main.router.createActiveSpeakerObserver({ interval: opts.activeSpeakerIntervalMs });
    room.activeSpeakerObserver.on('dominantspeaker', ({ producer }) => {
      room.dominantProducerId = trackIdOf(producer);
      sink.activeSpeaker(room.dominantProducerId);
    });
    room.audioLevelObserver = await main.router.createAudioLevelObserver({
      interval: opts.audioLevelIntervalMs,
      threshold: -70,
      maxEntries: 8,
    });
    room.audioLevelObserver.on('volumes', (vols) => sink.audioLevels(vols.map((v) => ({ producerId: trackIdOf(v.producer), volume: v.volume }))));
    return room;
  }

  get main(): RouterSlot {
    return this.slots[0]!;
  }

  usesWorker(w: WorkerSlot): boolean {
    return this.slots.some((s) => s.worker === w);
  }

  private async addSlot(worker: WorkerSlot): Promise<RouterSlot> {
    const router = await worker.worker.createRouter({ mediaCodecs: this.pool.mediaCodecs });
    worker.routers++;
    router.observer.once('close', () => worker.routers--);
    const slot = new RouterSlot(router, worker);
    this.slots.push(slot);
    return slot;
  }

  /**
   * The router a new receive transport should use: the first one under the consumer limit,
   * else a new router on another worker with all producers piped in. (mediasoup 3.12 cannot
   * pipe between two routers of the same worker, so without another worker the main router
   * takes the extra load.)
   */
  async slotForSubscriber(): Promise<RouterSlot> {
    const free = this.slots.find((s) => s.consumers < this.opts.maxConsumersPerRouter);
    if (free) return free;
    if (this.pending) return this.pending;
    const worker = this.pool.leastLoaded(new Set(this.slots.map((s) => s.worker)));
    if (!worker) {
      this.log.warn({ room: this.name }, 'room over its per-router consumer limit and no other worker to spread to');
      return this.main;
    }
    this.pending = (async () => {
      const slot = await this.addSlot(worker);
      for (const { producer } of this.producers.values()) await this.pipe(producer, slot);
      return slot;
    })();
    try {
      return await this.pending;
    } finally {
      this.pending = null;
    }
  }

  private async pipe(producer: types.Producer, to: RouterSlot): Promise<void> {
    if (producer.closed || to.router.closed) return;
    await this.main.router.pipeToRouter({ producerId: producer.id, router: to.router });
  }

  /** Adds a track's producer; a second producer of the same track (a re-routed copy) takes its place. */
  async addProducer(producer: types.Producer, peer: SfuPeer, source: string, remote?: string): Promise<void> {
    const trackId = trackIdOf(producer);
    this.producers.set(trackId, remote ? { producer, peer, source, remote } : { producer, peer, source });
    producer.observer.once('close', () => {
      if (this.producers.get(trackId)?.producer === producer) this.producers.delete(trackId);
    });
    if (producer.kind === 'audio') {
      await this.activeSpeakerObserver.addProducer({ producerId: producer.id }).catch(() => undefined);
      await this.audioLevelObserver.addProducer({ producerId: producer.id }).catch(() => undefined);
    }
    for (const slot of this.slots.slice(1)) await this.pipe(producer, slot);
  }

  /** A data producer piped in from another node, for this room's subscribers. */
  addRemoteData(dataProducer: types.DataProducer, peer: SfuPeer): void {
    this.remoteData.set(dataProducer.id, { dataProducer, peer });
    dataProducer.observer.once('close', () => this.remoteData.delete(dataProducer.id));
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const p of this.peers.values()) p.close();
    this.peers.clear();
    for (const s of this.slots) s.router.close();
    this.slots.length = 0;
    this.producers.clear();
    this.remoteData.clear();
  }
}
