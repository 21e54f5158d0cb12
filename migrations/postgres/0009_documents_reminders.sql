-- Documents the ISP publishes in the panel (terms, price lists, contracts, annexes, general
-- terms): PDFs kept in the database, for everyone (contract_id NULL) or for one contract's
-- holder; withdrawn ones stay for the record but are no longer shown.
CREATE TABLE documents (
    id BIGSERIAL PRIMARY KEY,
    kind TEXT NOT NULL
        CHECK (kind IN ('terms', 'price_list', 'contract', 'annex', 'general_terms')),
    title TEXT NOT NULL,
    contract_id BIGINT REFERENCES contracts (id) ON DELETE CASCADE,
    pdf BYTEA NOT NULL,
    size BIGINT NOT NULL,
    sha256 TEXT NOT NULL,
    published_at BIGINT NOT NULL,
    withdrawn_at BIGINT
);
CREATE INDEX documents_contract ON documents (contract_id, published_at);

-- Payment reminders already claimed: one row per invoice and kind ('before' the due date,
-- 'after' it passed unpaid); the primary key makes the claim a compare-and-set shared by
-- every instance.
CREATE TABLE payment_reminders (
    invoice_id BIGINT NOT NULL REFERENCES invoices (id) ON DELETE CASCADE,
    kind TEXT NOT NULL CHECK (kind IN ('before', 'after')),
    claimed_at BIGINT NOT NULL,
    PRIMARY KEY (invoice_id, kind)
);

-- The reminder pass looks for invoices by due date.
CREATE INDEX invoices_due ON invoices (due_on);
