//! Europe/Warsaw local time without a time-zone database: CET (UTC+1) in winter, CEST
//! (UTC+2) from the last Sunday of March 01:00 UTC to the last Sunday of October 01:00 UTC,
//! the EU rule in force since 1996. Data is stored in UTC; days and displays use this, and
//! every date and time the panel, its mails and its PDFs show is written by the `format_*`
//! functions here (`15.01.2026`, `15.01.2026 14:05`), in both languages.

use time::{Date, Month, OffsetDateTime, UtcOffset};

fn last_sunday(year: i32, month: Month) -> Date {
    let last = Date::from_calendar_date(year, month, month.length(year)).expect("valid date");
    let back = last.weekday().number_days_from_sunday();
    last - time::Duration::days(i64::from(back))
}

/// The Europe/Warsaw UTC offset at instant `t`.
pub(crate) fn warsaw_offset(t: OffsetDateTime) -> UtcOffset {
    let utc = t.to_offset(UtcOffset::UTC);
    let year = utc.year();
    let start = last_sunday(year, Month::March)
        .with_hms(1, 0, 0)
        .expect("valid")
        .assume_utc();
    let end = last_sunday(year, Month::October)
        .with_hms(1, 0, 0)
        .expect("valid")
        .assume_utc();
    let hours = if utc >= start && utc < end { 2 } else { 1 };
    UtcOffset::from_hms(hours, 0, 0).expect("valid offset")
}

/// `t` in Europe/Warsaw.
pub fn to_warsaw(t: OffsetDateTime) -> OffsetDateTime {
    t.to_offset(warsaw_offset(t))
}

/// The instant a Europe/Warsaw wall-clock time names. In the hour repeated when summer time
/// ends the first (summer) one; a time skipped when it starts is read as winter time.
pub fn from_warsaw(local: time::PrimitiveDateTime) -> OffsetDateTime {
    for hours in [2, 1] {
        let offset = UtcOffset::from_hms(hours, 0, 0).expect("valid offset");
        let t = local.assume_offset(offset);
        if warsaw_offset(t) == offset {
            return t.to_offset(UtcOffset::UTC);
        }
    }
    local
        .assume_offset(UtcOffset::from_hms(1, 0, 0).expect("valid offset"))
        .to_offset(UtcOffset::UTC)
}

/// The calendar day in Europe/Warsaw of instant `t`.
pub fn warsaw_date(t: OffsetDateTime) -> Date {
    to_warsaw(t).date()
}

/// A calendar day as subscribers read it: `15.01.2026` (DD.MM.RRRR).
pub fn format_date(d: Date) -> String {
    format!("{:02}.{:02}.{}", d.day(), u8::from(d.month()), d.year())
}

/// An instant as subscribers read it, in Europe/Warsaw to the minute: `15.01.2026 14:05`.
pub fn format_datetime(t: OffsetDateTime) -> String {
    let w = to_warsaw(t);
    format!(
        "{} {:02}:{:02}",
        format_date(w.date()),
        w.hour(),
        w.minute()
    )
}

/// The month of `d`: `01.2026`.
pub fn format_month(d: Date) -> String {
    format!("{:02}.{}", u8::from(d.month()), d.year())
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn wall_clock_times_to_instants() {
        assert_eq!(
            from_warsaw(datetime!(2026-12-01 14:00)),
            datetime!(2026-12-01 13:00 UTC)
        );
        assert_eq!(
            from_warsaw(datetime!(2026-07-01 14:00)),
            datetime!(2026-07-01 12:00 UTC)
        );
        // 02:30 on 25 October 2026 happens twice: the summer one.
        assert_eq!(
            from_warsaw(datetime!(2026-10-25 02:30)),
            datetime!(2026-10-25 00:30 UTC)
        );
        // 02:30 on 29 March 2026 does not happen: read as winter time.
        assert_eq!(
            from_warsaw(datetime!(2026-03-29 02:30)),
            datetime!(2026-03-29 01:30 UTC)
        );
    }

    #[test]
    fn offsets_around_dst_changes() {
        // 2026: DST starts 29 March 01:00 UTC, ends 25 October 01:00 UTC.
        assert_eq!(
            warsaw_offset(datetime!(2026-03-29 00:59:59 UTC)).whole_hours(),
            1
        );
        assert_eq!(
            warsaw_offset(datetime!(2026-03-29 01:00:00 UTC)).whole_hours(),
            2
        );
        assert_eq!(
            warsaw_offset(datetime!(2026-10-25 00:59:59 UTC)).whole_hours(),
            2
        );
        assert_eq!(
            warsaw_offset(datetime!(2026-10-25 01:00:00 UTC)).whole_hours(),
            1
        );
        assert_eq!(
            warsaw_offset(datetime!(2026-01-15 12:00 UTC)).whole_hours(),
            1
        );
    }

    #[test]
    fn last_sunday_is_the_last_sunday_of_its_month() {
        for year in 1996..=2100 {
            for month in [Month::March, Month::October] {
                let d = last_sunday(year, month);
                assert_eq!(d.weekday(), time::Weekday::Sunday, "{year} {month}");
                assert_eq!(d.month(), month);
                assert!(d.day() + 7 > month.length(year), "{d}");
            }
        }
    }

    #[test]
    fn dates_and_times_as_subscribers_read_them() {
        use time::macros::date;
        assert_eq!(format_date(date!(2026 - 01 - 15)), "15.01.2026");
        assert_eq!(format_date(date!(2026 - 12 - 01)), "01.12.2026");
        assert_eq!(format_month(date!(2026 - 03 - 31)), "03.2026");
        // Winter (UTC+1), summer (UTC+2), and a UTC evening that is already the next day.
        assert_eq!(
            format_datetime(datetime!(2026-01-15 13:05:59 UTC)),
            "15.01.2026 14:05"
        );
        assert_eq!(
            format_datetime(datetime!(2026-07-01 07:00 UTC)),
            "01.07.2026 09:00"
        );
        assert_eq!(
            format_datetime(datetime!(2026-07-31 23:30 UTC)),
            "01.08.2026 01:30"
        );
    }

    #[test]
    fn day_boundary_follows_warsaw() {
        // 23:30 UTC on 31 July is already 1 August in Warsaw (UTC+2).
        assert_eq!(
            warsaw_date(datetime!(2026-07-31 23:30 UTC)),
            time::macros::date!(2026 - 08 - 01)
        );
        assert_eq!(
            warsaw_date(datetime!(2026-12-31 22:59 UTC)),
            time::macros::date!(2026 - 12 - 31)
        );
    }
}
