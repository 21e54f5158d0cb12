//! Ordering rules shared by both live-session stores.
