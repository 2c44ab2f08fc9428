import uWS from 'uWebSockets.js';
import { registerHealth } from './api/health.js';
import { send, withHead } from './api/http.js';
import { RoomServiceApi } from './api/roomService.js';
import { registerHistory } from './api/history.js';
import { registerStatic } from './api/static.js';
import { registerTwirp } from './api/twirp.js';
import { roomServiceBodyLimits } from './api/twirpLimits.js';
import { DEV_API_KEY, DEV_API_SECRET } from './config/load.js';
import { TokenVerifier } from './auth/token.js';
import type { Config } from './config/schema.js';
import type { Room } from './rooms/room.js';
import { createLogger, type Logger } from './obs/logger.js';
import { Metrics } from './obs/metrics.js';
import { CloseCode } from './rooms/ports.js';
import { RoomManager } from './rooms/roomManager.js';
import { SfuService } from './sfu/sfuService.js';
import { TurnService } from './turn/turnService.js';
import { MeshService } from './mesh/meshService.js';
import { registerMeshApi } from './api/mesh.js';
import { DirectCallPolicy } from './mesh/directCallPolicy.js';
import { WorkerPool } from './sfu/workerPool.js';
import { SignalGateway } from './signal/gateway.js';
import { availableParallelism } from 'node:os';
import { RoomDelivery, type Delivery } from './rooms/delivery.js';
import { ClusterDelivery } from './cluster/bridge.js';
import { ClusterRooms } from './cluster/clusterRooms.js';
import { RoomDirectory } from './cluster/directory.js';
import { ClusterCommands, roomServiceHandler } from './cluster/commands.js';
import { Cascade } from './cluster/media/cascade.js';
import { refuseMedia } from './cluster/media/mediaMethods.js';
import { edgeRooms, RelayRooms } from './cluster/media/mediaRooms.js';
import { PipeRouter } from './cluster/media/pipeRouter.js';
import { registerCascadeMetrics } from './cluster/media/cascadeMetrics.js';
import { NodeClient, NodeServer } from './cluster/nodeChannel.js';
import type { ClusterMethods } from './cluster/nodeMethods.js';
import { NO_REMOTE_PRODUCERS } from './sfu/remoteProducers.js';
import { clusterRoomService } from './cluster/roomServiceCluster.js';
import type { RoomMirror } from './rooms/mirror.js';
import { RoomMessaging } from './rooms/messaging.js';
import { requestHandlers, type MediaRequests } from './node/handlers.js';
import { UwsFanout } from './signal/uwsFanout.js';
import { SfuNotifier } from './sfu/sfuNotifier.js';
import { registerSfuMetrics } from './sfu/sfuMetrics.js';
import { Persistence } from './node/persistence.js';
import { AdmissionControl } from './node/admissionControl.js';
import { NodeLoad } from './node/nodeLoad.js';
import { registerClusterMetrics } from './cluster/clusterMetrics.js';
import { TransportRequests } from './sfu/transportRequests.js';
import { PublishRequests } from './sfu/publishRequests.js';
import { SubscribeRequests } from './sfu/subscribeRequests.js';
import { AicService } from './aic/aicService.js';
import { ClusterClock } from './util/clusterClock.js';
import { HookMetrics } from './aic/hooks/hookMetrics.js';
import { HookService } from './aic/hooks/hookService.js';
import { loadRtpParser } from './aic/rtp/parser.js';
import { ConsumerSwitch } from './sfu/consumerSwitch.js';
import { NO_PRODUCER_HOOKS, type ProducerHooks } from './sfu/producerHooks.js';
import { NO_MEDIA_CONTROL, type MediaControl } from './sfu/mediaControl.js';
import { VERSION } from './version.js';

export interface ServerDeps {
  logger?: Logger;
  /** A copy of the rooms for an outside observer; a node keeps none by default. */
  mirror?: RoomMirror;
}

/**
 * Owns everything a node runs: the uWS app and its listen socket, the signalling gateway,
 * the room manager and everything else a node runs. close() releases all of it.
 */
export class AuraServer {
  readonly app: uWS.TemplatedApp;
  readonly log: Logger;
  readonly metrics = new Metrics();
  readonly verifier: TokenVerifier;
  /** Wall-clock time nodes compare: Redis-corrected in a cluster (util/clusterClock.ts). */
  readonly clock: ClusterClock;
  private clockStarted = false;
  readonly manager: RoomManager;
  readonly gateway: SignalGateway;
  readonly messaging: RoomMessaging;
  readonly mirror: RoomMirror | undefined;
  readonly pool: WorkerPool | undefined;
  readonly sfu: SfuService | undefined;
  /** AIC (aic.enabled): the SFU's layer controller. */
  readonly aic: AicService | undefined;
  /** AIC's RTP hook chains (aic.hooks not empty). */
  readonly hooks: HookService | undefined;
  readonly turn: TurnService;
  readonly mesh: MeshService;
  readonly calls: DirectCallPolicy;
  /** Overload admission: refuses new joins (and readiness) while the node is over its limits. */
  readonly admission: AdmissionControl;
  /** One room across nodes (with redis.url on an edge); none on a single node. */
  readonly cluster: ClusterRooms | undefined;
  private readonly commands: ClusterCommands | undefined;
  /** Node-to-node calls (cluster): the calling and the answering side. */
  private readonly nodeClient: NodeClient<ClusterMethods> | undefined;
  private nodeServer: NodeServer<ClusterMethods> | undefined;
  /** Media across nodes (cluster with an SFU): the edge's view, and the forwarding core (relays too). */
  readonly cascade: Cascade | undefined;
  readonly pipes: PipeRouter | undefined;
  private readonly relayRooms: RelayRooms | undefined;
  private readonly relayDir: RoomDirectory | undefined;
  private listenSocket: uWS.us_listen_socket | null = null;
  private persistence: Persistence | undefined;
  private drainPromise: Promise<void> | undefined;
  port = 0;

  constructor(readonly config: Config, deps: ServerDeps = {}) {
    this.log = deps.logger ?? createLogger(config.log_level, config.node_id);
    this.mirror = deps.mirror;
    this.app = withHead(uWS.App()); // HEAD answers like GET on every route
    // With Redis, the wall clock nodes compare is Redis's (leases, node calls, tokens).
    this.clock = new ClusterClock(this.log);
    this.verifier = new TokenVerifier(config.keys, 10, this.clock.now);
    const sig = config.signal;
    const relay = config.mesh.role === 'relay';
    const wildcard = (ip: string): boolean => ip === '0.0.0.0' || ip === '::';
    this.turn = new TurnService(
      config.turn,
      config.turn.host || config.sfu.announced_ip || (wildcard(config.sfu.listen_ip) ? '127.0.0.1' : config.sfu.listen_ip),
      this.metrics.registry,
      this.log,
    );
    const mc = config.mesh;
    this.mesh = new MeshService(
      {
        nodeId: config.node_id,
        role: mc.role,
        region: mc.region,
        version: VERSION,
        capacity: mc.capacity,
        publicUrl: mc.public_url, // filled in at listen() when empty (the port may be 0 until then)
        turnUrls: this.turn.urls,
        heartbeatMs: mc.heartbeat_ms,
        probeIntervalMs: mc.probe_interval_ms,
        probeFanout: mc.probe_fanout,
        policy: mc.route_policy,
        routeCacheTtlMs: mc.route_cache_ttl_s * 1000,
        routeCacheMax: mc.route_cache_max,
        redisUrl: config.redis.url,
        redisPrefix: mc.redis_prefix,
        now: this.clock.now,
      },
      // Load as the mesh sees it: relays carry TURN allocations, edges participants.
      () => (relay ? (this.turn.embedded?.allocationCount ?? 0) : this.manager.participantCount()),
      this.metrics.registry,
      this.log,
    );
    const fanout = new UwsFanout(this.app, sig.max_backpressure_bytes, this.metrics, this.log);
    const localDelivery = new RoomDelivery(fanout);
    // With Redis, rooms span nodes: the directory and the delivery bridge (cluster/).
    // Relays use its connections for node-to-node calls only (media they forward).
    const dir = config.redis.url ? new RoomDirectory(config.redis.url, `${mc.redis_prefix}cluster:`, this.log) : undefined;
    this.relayDir = relay ? dir : undefined;
    const bridge = dir && !relay ? new ClusterDelivery(localDelivery, dir, config.node_id, this.log) : undefined;
    const delivery: Delivery = bridge ?? localDelivery;
    this.manager = new RoomManager(
      {
        nodeId: config.node_id,
        version: VERSION,
        autoCreate: config.room.auto_create,
        emptyTimeoutS: config.room.empty_timeout_s,
        maxParticipants: config.room.max_participants,
        maxMetadataBytes: config.room.max_metadata_bytes,
        resumeWindowMs: sig.resume_window_s * 1000,
        replayCapacity: sig.replay_buffer,
        pingIntervalMs: sig.ping_interval_s * 1000,
        relayOnly: relay,
      },
      delivery,
      { iceServers: (identity) => this.turn.iceServersFor(identity), probeTargets: () => this.mesh.probeTargets(), reconnectTargets: () => this.mesh.reconnectTargets() },
      this.mirror,
      this.log,
    );
    this.messaging = new RoomMessaging(delivery, { maxDataBytes: sig.max_data_bytes });
    this.cluster =
      dir && bridge
        ? new ClusterRooms(
            this.manager,
            dir,
            bridge,
            localDelivery,
            {
              nodeId: config.node_id,
              heartbeatMs: mc.heartbeat_ms,
              leaseMs: mc.heartbeat_ms * 3,
              defaultMaxParticipants: config.room.max_participants,
              emptyTimeoutS: config.room.empty_timeout_s,
              // Drain move tokens are signed with an API secret every node of the cluster holds.
              ...(Object.values(config.keys)[0] ? { moveSecret: Object.values(config.keys)[0] } : {}),
              now: this.clock.now,
            },
            this.log,
          )
        : undefined;
    if (this.cluster) registerClusterMetrics(this.metrics.registry, this.cluster);
    // Signed with an API secret: only nodes holding one of the cluster's keys can call a node.
    const secret = Object.values(config.keys)[0];
    if (dir && (this.cluster || relay) && secret) this.nodeClient = new NodeClient(dir, config.node_id, secret, 3000, this.log, this.clock.now);
    let media: MediaRequests | undefined;
    const sfu = config.sfu;
    const roomOpts = {
      maxConsumersPerRouter: sfu.max_consumers_per_router,
      activeSpeakerIntervalMs: sfu.active_speaker_interval_ms,
      audioLevelIntervalMs: sfu.audio_level_interval_ms,
    };
    const pipeOpts = { nodeId: config.node_id, listenIp: sfu.listen_ip, announcedIp: sfu.announced_ip, lingerMs: sfu.cascade_linger_ms, lossSampleMs: 1000, keyFrameRequestDelayMs: sfu.pipe_key_frame_request_delay_ms };
    // Edges run the SFU; relays in a cluster run workers for pipe transports only.
    if (sfu.enabled && (!relay || this.nodeClient)) {
      this.pool = new WorkerPool(
        {
          workers: sfu.workers || availableParallelism(),
          codecs: sfu.codecs,
          logLevel: sfu.log_level,
          listenIp: sfu.listen_ip,
          announcedIp: sfu.announced_ip,
          webrtcPort: sfu.webrtc_port,
          rtcMinPort: sfu.rtc_min_port,
          rtcMaxPort: sfu.rtc_max_port,
        },
        this.log,
      );
    }
    if (this.pool && relay && this.nodeClient) {
      const relayRooms = new RelayRooms(this.pool, roomOpts, this.log);
      this.relayRooms = relayRooms;
      this.pipes = new PipeRouter(relayRooms, this.nodeClient, undefined, () => undefined, pipeOpts, this.log, this.mesh.mediaLinks);
      this.mesh.nodes.on('nodeOffline', (id) => this.pipes?.nodeGone(id));
      registerSfuMetrics(this.metrics.registry, this.pool, relayRooms.rooms);
    }
    if (this.pool && !relay) {
      const notifier = new SfuNotifier(delivery);
      this.sfu = new SfuService(
        this.pool,
        this.manager,
        notifier,
        roomOpts,
        this.log,
      );
      let control: MediaControl = NO_MEDIA_CONTROL;
      if (config.aic.enabled) {
        // A producer piped in from another node: this node's need goes upstream, not to its publisher.
        const tell = (room: Room, sid: string, producerId: string, layer: number): void => {
          if (this.pipes?.isPipedIn(room.name, producerId)) this.pipes.demand(room.name, producerId, layer);
          else notifier.layersWanted(room, sid, producerId, layer);
        };
        this.aic = new AicService(config.aic, config.node_id, this.manager, tell, this.metrics.registry, this.log);
        control = this.aic;
      }
      if (dir && this.nodeClient && this.cluster) {
        this.pipes = new PipeRouter(edgeRooms(this.sfu), this.nodeClient, control, (name) => this.manager.rooms.get(name), pipeOpts, this.log, this.mesh.mediaLinks);
        this.cascade = new Cascade(
          this.pipes,
          this.sfu,
          notifier,
          control,
          this.manager,
          dir,
          this.mesh,
          this.cluster.roster,
          {
            nodeId: config.node_id,
            rerouteCheckMs: sfu.cascade_reroute_check_ms,
            rerouteRatio: 0.7,
            rerouteHoldMs: sfu.cascade_reroute_hold_ms,
            peerTimeoutMs: sfu.cascade_peer_timeout_ms,
            // Past the mesh's expiry of a node that really died (which clears it sooner).
            peerDownHoldMs: Math.max(10_000, 3 * mc.heartbeat_ms),
          },
          this.log,
        );
      }
      let hooks: ProducerHooks = NO_PRODUCER_HOOKS;
      if (this.aic && config.aic.hooks.length > 0) {
        const aic = this.aic;
        const parser = loadRtpParser({ logger: this.log });
        this.hooks = new HookService(config.aic, (name) => aic.arm(name), new ConsumerSwitch(notifier, control, this.cascade ?? NO_REMOTE_PRODUCERS), parser, new HookMetrics(this.metrics.registry), this.log);
        hooks = this.hooks;
      }
      media = {
        transports: new TransportRequests(
          this.sfu,
          this.pool,
          {
            initialAvailableOutgoingBitrate: sfu.initial_available_outgoing_bitrate,
            allowPlainTransports: sfu.allow_plain_transports,
            listenIp: sfu.listen_ip,
            announcedIp: sfu.announced_ip,
          },
          (identity) => this.turn.iceServersFor(identity),
          control,
        ),
        publish: new PublishRequests(this.sfu, this.manager, notifier, control, { keyFrameRequestDelayMs: sfu.key_frame_request_delay_ms }, hooks),
        subscribe: new SubscribeRequests(this.sfu, notifier, control, this.cascade ?? NO_REMOTE_PRODUCERS, hooks),
      };
      registerSfuMetrics(this.metrics.registry, this.pool, this.sfu.rooms);
    }
    if (this.pipes) registerCascadeMetrics(this.metrics.registry, this.pipes);
    this.calls = new DirectCallPolicy(
      this.manager,
      delivery,
      this.mesh,
      { nodeId: config.node_id, region: mc.region, p2pTimeoutMs: mc.p2p_timeout_ms, turnAvailable: this.turn.enabled },
      this.log,
      this.cluster?.roster,
    );
    const adm = config.admission;
    this.admission = new AdmissionControl(
      {
        sampleMs: adm.sample_ms,
        retryAfterS: adm.retry_after_s,
        limits: {
          maxConsumersPerWorker: adm.max_consumers_per_worker,
          maxEventLoopLagMs: adm.max_event_loop_lag_ms,
          maxWorkerCpuPercent: adm.max_worker_cpu_percent,
          recoverRatio: adm.recover_ratio,
          recoverMs: adm.recover_s * 1000,
        },
      },
      new NodeLoad(this.pool),
      (grant, token) => this.manager.holdsSession(grant, token),
      this.metrics.registry,
      this.log,
    );
    this.gateway = new SignalGateway(
      this.app,
      {
        path: sig.path,
        maxFrameBytes: sig.max_frame_bytes,
        idleTimeoutS: sig.idle_timeout_s,
        maxBackpressureBytes: sig.max_backpressure_bytes,
        rate: {
          messagesPerS: sig.rate_limit.messages_per_s,
          burst: sig.rate_limit.burst,
          violationsBeforeClose: sig.rate_limit.violations_before_close,
        },
        ipConnect: { perS: sig.ip_connect_limit.per_s, burst: sig.ip_connect_limit.burst },
      },
      this.verifier,
      this.cluster ?? this.manager,
      this.admission,
      requestHandlers(this.manager, this.messaging, this.calls, media),
      fanout,
      this.metrics,
      this.log,
    );
    this.metrics.bindSources({
      participants: () => this.manager.participantCount(),
      rooms: () => this.manager.rooms.size,
    });
    this.manager.on('resumed', (_r, _p, outcome) => this.metrics.resumes.inc({ outcome }));
    registerHealth(
      this.app,
      {
        ready: () => this.listenSocket !== null && !this.manager.isDraining && !this.admission.overloaded,
        status: () => ({
          node: config.node_id,
          version: VERSION,
          rooms: this.manager.rooms.size,
          participants: this.manager.participantCount(),
          connections: this.gateway.connectionCount,
          draining: this.manager.isDraining,
          admission: this.admission.status(),
          role: config.mesh.role,
          mesh: { registry: this.mesh.registry.kind, nodes: this.mesh.registry.snapshot().nodes.size },
          clock: { offsetMs: this.clock.offsetMs },
          turn: { mode: config.turn.mode, allocations: this.turn.embedded?.allocationCount ?? 0 },
          ...(this.pool
            ? { sfu: { workers: this.pool.slots.map((w) => ({ index: w.index, pid: w.pid, routers: w.routers, consumers: w.consumers })) } }
            : {}),
        }),
      },
      this.metrics,
    );
    this.manager.on('linkReport', (_room, p, rtts) => {
      this.mesh.reportClientRtts(p.identity, rtts).catch((err: unknown) => this.log.debug({ err }, 'client link report not stored'));
    });
    registerMeshApi(this.app, this.mesh, this.verifier, config.node_id, () => (this.pipes?.paths() ?? []).map(({ room, producerId, path }) => ({ room, producerId, path })));
    const roomService = new RoomServiceApi(this.manager, this.messaging, this.sfu).methods();
    if (dir && this.nodeClient) {
      this.commands = new ClusterCommands(this.nodeClient);
      const media = this.pipes?.handlers() ?? refuseMedia();
      this.nodeServer = new NodeServer<ClusterMethods>(dir, config.node_id, secret!, { roomService: roomServiceHandler(roomService), ...media }, this.log, this.clock.now);
    }
    registerTwirp(this.app, 'livekit.RoomService', this.commands && dir && this.cluster ? clusterRoomService(roomService, this.manager, dir, this.commands, this.cluster) : roomService, {
      verifier: this.verifier,
      metrics: this.metrics,
      log: this.log,
      bodyLimits: roomServiceBodyLimits({ maxMetadataBytes: config.room.max_metadata_bytes, maxDataBytes: sig.max_data_bytes }),
      defaultBodyBytes: 8 * 1024,
      maxInflightBytes: config.api.max_inflight_body_bytes,
    });
    registerHistory(this.app, () => this.persistence?.db, this.verifier);
    registerStatic(this.app, config.development ? { key: DEV_API_KEY, secret: DEV_API_SECRET, now: this.clock.now } : null);
    this.app.any('/*', (res) => send(res, { status: 404, body: { code: 'NOT_FOUND', message: 'no such route' } }));
  }

  /** Starts the media workers (if enabled) and the database, then listens. */
  async listen(port = this.config.port, host = this.config.bind_address): Promise<number> {
    if (this.pool && this.pool.slots.length === 0) {
      await this.pool.start();
    }
    // The first reading before anything stamps or leases (bounded: Redis may be away).
    if (this.config.redis.url && !this.clockStarted) {
      this.clockStarted = true;
      await this.clock.start(this.config.redis.url, 10_000, 1000);
    }
    this.persistence ??= await Persistence.start(this.config, {
      events: this.cluster ?? this.manager,
      mesh: this.mesh.registry,
      calls: this.calls,
      sfu: this.sfu,
      aic: this.aic,
      registry: this.metrics.registry,
      clustered: !!this.cluster,
      log: this.log,
    });
    await this.cluster?.start();
    await this.relayDir?.connect().catch((err: Error) => this.log.warn({ err: err.message }, 'relay: Redis unavailable; no media forwarding until it returns'));
    this.nodeClient?.start().catch((err: Error) => this.log.warn({ err: err.message }, 'cluster command channel not subscribed'));
    await this.turn.start();
    return new Promise((resolve, reject) => {
      this.app.listen(host, port, (sock) => {
        if (!sock) return reject(new Error(`cannot listen on ${host}:${port}`));
        this.listenSocket = sock;
        this.port = uWS.us_socket_local_port(sock);
        this.log.info({ port: this.port, host, role: this.config.mesh.role }, 'listening');
        const h = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host.includes(':') ? `[${host}]` : host;
        this.mesh.setPublicUrl(this.config.mesh.public_url || `http://${h}:${this.port}`);
        this.mesh.start().then(
          () => resolve(this.port),
          (err: unknown) => reject(err as Error),
        );
      });
    });
  }

  /**
   * Graceful drain: refuse new joins, tell every session to reconnect elsewhere, and resolve
   * once all connections are gone or `timeoutMs` has passed (then the rest are closed, 1012).
   */
  drain(timeoutMs = this.config.drain.timeout_s * 1000): Promise<void> {
    this.drainPromise ??= new Promise<void>((resolve) => {
      this.log.info({ timeoutMs, connections: this.gateway.connectionCount }, 'draining');
      const deadline = Date.now() + timeoutMs;
      const cluster = this.cluster;
      const moveDeadline = this.clock.now() + timeoutMs;
      this.manager.beginDrain(timeoutMs, cluster ? (room, p) => cluster.moveToken(room, p, moveDeadline) ?? '' : undefined);
      const done = (): boolean => {
        if (this.gateway.connectionCount > 0 && Date.now() < deadline) return false;
        if (this.gateway.connectionCount > 0) {
          this.log.info({ left: this.gateway.connectionCount }, 'drain deadline: closing remaining sessions');
          this.manager.closeAll('SERVER_SHUTDOWN', CloseCode.SERVICE_RESTART);
        }
        resolve();
        return true;
      };
      // Nobody connected: done now, not a tick later.
      if (done()) return;
      const tick = setInterval(() => {
        if (done()) clearInterval(tick);
      }, 50);
    });
    return this.drainPromise;
  }

  /** Closes everything this server owns. */
  async close(): Promise<void> {
    this.manager.closeAll('SERVER_SHUTDOWN', CloseCode.SERVICE_RESTART);
    this.cascade?.close();
    this.pipes?.close();
    this.relayRooms?.close();
    this.nodeClient?.close();
    await this.cluster?.close();
    await this.relayDir?.close();
    this.manager.dispose();
    this.admission.close();
    this.persistence?.stopSampling();
    this.hooks?.close();
    this.aic?.close();
    this.clock.close();
    await this.sfu?.close();
    await this.pool?.close();
    await this.turn.close();
    await this.mesh.close();
    // Room/participant end rows were just queued by closeAll(): write them, then stop.
    await this.persistence?.close();
    if (this.listenSocket) uWS.us_listen_socket_close(this.listenSocket);
    this.listenSocket = null;
    await this.mirror?.close();
  }
}
