//! Integration tests: ebok started in-process on port 0 (or as its binary, for `kill -9`),
//! driven by FreeRADIUS's `radclient` and by raw UDP, against the embedded store and real
//! Redis, with SQLite and real PostgreSQL history, and the panel in headless Chromium. One
//! test binary for the whole crate.

mod browser;
mod capture;
mod cli;
mod demo;
mod durability;
mod fuzz;
mod harness;
mod http;
mod notices;
mod ops;
mod poison;
mod radius;
mod shared;
mod systemd;
mod webdriver;
