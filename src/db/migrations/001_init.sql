-- AuraLink schema v1. Field names follow the platform seeds where they gave them.
CREATE TABLE IF NOT EXISTS calls (
  id                text PRIMARY KEY,            -- the room session's sid (RM_...)
  room_name         text NOT NULL,
  node_id           text,
  started_at        timestamptz NOT NULL,
  ended_at          timestamptz,
  duration_seconds  double precision,
  peak_participants integer NOT NULL DEFAULT 0,
  status            text NOT NULL DEFAULT 'active' -- active | ended
);
CREATE INDEX IF NOT EXISTS calls_started_at ON calls (started_at);
CREATE INDEX IF NOT EXISTS calls_room_name ON calls (room_name);

CREATE TABLE IF NOT EXISTS call_participants (
  id               text PRIMARY KEY,             -- participant sid (PA_...)
  call_id          text NOT NULL REFERENCES calls (id) ON DELETE CASCADE,
  identity         text NOT NULL,
  name             text,
  joined_at        timestamptz NOT NULL,
  left_at          timestamptz,
  duration_seconds double precision,
  leave_reason     text,
  media_state      jsonb NOT NULL DEFAULT '{}'::jsonb -- e.g. {"published":["camera","microphone"]}
);
CREATE INDEX IF NOT EXISTS call_participants_call ON call_participants (call_id);

CREATE TABLE IF NOT EXISTS quality_metrics (
  id                  bigserial PRIMARY KEY,
  call_id             text NOT NULL,
  participant_id      text NOT NULL,
  track_id            text,
  recorded_at         timestamptz NOT NULL,
  packet_loss_percent real,
  jitter_ms           real,
  rtt_ms              real,
  bitrate_kbps        real,
  resolution          text,
  fps                 real,
  connection_type     text,                       -- p2p | turn | relay | sfu
  score               real                        -- 0..5
);
CREATE INDEX IF NOT EXISTS quality_metrics_call ON quality_metrics (call_id, recorded_at);

CREATE TABLE IF NOT EXISTS mesh_nodes (
  id           text PRIMARY KEY,
  role         text NOT NULL,                    -- edge | relay
  region       text,
  addresses    jsonb NOT NULL DEFAULT '[]'::jsonb,
  capacity     integer,
  trust_score  real,
  version      text,
  first_seen   timestamptz NOT NULL,
  last_seen    timestamptz NOT NULL
);

CREATE TABLE IF NOT EXISTS route_performance (
  id                bigserial PRIMARY KEY,
  call_id           text,
  route_type        text NOT NULL,               -- p2p | turn | multihop | sfu
  path              jsonb NOT NULL DEFAULT '[]'::jsonb,
  predicted_quality real,
  actual_quality    real,
  latency_ms        real,
  packet_loss_percent real,
  recorded_at       timestamptz NOT NULL
);

-- Webhooks waiting for delivery, one row per (event, target URL); delivered in id order per
-- room and URL.
CREATE TABLE IF NOT EXISTS webhook_outbox (
  id              bigserial PRIMARY KEY,
  room_name       text NOT NULL,
  url             text NOT NULL,
  event           text NOT NULL,
  body            text NOT NULL,
  created_at      timestamptz NOT NULL,
  attempts        integer NOT NULL DEFAULT 0,
  next_attempt_at timestamptz NOT NULL,
  delivered_at    timestamptz,
  last_error      text
);
CREATE INDEX IF NOT EXISTS webhook_outbox_pending ON webhook_outbox (id) WHERE delivered_at IS NULL;
