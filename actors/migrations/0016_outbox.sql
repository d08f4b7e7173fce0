-- The transactional outbox (actors/src/events/outbox.rs): a service writes its rows and the
-- events that report them in one transaction; a relay on any node claims committed rows
-- (a lease: `claimed_by`, `claimed_until`), delivers them to the sinks and deletes them. A
-- row whose lease ran out (its node died or left) is claimed again by a survivor.
--
-- `id` is the event id, or `<event id>.<sink>` for a replayed dead letter that goes to one
-- sink only (`sink`; empty = every sink that wants the kind). `ord` orders the claims
-- (publish order, microseconds, made strictly increasing per node). `body` is the event
-- as JSON.
CREATE TABLE outbox (
    id TEXT PRIMARY KEY,
    ord BIGINT NOT NULL,
    sink TEXT NOT NULL DEFAULT '',
    body TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    claimed_by TEXT NOT NULL DEFAULT '',
    claimed_until BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX outbox_ord ON outbox (ord);

-- Deliveries that exhausted their attempts, and quarantined rows (a body that is not an
-- event: `sink` = 'quarantine'), kept until an admin replays or drops them.
CREATE TABLE dead_letters (
    id TEXT PRIMARY KEY,
    event_id TEXT NOT NULL,
    sink TEXT NOT NULL,
    body TEXT NOT NULL,
    attempts BIGINT NOT NULL,
    last_error TEXT NOT NULL,
    failed_at BIGINT NOT NULL,
    node TEXT NOT NULL
);
CREATE INDEX dead_letters_failed ON dead_letters (failed_at, id);

-- Idempotent writes (actors/src/mesh/idempotency.rs): the first answer to a write that
-- carried an idempotency key, so a repeat (the client's retry, or the router's after a
-- worker died) gets it instead of writing again. `key` is a digest of the caller, the op
-- and the client's key; services that write in a transaction record it there
-- (`reply` = '' until the answer is known), the rest right after they answer. Rows
-- older than a day are swept.
CREATE TABLE idempotency (
    key TEXT PRIMARY KEY,
    reply TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX idempotency_created ON idempotency (created_at);
