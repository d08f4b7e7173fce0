-- The waitlist's length kept on the event's row (actors/src/gatherings/store.rs), as
-- `registered` is: every registration read the event with the waitlist counted, a scan of
-- all its waitlisted rows, so a popular event's registrations slowed as its waitlist grew
-- (docs/benchmarks.md, twelfth session). Changed only in the transactions that change the
-- rows, under the event's row lock. The index serves the position count (waitlisted
-- ahead of a registration) and the promotion (the first of the waitlist).
ALTER TABLE gatherings ADD COLUMN waitlisted BIGINT NOT NULL DEFAULT 0;
UPDATE gatherings SET waitlisted = (SELECT COUNT(*) FROM gathering_registrations r
  WHERE r.event_id = gatherings.id AND r.status = 'waitlisted');
CREATE INDEX IF NOT EXISTS gathering_registrations_status_idx ON gathering_registrations (event_id, status, seq);
