CREATE TABLE IF NOT EXISTS engagement_activities (
  id TEXT PRIMARY KEY,
  user_id TEXT NOT NULL,
  kind TEXT NOT NULL,
  ref TEXT NOT NULL DEFAULT '',
  points BIGINT NOT NULL,
  source_event TEXT UNIQUE,
  once_key TEXT UNIQUE,
  day TEXT NOT NULL,
  created_at BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS engagement_activities_day_idx ON engagement_activities (day, user_id);
CREATE INDEX IF NOT EXISTS engagement_activities_kind_idx ON engagement_activities (kind);
CREATE TABLE IF NOT EXISTS engagement_points (
  user_id TEXT PRIMARY KEY,
  points BIGINT NOT NULL,
  updated_at BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS engagement_points_rank_idx ON engagement_points (points);
CREATE TABLE IF NOT EXISTS engagement_feedback (
  id TEXT PRIMARY KEY,
  user_id TEXT NOT NULL,
  rating BIGINT NOT NULL,
  text TEXT NOT NULL DEFAULT '',
  ref TEXT NOT NULL DEFAULT '',
  created_at BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS engagement_feedback_time_idx ON engagement_feedback (created_at);
