-- Subscriber data (issue: subscriber data model). Same tables and columns as the SQLite
-- migration. Billing-imported rows carry the billing system's id in ext_id (UNIQUE) and an
-- updated_at that changes only when an import changes the row. Money in grosze (BIGINT),
-- quantities in thousandths, times as Unix seconds (UTC), dates as DATE, booleans as
-- BOOLEAN. Invoices and payments are accounting records: deleting a subscriber
-- that still has them is refused (RESTRICT); everything else of a subscriber goes with it.

CREATE TABLE subscribers (
    id BIGSERIAL PRIMARY KEY,
    ext_id TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL CHECK (kind IN ('person', 'company')),
    first_name TEXT,
    last_name TEXT,
    company_name TEXT,
    pesel TEXT,
    nip TEXT,
    home_street TEXT NOT NULL,
    home_postcode TEXT NOT NULL,
    home_city TEXT NOT NULL,
    corr_street TEXT,
    corr_postcode TEXT,
    corr_city TEXT,
    phone TEXT,
    email TEXT,
    bank_account TEXT,
    updated_at BIGINT NOT NULL
);
CREATE INDEX subscribers_pesel ON subscribers (pesel);
CREATE INDEX subscribers_nip ON subscribers (nip);
CREATE INDEX subscribers_bank_account ON subscribers (bank_account);

CREATE TABLE contracts (
    id BIGSERIAL PRIMARY KEY,
    ext_id TEXT NOT NULL UNIQUE,
    subscriber_id BIGINT NOT NULL REFERENCES subscribers (id) ON DELETE CASCADE,
    number TEXT NOT NULL UNIQUE,
    starts_on DATE NOT NULL,
    ends_on DATE,
    monthly_fee BIGINT NOT NULL,
    tariff TEXT NOT NULL,
    download_kbps BIGINT NOT NULL,
    upload_kbps BIGINT NOT NULL,
    inst_street TEXT NOT NULL,
    inst_postcode TEXT NOT NULL,
    inst_city TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('active', 'suspended', 'terminated')),
    updated_at BIGINT NOT NULL,
    CHECK (ends_on IS NULL OR ends_on >= starts_on)
);
CREATE INDEX contracts_subscriber ON contracts (subscriber_id);

CREATE TABLE pppoe_accounts (
    id BIGSERIAL PRIMARY KEY,
    ext_id TEXT NOT NULL UNIQUE,
    contract_id BIGINT NOT NULL REFERENCES contracts (id) ON DELETE CASCADE,
    login TEXT NOT NULL UNIQUE,
    password TEXT,
    updated_at BIGINT NOT NULL
);
CREATE INDEX pppoe_accounts_contract ON pppoe_accounts (contract_id);

CREATE TABLE ip_assignments (
    id BIGSERIAL PRIMARY KEY,
    ext_id TEXT NOT NULL UNIQUE,
    contract_id BIGINT NOT NULL REFERENCES contracts (id) ON DELETE CASCADE,
    address TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('static', 'pool')),
    activated_on DATE,
    inst_street TEXT,
    inst_postcode TEXT,
    inst_city TEXT,
    updated_at BIGINT NOT NULL
);
CREATE INDEX ip_assignments_contract ON ip_assignments (contract_id);
CREATE INDEX ip_assignments_address ON ip_assignments (address);

CREATE TABLE invoices (
    id BIGSERIAL PRIMARY KEY,
    ext_id TEXT NOT NULL UNIQUE,
    subscriber_id BIGINT NOT NULL REFERENCES subscribers (id) ON DELETE RESTRICT,
    number TEXT NOT NULL UNIQUE,
    issued_on DATE NOT NULL,
    sold_on DATE NOT NULL,
    due_on DATE NOT NULL,
    net BIGINT NOT NULL,
    vat BIGINT NOT NULL,
    gross BIGINT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('issued', 'paid', 'overdue', 'cancelled')),
    ksef_number TEXT,
    updated_at BIGINT NOT NULL
);
CREATE INDEX invoices_subscriber_issued ON invoices (subscriber_id, issued_on);

CREATE TABLE invoice_lines (
    invoice_id BIGINT NOT NULL REFERENCES invoices (id) ON DELETE CASCADE,
    position BIGINT NOT NULL,
    name TEXT NOT NULL,
    unit TEXT NOT NULL,
    quantity_milli BIGINT NOT NULL,
    unit_net BIGINT NOT NULL,
    net BIGINT NOT NULL,
    vat_rate TEXT NOT NULL CHECK (vat_rate IN ('23', '8', '5', '0', 'zw', 'np')),
    vat BIGINT NOT NULL,
    gross BIGINT NOT NULL,
    PRIMARY KEY (invoice_id, position)
);

CREATE TABLE payments (
    id BIGSERIAL PRIMARY KEY,
    ext_id TEXT NOT NULL UNIQUE,
    subscriber_id BIGINT NOT NULL REFERENCES subscribers (id) ON DELETE RESTRICT,
    paid_on DATE NOT NULL,
    amount BIGINT NOT NULL,
    title TEXT NOT NULL,
    method TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX payments_subscriber_paid ON payments (subscriber_id, paid_on);

CREATE TABLE einvoice_consents (
    id BIGSERIAL PRIMARY KEY,
    subscriber_id BIGINT NOT NULL REFERENCES subscribers (id) ON DELETE CASCADE,
    given BOOLEAN NOT NULL,
    at BIGINT NOT NULL,
    ip TEXT,
    text_version TEXT NOT NULL
);
CREATE INDEX einvoice_consents_subscriber ON einvoice_consents (subscriber_id, at);

CREATE TABLE panel_accounts (
    id BIGSERIAL PRIMARY KEY,
    subscriber_id BIGINT NOT NULL UNIQUE REFERENCES subscribers (id) ON DELETE CASCADE,
    login TEXT NOT NULL,
    login_key TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    email TEXT NOT NULL,
    email_key TEXT NOT NULL,
    email_confirmed_at BIGINT,
    created_at BIGINT NOT NULL,
    disabled BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE INDEX panel_accounts_email ON panel_accounts (email_key);

CREATE TABLE tickets (
    id BIGSERIAL PRIMARY KEY,
    subscriber_id BIGINT REFERENCES subscribers (id) ON DELETE CASCADE,
    contact TEXT,
    subject TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('open', 'answered', 'closed')),
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX tickets_subscriber ON tickets (subscriber_id, updated_at);
CREATE INDEX tickets_status ON tickets (status, updated_at);

CREATE TABLE ticket_messages (
    id BIGSERIAL PRIMARY KEY,
    ticket_id BIGINT NOT NULL REFERENCES tickets (id) ON DELETE CASCADE,
    author TEXT NOT NULL CHECK (author IN ('subscriber', 'office')),
    body TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX ticket_messages_ticket ON ticket_messages (ticket_id, created_at);

CREATE TABLE services (
    id BIGSERIAL PRIMARY KEY,
    ext_id TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    description TEXT NOT NULL,
    price BIGINT NOT NULL,
    active BOOLEAN NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE service_orders (
    id BIGSERIAL PRIMARY KEY,
    subscriber_id BIGINT REFERENCES subscribers (id) ON DELETE CASCADE,
    service_id BIGINT NOT NULL REFERENCES services (id) ON DELETE RESTRICT,
    contact_name TEXT,
    contact_email TEXT,
    contact_phone TEXT,
    note TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('new', 'in_progress', 'done', 'rejected')),
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX service_orders_subscriber ON service_orders (subscriber_id, created_at);
CREATE INDEX service_orders_status ON service_orders (status, created_at);
CREATE INDEX service_orders_service ON service_orders (service_id);

CREATE TABLE news (
    id BIGSERIAL PRIMARY KEY,
    ext_id TEXT NOT NULL UNIQUE,
    title TEXT NOT NULL,
    body_md TEXT NOT NULL,
    published_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX news_published ON news (published_at);

CREATE TABLE faq (
    id BIGSERIAL PRIMARY KEY,
    ext_id TEXT NOT NULL UNIQUE,
    question TEXT NOT NULL,
    answer_md TEXT NOT NULL,
    position BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX faq_position ON faq (position);

CREATE TABLE audit_log (
    id BIGSERIAL PRIMARY KEY,
    at BIGINT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    ip TEXT,
    detail TEXT NOT NULL
);
CREATE INDEX audit_log_at ON audit_log (at);
CREATE INDEX audit_log_actor ON audit_log (actor, at);
