//! Embedded live-session store: memory for lookups, SQLite file for durability.
