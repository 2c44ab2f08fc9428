import { BlockList, isIP } from 'node:net';
import { z } from 'zod';
import { addCidr } from '../turn/peerFilter.js';

const port = z.number().int().min(0).max(65535);
const positiveInt = z.number().int().positive();
const cidr = z.string().refine((c) => {
  try {
    addCidr(new BlockList(), c);
    return true;
  } catch {
    return false;
  }
}, 'must be a CIDR (address/prefix)');

const hookKinds = z.array(z.enum(['audio', 'video'])).min(1).optional();

/** One built-in RTP hook of the chain (aic.hooks, run in this order; docs/AIC.md "RTP hooks"). */
export const rtpHookSchema = z.discriminatedUnion('name', [
  z.strictObject({ name: z.literal('packet_stats'), kinds: hookKinds, window_ms: z.number().int().min(100).default(1000) }),
  z.strictObject({
    name: z.literal('speech'),
    kinds: z.array(z.literal('audio')).min(1).optional(),
    level_dbov: z.number().int().min(0).max(127).default(60),
    hold_ms: z.number().int().nonnegative().default(400),
  }),
  z.strictObject({
    name: z.literal('fault'),
    kinds: hookKinds,
    mode: z.enum(['throw', 'stall']),
    after_packets: z.number().int().nonnegative().default(0),
    stall_ms: z.number().positive().default(100),
  }),
]);
export type RtpHookConfig = z.infer<typeof rtpHookSchema>;

export const configSchema = z
  .object({
    node_id: z.string(),
    port,
    bind_address: z.string().min(1),
    log_level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']),
    keys: z.record(
      z.string().min(1),
      z.string().min(32, 'API secrets must be at least 32 characters'),
    ),
    development: z.boolean(),
    room: z.strictObject({
      auto_create: z.boolean(),
      empty_timeout_s: z.number().nonnegative(),
      max_participants: z.number().int().nonnegative(),
      max_metadata_bytes: positiveInt,
    }),
    signal: z.strictObject({
      path: z.string().startsWith('/'),
      max_frame_bytes: z.number().int().min(1024),
      max_data_bytes: positiveInt,
      idle_timeout_s: z.number().int().min(8).max(960),
      ping_interval_s: z.number().positive(),
      max_backpressure_bytes: z.number().int().min(1024),
      resume_window_s: z.number().nonnegative(),
      replay_buffer: positiveInt,
      rate_limit: z.strictObject({
        messages_per_s: z.number().positive(),
        burst: positiveInt,
        violations_before_close: positiveInt,
      }),
      ip_connect_limit: z.strictObject({
        per_s: z.number().positive(),
        burst: positiveInt,
      }),
    }),
    drain: z.strictObject({ timeout_s: z.number().nonnegative() }),
    // Overload admission (node/admissionControl.ts); a limit of 0 turns its check off.
    admission: z.strictObject({
      sample_ms: z.number().int().min(50),
      max_consumers_per_worker: z.number().nonnegative(),
      max_event_loop_lag_ms: z.number().nonnegative(),
      max_worker_cpu_percent: z.number().nonnegative().max(100),
      recover_ratio: z.number().positive().max(1),
      recover_s: z.number().nonnegative(),
      retry_after_s: z.number().int().nonnegative(),
    }),
    sfu: z.strictObject({
      enabled: z.boolean(),
      workers: z.number().int().nonnegative(),
      codecs: z
        .array(z.enum(['opus', 'VP8', 'VP9', 'H264']))
        .min(1)
        .refine((c) => c.includes('opus'), 'opus is required (audio)')
        .refine((c) => new Set(c).size === c.length, 'codecs must not repeat'),
      log_level: z.enum(['debug', 'warn', 'error', 'none']),
      listen_ip: z.string().min(1),
      announced_ip: z.string(),
      webrtc_port: port,
      rtc_min_port: port,
      rtc_max_port: port,
      max_consumers_per_router: positiveInt,
      initial_available_outgoing_bitrate: positiveInt,
      active_speaker_interval_ms: positiveInt,
      audio_level_interval_ms: positiveInt,
      allow_plain_transports: z.boolean(),
      cascade_linger_ms: z.number().int().nonnegative(),
      cascade_reroute_check_ms: positiveInt,
      cascade_reroute_hold_ms: z.number().int().nonnegative(),
      cascade_peer_timeout_ms: z.number().int().nonnegative(),
      key_frame_request_delay_ms: z.number().int().min(0).max(10_000),
      pipe_key_frame_request_delay_ms: z.number().int().min(0).max(10_000),
    }),
    turn: z
      .strictObject({
        mode: z.enum(['embedded', 'external', 'off']),
        secret: z.string(),
        realm: z.string().min(1),
        credential_ttl_s: z.number().int().min(60),
        host: z.string(),
        listen_ip: z.string().refine((s) => isIP(s) !== 0, 'must be an IP address'),
        port: port,
        relay_ip: z.string().refine((s) => s === '' || isIP(s) !== 0, 'must be an IP address or empty'),
        external_ip: z.string().refine((s) => s === '' || isIP(s) !== 0, 'must be an IP address or empty'),
        relay_min_port: port,
        relay_max_port: port,
        max_allocations_per_user: positiveInt,
        listen_buffer_bytes: z.number().int().min(0).max(1 << 30),
        relay_buffer_bytes: z.number().int().min(0).max(1 << 30),
        urls: z.array(z.string().regex(/^turns?:[^\s]+$/, 'must be a turn: or turns: URL')),
        allowed_peer_cidrs: z.array(cidr),
        denied_peer_cidrs: z.array(cidr),
      })
      .refine((t) => t.relay_min_port <= t.relay_max_port, { message: 'relay_min_port must be <= relay_max_port', path: ['relay_min_port'] })
      .refine((t) => t.mode !== 'external' || (t.secret !== '' && t.urls.length > 0), {
        message: 'external mode needs secret and urls',
        path: ['mode'],
      }),
    mesh: z.strictObject({
      role: z.enum(['edge', 'relay']),
      region: z.string().min(1),
      heartbeat_ms: z.number().int().min(50),
      capacity: positiveInt,
      public_url: z.union([z.literal(''), z.url()]),
      probe_interval_ms: z.number().int().nonnegative(),
      probe_fanout: z.number().int().nonnegative(),
      route_policy: z.enum(['auto', 'sfu', 'p2p', 'quality']),
      route_cache_ttl_s: z.number().positive(),
      route_cache_max: positiveInt,
      redis_prefix: z.string(),
      p2p_timeout_ms: z.number().int().min(500),
    }),
    api: z.strictObject({ max_inflight_body_bytes: positiveInt }),
    redis: z.strictObject({ url: z.string() }),
    database: z.strictObject({
      url: z.string(),
      data_dir: z.string().min(1),
      write_queue_max: positiveInt,
      quality_sample_s: z.number().positive(),
    }),
    aic: z.strictObject({
      enabled: z.boolean(),
      ai_core_endpoint: z.union([z.literal(''), z.url({ protocol: /^https?$/ })]),
      ai_core: z.strictObject({
        interval_ms: z.number().int().min(200),
        timeout_ms: z.number().int().min(10),
        failure_threshold: positiveInt,
        open_ms: z.number().int().min(100),
        max_response_bytes: z.number().int().min(1024),
      }),
      compression: z.strictObject({
        target_reduction_percent: z.number().min(0).max(100),
        min_quality_threshold: z.number().min(0).max(100),
        max_latency_ms: z.number().positive(),
      }),
      adaptive: z.strictObject({
        enabled: z.boolean(),
        thresholds: z.strictObject({
          high_latency_ms: z.number().positive(),
          packet_loss_percent: z.number().min(0).max(100),
          low_bandwidth_kbps: z.number().nonnegative(),
        }),
        fallback_enabled: z.boolean(),
      }),
      monitoring: z.strictObject({
        enabled: z.boolean(),
        track_compression_ratio: z.boolean(),
        track_latency: z.boolean(),
        track_quality_score: z.boolean(),
      }),
      ab_testing: z.strictObject({ enabled: z.boolean(), percent: z.number().min(0).max(100) }),
      stats_interval_ms: z.number().int().min(100),
      pause_hold_down_ms: z.number().int().nonnegative(),
      hooks: z.array(rtpHookSchema),
    }),
    webhook: z.strictObject({
      urls: z.array(z.url()),
      api_key: z.string(),
      max_attempts: positiveInt,
    }),
  })
  .strict();

export type Config = z.infer<typeof configSchema>;
