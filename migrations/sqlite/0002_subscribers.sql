-- Subscriber data (issue: subscriber data model). Same tables and columns as the PostgreSQL
-- migration. Billing-imported rows carry the billing system's id in ext_id (UNIQUE) and an
-- updated_at that changes only when an import changes the row. Money in grosze (INTEGER),
-- quantities in thousandths, times as Unix seconds (UTC), dates as TEXT 'YYYY-MM-DD',
-- booleans as 0/1. Invoices and payments are accounting records: deleting a subscriber
-- that still has them is refused (RESTRICT); everything else of a subscriber goes with it.

CREATE TABLE subscribers (
    id INTEGER PRIMARY KEY,
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
    updated_at INTEGER NOT NULL
);
CREATE INDEX subscribers_pesel ON subscribers (pesel);
CREATE INDEX subscribers_nip ON subscribers (nip);
CREATE INDEX subscribers_bank_account ON subscribers (bank_account);

CREATE TABLE contracts (
    id INTEGER PRIMARY KEY,
    ext_id TEXT NOT NULL UNIQUE,
    subscriber_id INTEGER NOT NULL REFERENCES subscribers (id) ON DELETE CASCADE,
    number TEXT NOT NULL UNIQUE,
    starts_on TEXT NOT NULL,
    ends_on TEXT,
    monthly_fee INTEGER NOT NULL,
    tariff TEXT NOT NULL,
    download_kbps INTEGER NOT NULL,
    upload_kbps INTEGER NOT NULL,
    inst_street TEXT NOT NULL,
    inst_postcode TEXT NOT NULL,
    inst_city TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('active', 'suspended', 'terminated')),
    updated_at INTEGER NOT NULL,
    CHECK (ends_on IS NULL OR ends_on >= starts_on)
);
CREATE INDEX contracts_subscriber ON contracts (subscriber_id);

CREATE TABLE pppoe_accounts (
    id INTEGER PRIMARY KEY,
    ext_id TEXT NOT NULL UNIQUE,
    contract_id INTEGER NOT NULL REFERENCES contracts (id) ON DELETE CASCADE,
    login TEXT NOT NULL UNIQUE,
    password TEXT,
    updated_at INTEGER NOT NULL
);
CREATE INDEX pppoe_accounts_contract ON pppoe_accounts (contract_id);

CREATE TABLE ip_assignments (
    id INTEGER PRIMARY KEY,
    ext_id TEXT NOT NULL UNIQUE,
    contract_id INTEGER NOT NULL REFERENCES contracts (id) ON DELETE CASCADE,
    address TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('static', 'pool')),
    activated_on TEXT,
    inst_street TEXT,
    inst_postcode TEXT,
    inst_city TEXT,
    updated_at INTEGER NOT NULL
);
CREATE INDEX ip_assignments_contract ON ip_assignments (contract_id);
CREATE INDEX ip_assignments_address ON ip_assignments (address);

CREATE TABLE invoices (
    id INTEGER PRIMARY KEY,
    ext_id TEXT NOT NULL UNIQUE,
    subscriber_id INTEGER NOT NULL REFERENCES subscribers (id) ON DELETE RESTRICT,
    number TEXT NOT NULL UNIQUE,
    issued_on TEXT NOT NULL,
    sold_on TEXT NOT NULL,
    due_on TEXT NOT NULL,
    net INTEGER NOT NULL,
    vat INTEGER NOT NULL,
    gross INTEGER NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('issued', 'paid', 'overdue', 'cancelled')),
    ksef_number TEXT,
    updated_at INTEGER NOT NULL
);
CREATE INDEX invoices_subscriber_issued ON invoices (subscriber_id, issued_on);

CREATE TABLE invoice_lines (
    invoice_id INTEGER NOT NULL REFERENCES invoices (id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    name TEXT NOT NULL,
    unit TEXT NOT NULL,
    quantity_milli INTEGER NOT NULL,
    unit_net INTEGER NOT NULL,
    net INTEGER NOT NULL,
    vat_rate TEXT NOT NULL CHECK (vat_rate IN ('23', '8', '5', '0', 'zw', 'np')),
    vat INTEGER NOT NULL,
    gross INTEGER NOT NULL,
    PRIMARY KEY (invoice_id, position)
);

CREATE TABLE payments (
    id INTEGER PRIMARY KEY,
    ext_id TEXT NOT NULL UNIQUE,
    subscriber_id INTEGER NOT NULL REFERENCES subscribers (id) ON DELETE RESTRICT,
    paid_on TEXT NOT NULL,
    amount INTEGER NOT NULL,
    title TEXT NOT NULL,
    method TEXT NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX payments_subscriber_paid ON payments (subscriber_id, paid_on);

CREATE TABLE einvoice_consents (
    id INTEGER PRIMARY KEY,
    subscriber_id INTEGER NOT NULL REFERENCES subscribers (id) ON DELETE CASCADE,
    given INTEGER NOT NULL CHECK (given IN (0, 1)),
    at INTEGER NOT NULL,
    ip TEXT,
    text_version TEXT NOT NULL
);
CREATE INDEX einvoice_consents_subscriber ON einvoice_consents (subscriber_id, at);

CREATE TABLE panel_accounts (
    id INTEGER PRIMARY KEY,
    subscriber_id INTEGER NOT NULL UNIQUE REFERENCES subscribers (id) ON DELETE CASCADE,
    login TEXT NOT NULL,
    login_key TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    email TEXT NOT NULL,
    email_key TEXT NOT NULL,
    email_confirmed_at INTEGER,
    created_at INTEGER NOT NULL,
    disabled INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1))
);
CREATE INDEX panel_accounts_email ON panel_accounts (email_key);

CREATE TABLE tickets (
    id INTEGER PRIMARY KEY,
    subscriber_id INTEGER REFERENCES subscribers (id) ON DELETE CASCADE,
    contact TEXT,
    subject TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('open', 'answered', 'closed')),
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX tickets_subscriber ON tickets (subscriber_id, updated_at);
CREATE INDEX tickets_status ON tickets (status, updated_at);

CREATE TABLE ticket_messages (
    id INTEGER PRIMARY KEY,
    ticket_id INTEGER NOT NULL REFERENCES tickets (id) ON DELETE CASCADE,
    author TEXT NOT NULL CHECK (author IN ('subscriber', 'office')),
    body TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX ticket_messages_ticket ON ticket_messages (ticket_id, created_at);

CREATE TABLE services (
    id INTEGER PRIMARY KEY,
    ext_id TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    description TEXT NOT NULL,
    price INTEGER NOT NULL,
    active INTEGER NOT NULL CHECK (active IN (0, 1)),
    updated_at INTEGER NOT NULL
);

CREATE TABLE service_orders (
    id INTEGER PRIMARY KEY,
    subscriber_id INTEGER REFERENCES subscribers (id) ON DELETE CASCADE,
    service_id INTEGER NOT NULL REFERENCES services (id) ON DELETE RESTRICT,
    contact_name TEXT,
    contact_email TEXT,
    contact_phone TEXT,
    note TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('new', 'in_progress', 'done', 'rejected')),
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX service_orders_subscriber ON service_orders (subscriber_id, created_at);
CREATE INDEX service_orders_status ON service_orders (status, created_at);
CREATE INDEX service_orders_service ON service_orders (service_id);

CREATE TABLE news (
    id INTEGER PRIMARY KEY,
    ext_id TEXT NOT NULL UNIQUE,
    title TEXT NOT NULL,
    body_md TEXT NOT NULL,
    published_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX news_published ON news (published_at);

CREATE TABLE faq (
    id INTEGER PRIMARY KEY,
    ext_id TEXT NOT NULL UNIQUE,
    question TEXT NOT NULL,
    answer_md TEXT NOT NULL,
    position INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX faq_position ON faq (position);

CREATE TABLE audit_log (
    id INTEGER PRIMARY KEY,
    at INTEGER NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    ip TEXT,
    detail TEXT NOT NULL
);
CREATE INDEX audit_log_at ON audit_log (at);
CREATE INDEX audit_log_actor ON audit_log (actor, at);
