-- Server-side panel sessions (src/web/session_store.rs). The cookie carries a random token;
-- only its SHA-256 (hex) is stored, so a copy of this table opens no session.
CREATE TABLE web_sessions (
    id_hash TEXT PRIMARY KEY,
    account_id INTEGER NOT NULL REFERENCES panel_accounts (id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL,
    second_factor_pending INTEGER NOT NULL CHECK (second_factor_pending IN (0, 1)),
    ip TEXT
) WITHOUT ROWID;
CREATE INDEX web_sessions_account ON web_sessions (account_id);
