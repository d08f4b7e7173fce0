-- Emailed codes are limited per account, not per code (actors/src/auth/codes.rs): wrong
-- guesses (`failures`) and codes issued (`issued`) are counted from `window_started_at`,
-- and a new code no longer sets the guesses back to zero. Rows from before start a new
-- window on their next code.
ALTER TABLE one_time_codes ADD COLUMN window_started_at BIGINT NOT NULL DEFAULT 0;
ALTER TABLE one_time_codes ADD COLUMN issued BIGINT NOT NULL DEFAULT 0;
