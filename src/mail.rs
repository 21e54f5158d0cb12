//! Outgoing mail: SMTP in production, an outbox folder of `.eml` files in the embedded default.
