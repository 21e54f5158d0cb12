-- Panel authentication: several accounts per subscriber when the operator allows it (the
-- limit lives in the configuration), e-mail confirmation and password-reset tokens, the
-- optional TOTP second factor with its recovery codes, and server secrets shared by all
-- instances (CSRF keys).

-- SQLite cannot drop the UNIQUE on subscriber_id in place: rebuild the table.
CREATE TABLE panel_accounts_new (
    id INTEGER PRIMARY KEY,
    subscriber_id INTEGER NOT NULL REFERENCES subscribers (id) ON DELETE CASCADE,
    login TEXT NOT NULL,
    login_key TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    email TEXT NOT NULL,
    email_key TEXT NOT NULL,
    email_confirmed_at INTEGER,
    created_at INTEGER NOT NULL,
    disabled INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1)),
    password_changed_at INTEGER,
    totp_secret TEXT,
    totp_pending_secret TEXT,
    totp_enabled_at INTEGER,
    totp_last_step INTEGER
);
INSERT INTO panel_accounts_new (id, subscriber_id, login, login_key, password_hash, email,
    email_key, email_confirmed_at, created_at, disabled)
SELECT id, subscriber_id, login, login_key, password_hash, email, email_key,
    email_confirmed_at, created_at, disabled
FROM panel_accounts;
DROP TABLE panel_accounts;
ALTER TABLE panel_accounts_new RENAME TO panel_accounts;
CREATE INDEX panel_accounts_email ON panel_accounts (email_key);
CREATE INDEX panel_accounts_subscriber ON panel_accounts (subscriber_id);

-- Single-use links sent by mail; only the SHA-256 of the token is kept.
CREATE TABLE account_tokens (
    id_hash TEXT PRIMARY KEY,
    account_id INTEGER NOT NULL REFERENCES panel_accounts (id) ON DELETE CASCADE,
    purpose TEXT NOT NULL CHECK (purpose IN ('confirm_email', 'reset_password')),
    email TEXT,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    used_at INTEGER
);
CREATE INDEX account_tokens_account ON account_tokens (account_id, purpose);
CREATE INDEX account_tokens_expires ON account_tokens (expires_at);

CREATE TABLE totp_recovery_codes (
    account_id INTEGER NOT NULL REFERENCES panel_accounts (id) ON DELETE CASCADE,
    code_hash TEXT NOT NULL,
    used_at INTEGER,
    PRIMARY KEY (account_id, code_hash)
);

CREATE TABLE server_secrets (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
