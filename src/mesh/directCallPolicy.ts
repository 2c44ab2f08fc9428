import { EventEmitter } from 'node:events';
import type { RosterEvents } from '../cluster/clusterTypes.js';
import type { Logger } from '../obs/logger.js';
import type { Participant } from '../rooms/participant.js';
import type { Room } from '../rooms/room.js';
import type { Delivery } from '../rooms/delivery.js';
import type { RoomManager } from '../rooms/roomManager.js';
import type { RouteDecision } from '../signal/messages.js';
import type { ValidBody } from '../signal/rpc.js';

type RouteReport = ValidBody<'routeReport'>;
import { newId } from '../util/ids.js';
import type { MeshService } from './meshService.js';
import type { Endpoint, RouteCandidate, RoutePlan } from './planner.js';
import { staticQuality } from './quality.js';

interface Call {
  id: string;
  a: Participant;
  b: Participant;
  plan: RoutePlan;
  reported: Set<string>; // identities that reported
}

export interface RouteOutcome {
  callId: string;
  room: string;
  identity: string;
  tier: RouteReport['tier'];
  connected: boolean;
  predictedQuality: number;
  observedQuality: number;
  latencyMs: number;
  lossPct: number;
  path: string[];
}

export interface DirectCallPolicyEvents {
  /** A client's report of what its call got (persisted as route_performance). */
  outcome: [RouteOutcome];
}

/**
 * Decides each room's route from the mesh plan: a room of exactly two P2P-capable
 * participants under a P2P-first plan becomes a direct call (both told whom to connect to,
 * who offers, how long to try, and the fallbacks: TURN relay, then the SFU); anything else
 * uses the SFU, and a direct call that gains a third participant is switched back to it.
 * Clients' reports of what they got train the predictor and move relay trust.
 */
export class DirectCallPolicy extends EventEmitter<DirectCallPolicyEvents> {
  private readonly calls = new Map<string, Call>(); // by room name
  private readonly ended = new Map<string, Call>(); // recent, for late reports; by call id
  private readonly chains = new Map<string, Promise<void>>();

  constructor(
    manager: RoomManager,
    private readonly delivery: Delivery,
    private readonly mesh: MeshService,
    private readonly opts: { nodeId: string; region: string; p2pTimeoutMs: number; turnAvailable: boolean },
    private readonly log: Logger,
    /** In a cluster: the roster of other nodes' participants changed (a direct call is node-local). */
    remote?: EventEmitter<RosterEvents>,
  ) {
    super();
    remote?.on('remoteChanged', (room) => this.schedule(room));
    manager.on('participantJoined', (room) => this.schedule(room));
    manager.on('participantLeft', (room) => this.schedule(room));
    manager.on('roomFinished', (room) => this.end(room.name));
  }

  /** Evaluations of one room run one at a time, in event order. */
  private schedule(room: Room): void {
    // The common case costs nothing: no direct call in the room and not exactly two visible.
    if (!this.calls.has(room.name) && !this.chains.has(room.name) && firstVisible(room, 3).length !== 2) return;
    const prev = this.chains.get(room.name) ?? Promise.resolve();
    const next = prev
      .then(() => this.evaluate(room))
      .catch((err: unknown) => this.log.warn({ err, room: room.name }, 'route decision failed'))
      .finally(() => {
        if (this.chains.get(room.name) === next) this.chains.delete(room.name);
      });
    this.chains.set(room.name, next);
  }

  private async evaluate(room: Room): Promise<void> {
    const visible = firstVisible(room, 3);
    const current = this.calls.get(room.name);
    // Both on this node: a participant on another node makes it a room for the SFU (the
    // call's two ends are told by this node, which knows only its own participants' paths).
    if (visible.length === 2 && visible.every((p) => p.p2p) && !hasVisibleRemote(room)) {
      const [a, b] = visible as [Participant, Participant];
      if (current && ((current.a === a && current.b === b) || (current.a === b && current.b === a))) return;
      const plan = await this.mesh.query({ from: endpoint(a, this.opts.nodeId, this.opts.region), to: endpoint(b, this.opts.nodeId, this.opts.region), participants: 2, edgeId: this.opts.nodeId });
      // The room may have changed while the plan was computed.
      if (room.participants.get(a.identity) !== a || room.participants.get(b.identity) !== b || firstVisible(room, 3).length !== 2 || hasVisibleRemote(room)) return;
      if (plan.candidates[0]?.tier !== 'p2p') return this.toSfu(room, current);
      // The clients' TURN is this node's (its iceServers), so the fallback exists when it does.
      const fallbacks: ('turn' | 'sfu')[] = this.opts.turnAvailable ? ['turn', 'sfu'] : ['sfu'];
      const call: Call = { id: newId('CA_'), a, b, plan, reported: new Set() };
      this.calls.set(room.name, call);
      const base = { callId: call.id, tier: 'p2p' as const, timeoutMs: this.opts.p2pTimeoutMs, fallbacks, predictedQuality: plan.candidates[0].predictedQuality };
      // The participant with the smaller sid offers (impolite); the other answers.
      const aFirst = a.sid < b.sid;
      this.delivery.toParticipants(room, [a.sid], { route: { ...base, peerIdentity: b.identity, polite: !aFirst } });
      this.delivery.toParticipants(room, [b.sid], { route: { ...base, peerIdentity: a.identity, polite: aFirst } });
      this.log.info({ room: room.name, call: call.id, a: a.identity, b: b.identity, fallbacks }, 'direct call');
      return;
    }
    this.toSfu(room, current);
  }

  private toSfu(room: Room, current: Call | undefined): void {
    if (!current) return;
    this.end(room.name);
    const still = [current.a, current.b].filter((p) => room.participants.get(p.identity) === p);
    const decision: RouteDecision = { callId: current.id, tier: 'sfu' };
    this.delivery.toParticipants(room, still.map((p) => p.sid), { route: decision });
    this.log.info({ room: room.name, call: current.id }, 'direct call ended: SFU');
  }

  private end(roomName: string): void {
    const c = this.calls.get(roomName);
    if (!c) return;
    this.calls.delete(roomName);
    this.ended.set(c.id, c);
    if (this.ended.size > 1000) this.ended.delete(this.ended.keys().next().value!);
  }

  /** A client's report of what its call got (the routeReport request). */
  report(room: Room, p: Participant, r: RouteReport): void {
    const live = this.calls.get(room.name);
    const call = live?.id === r.callId ? live : this.ended.get(r.callId);
    if (!call || (call.a !== p && call.b !== p)) return; // not a call of this participant: ignored
    if (call.reported.has(`${p.identity}:${r.tier}`)) return; // one report per tier per side
    call.reported.add(`${p.identity}:${r.tier}`);
    // TURN here is this node's TURN server; the SFU is this node. The plan's prediction is the
    // one to learn from only if it was for that same path (its TURN pick may be another relay).
    const path = r.tier === 'p2p' ? [] : [this.opts.nodeId];
    const candidate: RouteCandidate | undefined = call.plan.candidates.find((c) => c.tier === r.tier && c.path.join() === path.join());
    const latencyMs = r.rttMs !== undefined ? r.rttMs / 2 : (candidate?.metrics.latencyMs ?? 0);
    const lossPct = r.lossPct ?? 0;
    const measured = { latencyMs, lossPct, jitterMs: 0, hops: path.length, maxLoad: candidate?.metrics.maxLoad ?? 0 };
    const observedQuality = r.connected ? (r.quality || staticQuality(measured)) : 0;
    void this.mesh
      .feedback({ tier: r.tier, path, metrics: candidate?.metrics ?? measured, observedQuality, connected: r.connected })
      .catch((err: unknown) => this.log.debug({ err }, 'route feedback failed'));
    this.emit('outcome', {
      callId: call.id,
      room: room.name,
      identity: p.identity,
      tier: r.tier,
      connected: r.connected,
      predictedQuality: candidate?.predictedQuality ?? 0,
      observedQuality,
      latencyMs,
      lossPct,
      path,
    });
  }
}

/** Up to `max` non-hidden participants (stops there: rooms can be large). */
function firstVisible(room: Room, max: number): Participant[] {
  const out: Participant[] = [];
  for (const p of room.participants.values()) {
    if (p.hidden) continue;
    out.push(p);
    if (out.length >= max) break;
  }
  return out;
}

function hasVisibleRemote(room: Room): boolean {
  for (const r of room.remote.values()) if (!r.info.permission.hidden) return true;
  return false;
}

/** A participant as the planner sees it: near this edge (it reached us), at its measured RTT. */
function endpoint(p: Participant, nodeId: string, region: string): Endpoint {
  const rtts: Record<string, number> = {};
  if (p.rttMs > 0) rtts[nodeId] = p.rttMs;
  if (p.nodeRtts) for (const [id, rtt] of p.nodeRtts) rtts[id] = rtt;
  return { identity: p.identity, region, ...(Object.keys(rtts).length ? { rtts } : {}) };
}
