-- Each invoice's FA(3) XML file as the billing system sent it (KSeF, the national e-invoice
-- system), byte for byte, with its SHA-256 (the verification QR code carries it) and the
-- seller's NIP read from it. At most one file per invoice; gone with the invoice.
CREATE TABLE ksef_invoices (
    invoice_id BIGINT PRIMARY KEY REFERENCES invoices (id) ON DELETE CASCADE,
    seller_nip TEXT NOT NULL,
    sha256 BYTEA NOT NULL CHECK (octet_length(sha256) = 32),
    size BIGINT NOT NULL,
    xml BYTEA NOT NULL
);
