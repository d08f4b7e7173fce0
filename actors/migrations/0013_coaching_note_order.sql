-- A booking's notes in the order they were written: `seq` counts them per booking
-- (`coaching::store::insert_note`). Ordering by the millisecond time stamp alone left two
-- notes written in one millisecond in no defined order. Notes written before this
-- migration keep seq 0 and come first, by time, as they did.
ALTER TABLE coaching_notes ADD COLUMN seq BIGINT NOT NULL DEFAULT 0;
CREATE INDEX IF NOT EXISTS coaching_notes_seq_idx ON coaching_notes (booking_id, seq);
