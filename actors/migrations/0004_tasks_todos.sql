CREATE TABLE IF NOT EXISTS tasks (
  id TEXT PRIMARY KEY,
  owner_id TEXT NOT NULL,
  name TEXT NOT NULL,
  payload TEXT NOT NULL DEFAULT 'null',
  status TEXT NOT NULL,
  step BIGINT NOT NULL DEFAULT 0,
  steps BIGINT NOT NULL,
  delay_ms BIGINT NOT NULL,
  fail_at_step BIGINT NOT NULL DEFAULT 0,
  resumable BIGINT NOT NULL DEFAULT 1,
  error TEXT NOT NULL DEFAULT '',
  node TEXT NOT NULL DEFAULT '',
  activations BIGINT NOT NULL DEFAULT 0,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL,
  started_at BIGINT NOT NULL DEFAULT 0,
  finished_at BIGINT NOT NULL DEFAULT 0,
  version BIGINT NOT NULL DEFAULT 1
);
CREATE INDEX IF NOT EXISTS tasks_owner_idx ON tasks (owner_id, created_at);
CREATE INDEX IF NOT EXISTS tasks_status_idx ON tasks (status);
CREATE TABLE IF NOT EXISTS task_steps (
  task_id TEXT NOT NULL,
  step BIGINT NOT NULL,
  node TEXT NOT NULL,
  activation BIGINT NOT NULL,
  done_at BIGINT NOT NULL,
  PRIMARY KEY (task_id, step)
);
CREATE TABLE IF NOT EXISTS todos (
  id TEXT PRIMARY KEY,
  owner_id TEXT NOT NULL,
  title TEXT NOT NULL,
  description TEXT NOT NULL DEFAULT '',
  status TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL,
  version BIGINT NOT NULL DEFAULT 1
);
CREATE INDEX IF NOT EXISTS todos_owner_idx ON todos (owner_id, created_at);
