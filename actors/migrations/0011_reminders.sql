-- Durable reminders (actors/src/reminders/): timers stored with what schedules them.
-- A row is written in the same transaction as the booking or registration it belongs to
-- and deleted in the transaction that cancels it. `id` is also the id of the bus event
-- the reminder publishes when due, so a reminder fired twice (its owner died between
-- publishing and recording it) reaches every consumer once. `shard` (0..63, from the id)
-- decides which node fires it: the home of `reminders/<shard>` among the placement
-- members. `claimed_by`/`claimed_until` hold it for the node firing it; `fired_at` is set
-- once published (or `outcome` = 'expired' when it came due after `expires_at`).
CREATE TABLE IF NOT EXISTS reminders (
  id TEXT PRIMARY KEY,
  subject TEXT NOT NULL,
  user_id TEXT NOT NULL,
  kind TEXT NOT NULL,
  due_at BIGINT NOT NULL,
  expires_at BIGINT,
  shard BIGINT NOT NULL,
  payload TEXT NOT NULL,
  claimed_by TEXT,
  claimed_until BIGINT,
  fired_at BIGINT,
  fired_by TEXT,
  outcome TEXT,
  created_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS reminders_subject_idx ON reminders (subject, user_id, kind);
CREATE INDEX IF NOT EXISTS reminders_due_idx ON reminders (fired_at, shard, due_at);
CREATE INDEX IF NOT EXISTS reminders_user_idx ON reminders (user_id, due_at);
