-- Single sign-on with OpenID Connect (actors/src/sso/store.rs).
--
-- sso_logins: one row per sign-in begun with `/auth/sso/login`, keyed by its `state`. It
-- holds what the callback needs and must never leave the server: the nonce the ID token
-- must carry and the PKCE verifier. The callback takes the row with one
-- `DELETE ... RETURNING`, so a state works once, on whichever node the callback lands, and
-- two callbacks racing with one state cannot both win. Rows past `expires_at` are refused
-- and swept.
CREATE TABLE IF NOT EXISTS sso_logins (
  state TEXT PRIMARY KEY,
  provider TEXT NOT NULL,
  nonce TEXT NOT NULL,
  pkce_verifier TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  expires_at BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS sso_logins_expires_idx ON sso_logins (expires_at);

-- sso_identities: the provider's (issuer, subject) linked to a Troupe user, made on the
-- first sign-in. The primary key makes a second link of one identity impossible.
CREATE TABLE IF NOT EXISTS sso_identities (
  issuer TEXT NOT NULL,
  subject TEXT NOT NULL,
  user_id TEXT NOT NULL,
  provider TEXT NOT NULL,
  email TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  PRIMARY KEY (issuer, subject)
);
CREATE INDEX IF NOT EXISTS sso_identities_user_idx ON sso_identities (user_id);

-- sso_sessions: the provider's tokens of a Troupe session opened by SSO, keyed by the
-- session id (the `sid` claim of its Troupe tokens): the refresh token `/auth/sso/refresh`
-- spends, the access token `/auth/sso/user-info` presents, the ID token `/auth/sso/logout`
-- gives the provider as `id_token_hint`. Deleted at logout; swept when the Troupe session
-- could no longer be refreshed.
CREATE TABLE IF NOT EXISTS sso_sessions (
  session_id TEXT PRIMARY KEY,
  provider TEXT NOT NULL,
  user_id TEXT NOT NULL,
  subject TEXT NOT NULL,
  access_token TEXT NOT NULL,
  refresh_token TEXT NOT NULL,
  id_token TEXT NOT NULL,
  updated_at BIGINT NOT NULL,
  expires_at BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS sso_sessions_expires_idx ON sso_sessions (expires_at);
