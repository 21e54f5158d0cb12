//! Verified Accounting-Request → AccountingEvent.
