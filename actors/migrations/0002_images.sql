CREATE TABLE IF NOT EXISTS images (
  id TEXT PRIMARY KEY,
  owner TEXT NOT NULL,
  filename TEXT NOT NULL,
  content_type TEXT NOT NULL,
  size BIGINT NOT NULL,
  created_at BIGINT NOT NULL,
  data BYTEA NOT NULL
);
CREATE INDEX IF NOT EXISTS images_owner_idx ON images (owner, created_at);
CREATE INDEX IF NOT EXISTS images_created_idx ON images (created_at);
