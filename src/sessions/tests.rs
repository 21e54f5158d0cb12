//! Shared test suite for both live-session stores.
