-- Node leases (actors/src/store/lease.rs): which node may own single-owner state.
CREATE TABLE IF NOT EXISTS node_leases (
  node TEXT PRIMARY KEY,
  epoch BIGINT NOT NULL,
  expires_at BIGINT NOT NULL
);
