CREATE TABLE IF NOT EXISTS chat_requests (
  id TEXT PRIMARY KEY,
  from_user_id TEXT NOT NULL,
  to_user_id TEXT NOT NULL,
  status TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS chat_requests_to_idx ON chat_requests (to_user_id, status);
CREATE INDEX IF NOT EXISTS chat_requests_pair_idx ON chat_requests (from_user_id, to_user_id);
CREATE TABLE IF NOT EXISTS chat_messages (
  id TEXT PRIMARY KEY,
  sender_id TEXT NOT NULL,
  recipient_id TEXT NOT NULL,
  ciphertext TEXT NOT NULL,
  nonce TEXT NOT NULL DEFAULT '',
  created_at BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS chat_messages_recipient_idx ON chat_messages (recipient_id, created_at);
CREATE INDEX IF NOT EXISTS chat_messages_sender_idx ON chat_messages (sender_id, created_at);
