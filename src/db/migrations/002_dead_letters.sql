-- Statements the database refused for a row-level reason (bad value, constraint), set aside
-- so the write queue moves on. Values are kept as escaped JSON text (NUL as \u0000), so
-- whatever made the row unstorable, its dead letter is storable.
CREATE TABLE IF NOT EXISTS dead_letters (
  id        bigserial PRIMARY KEY,
  source    text NOT NULL,                       -- write_behind
  sql       text NOT NULL,
  params    text NOT NULL,                       -- JSON array of the original parameters
  error     text NOT NULL,
  sqlstate  text,
  failed_at timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS dead_letters_failed_at ON dead_letters (failed_at);

-- A webhook its receiver never accepted within webhook.max_attempts: dead, kept, and no
-- longer holding its room's queue.
ALTER TABLE webhook_outbox ADD COLUMN IF NOT EXISTS dead_at timestamptz;
DROP INDEX IF EXISTS webhook_outbox_pending;
CREATE INDEX IF NOT EXISTS webhook_outbox_pending ON webhook_outbox (id) WHERE delivered_at IS NULL AND dead_at IS NULL;
CREATE INDEX IF NOT EXISTS webhook_outbox_dead ON webhook_outbox (id) WHERE dead_at IS NOT NULL;
