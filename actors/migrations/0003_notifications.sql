CREATE TABLE IF NOT EXISTS notification_log (
  event_id TEXT PRIMARY KEY,
  kind TEXT NOT NULL,
  user_id TEXT NOT NULL DEFAULT '',
  source TEXT NOT NULL DEFAULT '',
  event_time BIGINT NOT NULL,
  payload TEXT NOT NULL DEFAULT '{}',
  channels TEXT NOT NULL DEFAULT '',
  created_at BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS notification_log_time_idx ON notification_log (created_at);
CREATE INDEX IF NOT EXISTS notification_log_kind_idx ON notification_log (kind, created_at);
CREATE INDEX IF NOT EXISTS notification_log_user_idx ON notification_log (user_id, created_at);
CREATE TABLE IF NOT EXISTS notifications (
  id TEXT PRIMARY KEY,
  user_id TEXT NOT NULL,
  kind TEXT NOT NULL,
  title TEXT NOT NULL,
  body TEXT NOT NULL,
  data TEXT NOT NULL DEFAULT '{}',
  read_at BIGINT NOT NULL DEFAULT 0,
  created_at BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS notifications_user_idx ON notifications (user_id, created_at);
CREATE TABLE IF NOT EXISTS notification_prefs (
  user_id TEXT PRIMARY KEY,
  email BIGINT NOT NULL DEFAULT 1,
  log BIGINT NOT NULL DEFAULT 1,
  updated_at BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS one_time_codes (
  user_id TEXT NOT NULL,
  purpose TEXT NOT NULL,
  code_hash TEXT NOT NULL,
  expires_at BIGINT NOT NULL,
  used_at BIGINT NOT NULL DEFAULT 0,
  failures BIGINT NOT NULL DEFAULT 0,
  created_at BIGINT NOT NULL,
  PRIMARY KEY (user_id, purpose)
);
