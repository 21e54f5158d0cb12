-- Server-side panel sessions (src/web/session_store.rs). The cookie carries a random token;
-- only its SHA-256 (hex) is stored, so a copy of this table opens no session.
CREATE TABLE web_sessions (
    id_hash TEXT PRIMARY KEY,
    account_id BIGINT NOT NULL REFERENCES panel_accounts (id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    second_factor_pending BOOLEAN NOT NULL,
    ip TEXT
);
CREATE INDEX web_sessions_account ON web_sessions (account_id);
