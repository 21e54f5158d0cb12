-- IPv6 history rows as one B-tree: the attribution index of 0005 already carried every
-- column, so the table itself is now kept in that order (its primary key) instead of a rowid
-- table plus an index holding the same data. The replay writes two of these rows for a
-- typical dual-stack session, at keys all over the tree; one tree less per row is one page
-- less per row for each commit to rewrite.
CREATE TABLE session_history_ipv6_new (
    history_id INTEGER NOT NULL REFERENCES session_history (id) ON DELETE CASCADE,
    net_hi INTEGER NOT NULL,
    net_lo INTEGER NOT NULL,
    prefix_len INTEGER NOT NULL,
    started_at INTEGER NOT NULL,
    stopped_at INTEGER NOT NULL,
    PRIMARY KEY (net_hi, prefix_len, net_lo, started_at, stopped_at, history_id)
) WITHOUT ROWID;
INSERT OR IGNORE INTO session_history_ipv6_new
    (history_id, net_hi, net_lo, prefix_len, started_at, stopped_at)
    SELECT history_id, net_hi, net_lo, prefix_len, started_at, stopped_at
    FROM session_history_ipv6;
DROP TABLE session_history_ipv6;
ALTER TABLE session_history_ipv6_new RENAME TO session_history_ipv6;
CREATE INDEX session_history_ipv6_id ON session_history_ipv6 (history_id);
