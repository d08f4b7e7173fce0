-- The `events` service (actors/src/gatherings/): events and their registrations.
-- `registered` counts the rows of `gathering_registrations` with status 'registered' and is
-- changed only in the transaction that changes those rows, which first locks the event's
-- row (actors/src/gatherings/store.rs). A registration's `seq` numbers it in the order it
-- was accepted (the waitlist's order).
CREATE TABLE IF NOT EXISTS gatherings (
  id TEXT PRIMARY KEY,
  organiser_id TEXT NOT NULL,
  title TEXT NOT NULL,
  description TEXT NOT NULL DEFAULT '',
  location TEXT NOT NULL DEFAULT '',
  start_at BIGINT NOT NULL,
  end_at BIGINT NOT NULL,
  timezone TEXT NOT NULL,
  capacity BIGINT NOT NULL,
  registered BIGINT NOT NULL DEFAULT 0,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL,
  version BIGINT NOT NULL DEFAULT 1
);
CREATE INDEX IF NOT EXISTS gatherings_start_idx ON gatherings (start_at);
CREATE TABLE IF NOT EXISTS gathering_registrations (
  event_id TEXT NOT NULL,
  user_id TEXT NOT NULL,
  status TEXT NOT NULL,
  seq BIGINT NOT NULL,
  created_at BIGINT NOT NULL,
  PRIMARY KEY (event_id, user_id)
);
CREATE UNIQUE INDEX IF NOT EXISTS gathering_registrations_seq_idx ON gathering_registrations (event_id, seq);
CREATE INDEX IF NOT EXISTS gathering_registrations_user_idx ON gathering_registrations (user_id, status);
