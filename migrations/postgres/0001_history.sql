-- Session history and daily traffic (issue: accounting ingest).
-- Times are Unix seconds (UTC). IPv4 addresses as integers; IPv6 prefixes in their own
-- table by the upper and lower 64 bits of the network, for "who held this IP at time T".
CREATE TABLE session_history (
    id BIGSERIAL PRIMARY KEY,
    nas TEXT NOT NULL,
    nas_client TEXT NOT NULL,
    session_id TEXT NOT NULL,
    user_name TEXT,
    framed_ip BIGINT,
    ipv6_prefixes TEXT NOT NULL DEFAULT '',
    calling_station_id TEXT,
    nas_port_id TEXT,
    started_at BIGINT NOT NULL,
    stopped_at BIGINT NOT NULL,
    input_octets BIGINT NOT NULL DEFAULT 0,
    output_octets BIGINT NOT NULL DEFAULT 0,
    input_packets BIGINT NOT NULL DEFAULT 0,
    output_packets BIGINT NOT NULL DEFAULT 0,
    terminate_cause BIGINT,
    close_reason TEXT NOT NULL,
    UNIQUE (nas, session_id, started_at)
);
CREATE INDEX session_history_ipv4 ON session_history (framed_ip, started_at);
CREATE INDEX session_history_user ON session_history (user_name, started_at);
CREATE INDEX session_history_stopped ON session_history (stopped_at);

CREATE TABLE session_history_ipv6 (
    history_id BIGINT NOT NULL REFERENCES session_history (id) ON DELETE CASCADE,
    net_hi BIGINT NOT NULL,
    net_lo BIGINT NOT NULL,
    prefix_len SMALLINT NOT NULL,
    started_at BIGINT NOT NULL,
    stopped_at BIGINT NOT NULL
);
CREATE INDEX session_history_ipv6_net ON session_history_ipv6 (net_hi, prefix_len, started_at);
CREATE INDEX session_history_ipv6_id ON session_history_ipv6 (history_id);

CREATE TABLE traffic_daily (
    user_name TEXT NOT NULL,
    day DATE NOT NULL,
    input_octets BIGINT NOT NULL DEFAULT 0,
    output_octets BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (user_name, day)
);
