-- Daily traffic from each session's newest counters per Europe/Warsaw day. A session's
-- octets on a day are carry + last − base: `base` holds its counters at the end of the day
-- before (0 on its first day), `last` the newest counters of the day (taken only from a
-- reading newer than `last_at`, ns), `carry` what was counted before the counters went
-- backwards. Writing the same reading again, or an older one, changes nothing: an event the
-- accounting replay applies a second time cannot count twice. traffic_daily (per login and
-- day, what the panel's statistics read) follows through the trigger below.
CREATE TABLE session_traffic (
    nas TEXT NOT NULL,
    session_id TEXT NOT NULL,
    started_at BIGINT NOT NULL,
    day DATE NOT NULL,
    user_name TEXT NOT NULL,
    base_in BIGINT NOT NULL,
    base_out BIGINT NOT NULL,
    carry_in BIGINT NOT NULL DEFAULT 0,
    carry_out BIGINT NOT NULL DEFAULT 0,
    last_in BIGINT NOT NULL,
    last_out BIGINT NOT NULL,
    last_at BIGINT NOT NULL,
    PRIMARY KEY (nas, session_id, started_at, day)
);
-- Retention deletes by day.
CREATE INDEX session_traffic_day ON session_traffic (day);

CREATE FUNCTION session_traffic_to_daily() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    d_in BIGINT := NEW.carry_in + NEW.last_in - NEW.base_in;
    d_out BIGINT := NEW.carry_out + NEW.last_out - NEW.base_out;
BEGIN
    IF TG_OP = 'UPDATE' THEN
        d_in := d_in - (OLD.carry_in + OLD.last_in - OLD.base_in);
        d_out := d_out - (OLD.carry_out + OLD.last_out - OLD.base_out);
    END IF;
    INSERT INTO traffic_daily (user_name, day, input_octets, output_octets)
    VALUES (NEW.user_name, NEW.day, d_in, d_out)
    ON CONFLICT (user_name, day) DO UPDATE SET
        input_octets = traffic_daily.input_octets + excluded.input_octets,
        output_octets = traffic_daily.output_octets + excluded.output_octets;
    RETURN NULL;
END
$$;

CREATE TRIGGER session_traffic_counted AFTER INSERT OR UPDATE ON session_traffic
    FOR EACH ROW EXECUTE FUNCTION session_traffic_to_daily();
