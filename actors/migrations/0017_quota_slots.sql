-- Exact per-user quotas of issue 23.
--
-- WebSocket connection slots (actors/src/hub/slots.rs, `[quotas] ws_connections_per_user`):
-- a connection holds one row from before its upgrade until it closes. A row is reserved
-- only while the user holds fewer live rows than the quota, counted and inserted in one
-- statement under the user's quota lock (actors/src/common/quota.rs). `node` and
-- `incarnation` name the node process holding it, which renews `expires_at` (unix ms)
-- while it runs: the rows of a node that died stop counting once it runs out, and a
-- restarted node deletes the rows of its earlier incarnations.
CREATE TABLE ws_slots (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    node TEXT NOT NULL,
    incarnation BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX ws_slots_user ON ws_slots (user_id, expires_at);
CREATE INDEX ws_slots_node ON ws_slots (node, incarnation);

-- Pending chat requests per sender (`[quotas] pending_chat_requests_per_user`), counted
-- when a request is sent (actors/src/chat/store.rs, `insert_request`).
CREATE INDEX IF NOT EXISTS chat_requests_from_idx ON chat_requests (from_user_id, status);
