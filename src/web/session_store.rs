//! Server-side panel sessions: SQL (SQLite/PostgreSQL) or Redis, matching the deployment.
