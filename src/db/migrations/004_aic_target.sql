-- The target each AIC summary is held to (compression.target_reduction_percent when the room
-- ran): a row says both what was saved and what the operator asked for. Null on rows written
-- before this migration.
ALTER TABLE aic_call_summaries ADD COLUMN IF NOT EXISTS target_reduction_percent real;
