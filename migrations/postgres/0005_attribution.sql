-- IP attribution (issue 6): "who held this address at time T" and "sessions of this address
-- in a period" must stay index probes on tens of millions of closed sessions. The indexes
-- carry the end of the session too, so the time filter is answered from the index alone;
-- the IPv6 one also carries the history id, so the prefix probes never read the table.
-- They replace the narrower indexes of 0001.
DROP INDEX session_history_ipv4;
CREATE INDEX session_history_ipv4_span ON session_history (framed_ip, started_at, stopped_at);
DROP INDEX session_history_ipv6_net;
CREATE INDEX session_history_ipv6_span
    ON session_history_ipv6 (net_hi, prefix_len, net_lo, started_at, stopped_at, history_id);
-- The export of every session in a period, in start order; and the same period seen from
-- the end of the sessions (retention deletes by stopped_at too): either way the other end is
-- checked in the index, not in the table.
CREATE INDEX session_history_span ON session_history (started_at, stopped_at);
DROP INDEX session_history_stopped;
CREATE INDEX session_history_stopped ON session_history (stopped_at, started_at);
