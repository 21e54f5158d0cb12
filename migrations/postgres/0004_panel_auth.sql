-- Panel authentication: several accounts per subscriber when the operator allows it (the
-- limit lives in the configuration), e-mail confirmation and password-reset tokens, the
-- optional TOTP second factor with its recovery codes, and server secrets shared by all
-- instances (CSRF keys).

ALTER TABLE panel_accounts DROP CONSTRAINT panel_accounts_subscriber_id_key;
CREATE INDEX panel_accounts_subscriber ON panel_accounts (subscriber_id);
ALTER TABLE panel_accounts
    ADD COLUMN password_changed_at BIGINT,
    ADD COLUMN totp_secret TEXT,
    ADD COLUMN totp_pending_secret TEXT,
    ADD COLUMN totp_enabled_at BIGINT,
    ADD COLUMN totp_last_step BIGINT;

-- Single-use links sent by mail; only the SHA-256 of the token is kept.
CREATE TABLE account_tokens (
    id_hash TEXT PRIMARY KEY,
    account_id BIGINT NOT NULL REFERENCES panel_accounts (id) ON DELETE CASCADE,
    purpose TEXT NOT NULL CHECK (purpose IN ('confirm_email', 'reset_password')),
    email TEXT,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at BIGINT
);
CREATE INDEX account_tokens_account ON account_tokens (account_id, purpose);
CREATE INDEX account_tokens_expires ON account_tokens (expires_at);

CREATE TABLE totp_recovery_codes (
    account_id BIGINT NOT NULL REFERENCES panel_accounts (id) ON DELETE CASCADE,
    code_hash TEXT NOT NULL,
    used_at BIGINT,
    PRIMARY KEY (account_id, code_hash)
);

CREATE TABLE server_secrets (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
