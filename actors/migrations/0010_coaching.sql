-- The `coaching` service (actors/src/coaching/): coaches with a weekly schedule, bookings of
-- their slots, and session notes.
-- `availability` and `exceptions` hold the coach's schedule as JSON text (read and written
-- whole, checked by actors/src/coaching/schedule.rs); `user_id` is '' for a coach with no
-- linked user. Times are unix milliseconds.
CREATE TABLE IF NOT EXISTS coaches (
  id TEXT PRIMARY KEY,
  user_id TEXT NOT NULL DEFAULT '',
  name TEXT NOT NULL,
  bio TEXT NOT NULL DEFAULT '',
  timezone TEXT NOT NULL,
  slot_minutes BIGINT NOT NULL,
  availability TEXT NOT NULL,
  exceptions TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL,
  version BIGINT NOT NULL DEFAULT 1
);
CREATE INDEX IF NOT EXISTS coaches_user_idx ON coaches (user_id);
-- A booking is 'booked' or 'cancelled'. Every change to a coach's bookings is one
-- transaction that first locks the coach's row (actors/src/coaching/store.rs); the partial
-- unique index below is the last guard: never two live bookings of one coach at one start,
-- while cancelled ones do not block booking the slot again.
CREATE TABLE IF NOT EXISTS coaching_bookings (
  id TEXT PRIMARY KEY,
  coach_id TEXT NOT NULL,
  client_id TEXT NOT NULL,
  start_at BIGINT NOT NULL,
  end_at BIGINT NOT NULL,
  status TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  cancelled_at BIGINT NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX IF NOT EXISTS coaching_bookings_slot_idx ON coaching_bookings (coach_id, start_at) WHERE status = 'booked';
CREATE INDEX IF NOT EXISTS coaching_bookings_coach_idx ON coaching_bookings (coach_id, start_at);
CREATE INDEX IF NOT EXISTS coaching_bookings_client_idx ON coaching_bookings (client_id, start_at);
CREATE TABLE IF NOT EXISTS coaching_notes (
  id TEXT PRIMARY KEY,
  booking_id TEXT NOT NULL,
  author_id TEXT NOT NULL,
  text TEXT NOT NULL,
  created_at BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS coaching_notes_booking_idx ON coaching_notes (booking_id, created_at);
