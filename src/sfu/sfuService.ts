import type { Logger } from 'pino';
import type { Participant } from '../rooms/participant.js';
import type { Room } from '../rooms/room.js';
import type { RoomManager } from '../rooms/roomManager.js';
import { SignalError } from '../signal/errors.js';
import type { SfuNotifier } from './sfuNotifier.js';
import { SfuPeer } from './sfuPeer.js';
import { SfuRoom, type SfuRoomOptions } from './sfuRoom.js';
import type { WorkerPool, WorkerSlot } from './workerPool.js';

// Looked up by ids the client sends, it answers NOT_FOUND for every one.
const NO_MEDIA = new SfuPeer('', '');

/** Media operations of the server API (RoomService) on a participant's tracks. */
export interface TrackControl {
  /** MutePublishedTrack: pause/resume the producer and tell its owner. False if no such track. */
  setTrackMuted(room: Room, p: Participant, producerId: string, muted: boolean): Promise<boolean>;
  /** UpdateSubscriptions: close and refuse (or allow again and re-announce) consumers of these tracks. */
  setSubscribed(room: Room, p: Participant, producerIds: string[], subscribe: boolean): void;
}

/**
 * The SFU's lifecycle: a SfuRoom per room (created on the first media request), a SfuPeer per
 * participant with media, both closed when the room domain says the room finished or the
 * participant left, rebuilt by the clients when a worker dies. Requests are SfuRequests';
 * what clients are told is SfuNotifier's.
 */
export class SfuService implements TrackControl {
  readonly rooms = new Map<string, SfuRoom>(); // by room name
  private readonly creating = new Map<string, Promise<SfuRoom>>();

  constructor(
    private readonly pool: WorkerPool,
    private readonly manager: RoomManager,
    private readonly notifier: SfuNotifier,
    private readonly opts: SfuRoomOptions,
    private readonly log: Logger,
  ) {
    manager.on('participantJoined', (room, p) => {
      const sfuRoom = this.rooms.get(room.name);
      if (sfuRoom) notifier.existing(room, sfuRoom, p);
    });
    manager.on('participantLeft', (room, p) => this.closePeer(room, p));
    manager.on('roomFinished', (room) => this.closeRoom(room.name));
    manager.on('permissionChanged', (room, p) => this.enforcePermissions(room, p));
    pool.on('workerDied', (dead) => this.onWorkerDied(dead));
  }

  async ensureRoom(room: Room): Promise<SfuRoom> {
    const existing = this.rooms.get(room.name);
    if (existing) return existing;
    let p = this.creating.get(room.name);
    if (!p) {
      let made: SfuRoom | undefined;
      p = SfuRoom.create(
        room.name,
        room.sid,
        this.pool,
        this.opts,
        {
          activeSpeaker: (producerId) => made && this.notifier.activeSpeaker(room, made, producerId),
          audioLevels: (levels) => made && this.notifier.audioLevels(room, made, levels),
        },
        this.log,
      ).then((r) => (made = r));
      this.creating.set(room.name, p);
    }
    try {
      const sfuRoom = await p;
      if (room.closed) {
        sfuRoom.close();
        throw new SignalError('NOT_FOUND', 'the room was closed', '');
      }
      this.rooms.set(room.name, sfuRoom);
      return sfuRoom;
    } finally {
      this.creating.delete(room.name);
    }
  }

  peerOf(room: Room, p: Participant): SfuPeer | undefined {
    return this.rooms.get(room.name)?.peers.get(p.sid);
  }

  /** The participant's peer for a lookup by id: one with nothing in it when it has no media. */
  ownPeer(room: Room, p: Participant): SfuPeer {
    return this.peerOf(room, p) ?? NO_MEDIA;
  }

  /**
   * After creating `obj` (an await): the participant's peer, made on its first media object,
   * if the participant is still in the room; otherwise `obj` is closed (nobody would own it).
   */
  keep(room: Room, p: Participant, obj: { close(): void }): SfuPeer {
    try {
      const sfuRoom = this.rooms.get(room.name);
      if (!sfuRoom) throw new SignalError('NOT_FOUND', 'the room has no media any more', '');
      return this.peerFor(room, p, sfuRoom);
    } catch (err) {
      obj.close();
      throw err;
    }
  }

  /** The participant's peer (made on first use), after checking it is still in the room. */
  peerFor(room: Room, p: Participant, sfuRoom: SfuRoom): SfuPeer {
    if (room.closed || sfuRoom.closed || !room.has(p)) throw new SignalError('NOT_FOUND', 'you are no longer in the room', '');
    let peer = sfuRoom.peers.get(p.sid);
    if (!peer) {
      const made = new SfuPeer(p.sid, p.identity);
      made.on('producerClosed', ({ producer }) => {
        this.manager.trackUnpublished(room, p, producer.id);
        if (!sfuRoom.closed && !room.closed) this.notifier.producerRemoved(room, made, producer.id);
      });
      sfuRoom.peers.set(p.sid, made);
      peer = made;
    }
    return peer;
  }

  private closePeer(room: Room, p: Participant): void {
    const sfuRoom = this.rooms.get(room.name);
    const peer = sfuRoom?.peers.get(p.sid);
    if (!sfuRoom || !peer) return;
    sfuRoom.peers.delete(p.sid);
    peer.close();
  }

  private closeRoom(name: string): void {
    const sfuRoom = this.rooms.get(name);
    if (!sfuRoom) return;
    this.rooms.delete(name);
    sfuRoom.close();
  }

  /** Rooms on the dead worker lose all media; their participants are told to rebuild it. */
  private onWorkerDied(dead: WorkerSlot): void {
    for (const [name, sfuRoom] of [...this.rooms]) {
      if (!sfuRoom.usesWorker(dead)) continue;
      this.closeRoom(name);
      const room = this.manager.rooms.get(name);
      if (room) this.notifier.mediaReset(room, 'media server restarted');
    }
  }

  /** After a permission change: what the participant may no longer do is undone. */
  private enforcePermissions(room: Room, p: Participant): void {
    const peer = this.peerOf(room, p);
    if (!peer) return;
    if (!p.permission.canPublish) for (const { producer } of [...peer.producers.values()]) producer.close();
    if (!p.permission.canSubscribe) for (const c of [...peer.consumers.values()]) c.close();
    if (!p.permission.canPublishData) for (const dp of [...peer.dataProducers.values()]) dp.close();
  }

  async setTrackMuted(room: Room, p: Participant, producerId: string, muted: boolean): Promise<boolean> {
    const pr = this.peerOf(room, p)?.producers.get(producerId)?.producer;
    if (!pr) return false;
    if (muted) await pr.pause();
    else await pr.resume();
    this.manager.trackPaused(room, p, producerId, muted);
    this.notifier.trackMuted(room, p.sid, producerId, muted);
    return true;
  }

  setSubscribed(room: Room, p: Participant, producerIds: string[], subscribe: boolean): void {
    const sfuRoom = this.rooms.get(room.name);
    if (!sfuRoom) return;
    const peer = this.peerFor(room, p, sfuRoom);
    for (const id of producerIds) {
      if (subscribe) {
        peer.blocked.delete(id);
        const owner = sfuRoom.producers.get(id);
        if (owner) this.notifier.producerAdded(room, owner.peer, { id, kind: owner.producer.kind, paused: owner.producer.paused }, owner.source, p.sid);
      } else {
        peer.blocked.add(id);
        for (const c of [...peer.consumers.values()]) {
          if (c.producerId !== id) continue;
          c.close();
          this.notifier.consumerClosed(room, p.sid, c.id, 'unsubscribed');
        }
      }
    }
  }

  async close(): Promise<void> {
    for (const name of [...this.rooms.keys()]) this.closeRoom(name);
  }
}
