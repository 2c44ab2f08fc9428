-- What AIC did in one room session on one node (docs/AIC.md): written when the room ends, next
-- to quality_metrics. In a cluster each node that forwarded the room's media writes its part.
CREATE TABLE IF NOT EXISTS aic_call_summaries (
  call_id            text NOT NULL,               -- calls.id (the room session's sid)
  node_id            text NOT NULL,
  room_name          text NOT NULL,
  arm                text NOT NULL,               -- aic | control (ab_testing)
  started_at         timestamptz NOT NULL,
  ended_at           timestamptz NOT NULL,
  bytes_forwarded    double precision NOT NULL,   -- video bytes sent to subscribers
  forward_all_bytes  double precision NOT NULL,   -- what forwarding every top layer would have sent
  reduction_percent  real,                        -- 100 × (1 − forwarded / forward-all); null: nothing measured
  quality_samples    integer NOT NULL,
  quality_mean       real,                        -- quality score 0–100 of visible tiles
  quality_min        real,
  below_threshold    integer NOT NULL,            -- samples under compression.min_quality_threshold
  decisions          integer NOT NULL,
  dynacast_updates   integer NOT NULL,
  advice_applied     integer NOT NULL,            -- decisions the AI core's advice made
  PRIMARY KEY (call_id, node_id)
);
CREATE INDEX IF NOT EXISTS aic_call_summaries_ended ON aic_call_summaries (ended_at);
