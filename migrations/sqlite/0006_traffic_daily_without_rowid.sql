-- Daily traffic as one B-tree keyed by (login, day) instead of a rowid table plus its primary
-- key index: the accounting replay upserts it for every event with counters, at keys all over
-- the tree, so each row lived in two trees whose pages every commit rewrote.
CREATE TABLE traffic_daily_new (
    user_name TEXT NOT NULL,
    day TEXT NOT NULL,
    input_octets INTEGER NOT NULL DEFAULT 0,
    output_octets INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (user_name, day)
) WITHOUT ROWID;
INSERT INTO traffic_daily_new (user_name, day, input_octets, output_octets)
    SELECT user_name, day, input_octets, output_octets FROM traffic_daily;
DROP TABLE traffic_daily;
ALTER TABLE traffic_daily_new RENAME TO traffic_daily;
