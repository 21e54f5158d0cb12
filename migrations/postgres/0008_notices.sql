-- Outage and maintenance notices: shown in the panel to the subscribers whose line they
-- touch (a NAS their live session is on, an area of their installation address) or to
-- everyone, from starts_at until resolved. mail_claimed_at is the compare-and-set marker
-- that lets exactly one instance mail the affected subscribers.
CREATE TABLE notices (
    id BIGSERIAL PRIMARY KEY,
    title TEXT NOT NULL,
    body TEXT NOT NULL,
    severity TEXT NOT NULL CHECK (severity IN ('info', 'maintenance', 'outage')),
    everyone BOOLEAN NOT NULL DEFAULT FALSE,
    starts_at BIGINT NOT NULL,
    expected_end BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    resolved_at BIGINT,
    mail_claimed_at BIGINT,
    CHECK (expected_end IS NULL OR expected_end > starts_at)
);
CREATE INDEX notices_open ON notices (resolved_at, starts_at);

-- What a notice touches besides everyone: NAS keys (as the live map names a session's
-- NAS), postcodes and cities (matched against installation addresses).
CREATE TABLE notice_targets (
    notice_id BIGINT NOT NULL REFERENCES notices (id) ON DELETE CASCADE,
    kind TEXT NOT NULL CHECK (kind IN ('nas', 'postcode', 'city')),
    value TEXT NOT NULL,
    PRIMARY KEY (notice_id, kind, value)
);

-- The language a subscriber last used in the panel (mails about notices go out in it).
ALTER TABLE panel_accounts ADD COLUMN lang TEXT;
