//! Statystyki: traffic per day (last 30 days) and per month (last 12) as server-rendered SVG
//! bar charts, each with a table of the same numbers beneath, and the session history.

use crate::web::error::PanelError;
use std::collections::HashMap;

use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use time::{Date, OffsetDateTime};

use super::i18n::Tr;
use super::line::{history_view, human_bytes, logins_of, HistoryView};
use super::pages::{render, Chrome, Ctx};
use super::paging::{clamped, PageQuery, Pager};
use super::AppState;
use ebok_store::history::{self, DayTraffic};

/// Closed sessions per page.
const HISTORY_PAGE: u32 = 20;
const DAYS: usize = 30;
const MONTHS: usize = 12;

/// The routes of this page group.
pub(crate) fn routes() -> Router<AppState> {
    Router::new().route("/statystyki", get(stats_page))
}

// ---------------------------------------------------------------------------------------------
// Charts
// ---------------------------------------------------------------------------------------------

/// Drawing area of every chart, in SVG user units.
pub(crate) const WIDTH: f64 = 720.0;
pub(crate) const HEIGHT: f64 = 260.0;
const LEFT: f64 = 72.0;
const RIGHT: f64 = 8.0;
const TOP: f64 = 12.0;
const BOTTOM: f64 = 44.0;
pub(crate) const PLOT_HEIGHT: f64 = HEIGHT - TOP - BOTTOM;
const PLOT_WIDTH: f64 = WIDTH - LEFT - RIGHT;
/// At most this many labels under the x axis (every n-th bucket is labelled).
const MAX_X_LABELS: usize = 10;

/// One period of a chart: download and upload octets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bucket {
    /// Short label under the axis (`01.07`).
    pub short: String,
    /// Full label for the table and the bar's tooltip (`01.07.2026`, `07.2026`).
    pub full: String,
    pub down: u64,
    pub up: u64,
}

/// One bar (SVG numbers are written with a dot whatever the language).
pub struct Bar {
    pub x: String,
    pub y: String,
    pub w: String,
    pub h: String,
    /// `down` or `up`.
    pub class: &'static str,
    pub title: String,
}

pub(crate) struct Tick {
    pub y: String,
    pub label: String,
}

pub(crate) struct XLabel {
    pub x: String,
    pub label: String,
}

/// A bar chart ready for the template.
pub(crate) struct Chart {
    pub id: &'static str,
    pub title: String,
    pub desc: String,
    pub x_title: String,
    pub bars: Vec<Bar>,
    pub ticks: Vec<Tick>,
    pub labels: Vec<XLabel>,
    /// Where the axes meet and end.
    pub x0: String,
    pub x1: String,
    pub y0: String,
    pub y1: String,
}

/// The smallest 1, 2 or 5 × 10ⁿ at or above `max` (1 kB for an empty chart): the top of
/// the y axis, so quarter ticks fall on round numbers.
pub(crate) fn axis_top(max: u64) -> u64 {
    if max == 0 {
        return 1000;
    }
    let max = u128::from(max);
    let mut p: u128 = 1;
    while p * 10 <= max {
        p *= 10;
    }
    let top = [1u128, 2, 5, 10]
        .iter()
        .map(|f| f * p)
        .find(|v| *v >= max)
        .expect("10p exceeds max");
    top.min(u128::from(u64::MAX)) as u64
}

fn n1(v: f64) -> String {
    format!("{v:.1}")
}

/// Lay out `buckets` as pairs of bars (download, upload) on a common scale.
pub(crate) fn chart(
    t: Tr,
    id: &'static str,
    title: String,
    desc: String,
    x_title: String,
    buckets: &[Bucket],
) -> Chart {
    let top = axis_top(buckets.iter().map(|b| b.down.max(b.up)).max().unwrap_or(0));
    let base = TOP + PLOT_HEIGHT;
    let group = PLOT_WIDTH / buckets.len().max(1) as f64;
    let bar_w = group * 0.4;
    let height = |v: u64| v as f64 * PLOT_HEIGHT / top as f64;
    let mut bars = Vec::with_capacity(buckets.len() * 2);
    let mut labels = Vec::new();
    let every = buckets.len().div_ceil(MAX_X_LABELS).max(1);
    for (i, b) in buckets.iter().enumerate() {
        let gx = LEFT + group * i as f64;
        for (k, (class, v, key)) in [
            ("down", b.down, "stats.bar_down"),
            ("up", b.up, "stats.bar_up"),
        ]
        .into_iter()
        .enumerate()
        {
            let h = height(v);
            bars.push(Bar {
                x: n1(gx + group * 0.1 + bar_w * k as f64),
                y: n1(base - h),
                w: n1(bar_w),
                h: n1(h),
                class,
                title: t.f(key, &[("period", &b.full), ("amount", &human_bytes(t, v))]),
            });
        }
        if i % every == 0 {
            labels.push(XLabel {
                x: n1(gx + group / 2.0),
                label: b.short.clone(),
            });
        }
    }
    let ticks = (0..=4u64)
        .map(|q| Tick {
            y: n1(base - PLOT_HEIGHT * q as f64 / 4.0),
            label: human_bytes(t, (u128::from(top) * u128::from(q) / 4) as u64),
        })
        .collect();
    Chart {
        id,
        title,
        desc,
        x_title,
        bars,
        ticks,
        labels,
        x0: n1(LEFT),
        x1: n1(WIDTH - RIGHT),
        y0: n1(base),
        y1: n1(TOP),
    }
}

/// The first day of the month `k` months before the month of `d`.
fn months_back(d: Date, k: u32) -> Date {
    let index = d.year() * 12 + (d.month() as i32 - 1) - k as i32;
    let (year, month) = (index.div_euclid(12), index.rem_euclid(12) as u8 + 1);
    Date::from_calendar_date(year, time::Month::try_from(month).expect("1..=12"), 1)
        .expect("valid date")
}

/// The last 30 days (today last) and the last 12 months (this month last) from daily rows.
pub fn buckets(today: Date, rows: &[DayTraffic]) -> (Vec<Bucket>, Vec<Bucket>) {
    let by_day: HashMap<Date, &DayTraffic> = rows.iter().map(|r| (r.day, r)).collect();
    let days = (0..DAYS)
        .rev()
        .map(|back| {
            let d = today - time::Duration::days(back as i64);
            let r = by_day.get(&d);
            Bucket {
                short: format!("{:02}.{:02}", d.day(), d.month() as u8),
                full: ebok_store::tz::format_date(d),
                // Output octets went to the subscriber: download.
                down: r.map_or(0, |r| r.output_octets),
                up: r.map_or(0, |r| r.input_octets),
            }
        })
        .collect();
    let months = (0..MONTHS as u32)
        .rev()
        .map(|back| {
            let m = months_back(today, back);
            let (down, up) = rows
                .iter()
                .filter(|r| r.day.year() == m.year() && r.day.month() == m.month())
                .fold((0u64, 0u64), |(d, u), r| {
                    (
                        d.saturating_add(r.output_octets),
                        u.saturating_add(r.input_octets),
                    )
                });
            Bucket {
                short: format!("{:02}.{}", m.month() as u8, m.year() % 100),
                full: ebok_store::tz::format_month(m),
                down,
                up,
            }
        })
        .collect();
    (days, months)
}

// ---------------------------------------------------------------------------------------------
// The page
// ---------------------------------------------------------------------------------------------

/// A table row under a chart.
pub struct Row {
    pub period: String,
    pub down: String,
    pub up: String,
}

fn rows(t: Tr, b: &[Bucket]) -> (Vec<Row>, Row) {
    let (d, u) = b.iter().fold((0u64, 0u64), |(d, u), x| {
        (d.saturating_add(x.down), u.saturating_add(x.up))
    });
    (
        b.iter()
            .map(|x| Row {
                period: x.full.clone(),
                down: human_bytes(t, x.down),
                up: human_bytes(t, x.up),
            })
            .collect(),
        Row {
            period: t.t("stats.total").to_owned(),
            down: human_bytes(t, d),
            up: human_bytes(t, u),
        },
    )
}

/// A chart and its table.
pub(crate) struct Section {
    pub chart: Chart,
    pub rows: Vec<Row>,
    pub total: Row,
}

#[derive(Template)]
#[template(path = "stats.html")]
struct StatsPage {
    c: Chrome,
    /// Per day, then per month; none when no traffic was recorded in the last 12 months.
    sections: Vec<Section>,
    history: Vec<HistoryView>,
    pager: Pager,
}

/// Statystyki: the subscriber's traffic (all their PPPoE logins together) and sessions.
pub(crate) async fn stats_page(
    State(state): State<AppState>,
    ctx: Ctx,
    Query(q): Query<PageQuery>,
) -> Result<Response, PanelError> {
    let Some(a) = &ctx.auth else {
        return Ok(super::pages::to_login());
    };
    let t = ctx.t;
    let logins: Vec<String> = match logins_of(&state, a).await {
        Ok(x) => x.into_iter().map(|a| a.login).collect(),
        Err(e) => return Err(e.into()),
    };
    let today = ebok_store::tz::warsaw_date(OffsetDateTime::now_utc());
    let from = months_back(today, MONTHS as u32 - 1);
    let traffic = history::traffic_between(&state.db, &logins, from, today).await?;
    let sessions = clamped(q.page(HISTORY_PAGE), |p| {
        history::sessions_of(&state.db, &logins, p)
    })
    .await?;
    // Nothing recorded in the whole window: a sentence, not empty charts and rows of "0 B".
    let recorded = traffic
        .iter()
        .any(|d| d.input_octets > 0 || d.output_octets > 0);
    let (days, months) = buckets(today, &traffic);
    let (daily_rows, daily_total) = rows(t, &days);
    let (monthly_rows, monthly_total) = rows(t, &months);
    let daily = chart(
        t,
        "daily",
        t.t("stats.daily_title").to_owned(),
        t.f(
            "stats.chart_desc",
            &[("down", &daily_total.down), ("up", &daily_total.up)],
        ),
        t.t("stats.day").to_owned(),
        &days,
    );
    let monthly = chart(
        t,
        "monthly",
        t.t("stats.monthly_title").to_owned(),
        t.f(
            "stats.chart_desc",
            &[("down", &monthly_total.down), ("up", &monthly_total.up)],
        ),
        t.t("stats.month").to_owned(),
        &months,
    );
    let sections = if recorded {
        vec![
            Section {
                chart: daily,
                rows: daily_rows,
                total: daily_total,
            },
            Section {
                chart: monthly,
                rows: monthly_rows,
                total: monthly_total,
            },
        ]
    } else {
        Vec::new()
    };
    let page = StatsPage {
        sections,
        history: sessions.items.iter().map(|r| history_view(t, r)).collect(),
        pager: Pager::of(&sessions, "/statystyki"),
        c: Chrome::new(&state, &ctx, "/statystyki").await,
    };
    Ok(render(StatusCode::OK, &page))
}

#[cfg(test)]
mod tests {
    use axum::http::StatusCode;
    use time::macros::date;

    use super::*;
    use crate::web::i18n::Lang;
    use crate::web::line::tests::{closed, record};
    use crate::web::tests::*;
    use ebok_live::sessions::TrafficReading;

    fn delta(login: &str, at: OffsetDateTime, up: u64, down: u64) -> TrafficReading {
        crate::testkit::traffic_sample(login, at, up, down)
    }

    #[test]
    fn axis_tops_are_round() {
        assert_eq!(axis_top(0), 1000);
        assert_eq!(axis_top(1), 1);
        assert_eq!(axis_top(1_999_999_999), 2_000_000_000);
        assert_eq!(axis_top(2_000_000_001), 5_000_000_000);
        assert_eq!(axis_top(7_000), 10_000);
        assert_eq!(axis_top(u64::MAX), u64::MAX);
    }

    #[test]
    fn buckets_and_bars_from_known_days() {
        let today = date!(2026 - 03 - 02);
        let rows = [
            DayTraffic {
                day: date!(2026 - 03 - 02),
                input_octets: 500_000_000,
                output_octets: 2_000_000_000,
            },
            DayTraffic {
                day: date!(2026 - 02 - 27),
                input_octets: 0,
                output_octets: 1_000_000_000,
            },
            // Older than 30 days: only in the months.
            DayTraffic {
                day: date!(2025 - 04 - 30),
                input_octets: 7,
                output_octets: 8,
            },
        ];
        let (days, months) = buckets(today, &rows);
        assert_eq!(days.len(), 30);
        assert_eq!(days[0].full, "01.02.2026");
        assert_eq!(days[29].short, "02.03");
        assert_eq!((days[29].down, days[29].up), (2_000_000_000, 500_000_000));
        assert_eq!(days[26].full, "27.02.2026");
        assert_eq!(days[26].down, 1_000_000_000);
        assert_eq!(months.len(), 12);
        assert_eq!(months[0].full, "04.2025");
        assert_eq!((months[0].down, months[0].up), (8, 7));
        assert_eq!(months[10].full, "02.2026");
        assert_eq!(months[10].down, 1_000_000_000);
        assert_eq!(months[11].down, 2_000_000_000);

        let t = Tr::new(Lang::Pl);
        let c = chart(t, "daily", "T".into(), "D".into(), "Dzień".into(), &days);
        assert_eq!(c.bars.len(), 60);
        let today_down = &c.bars[58];
        let today_up = &c.bars[59];
        assert_eq!(
            today_down.h,
            format!("{PLOT_HEIGHT:.1}"),
            "the largest bar fills the plot"
        );
        assert_eq!(today_up.h, format!("{:.1}", PLOT_HEIGHT / 4.0));
        assert_eq!(c.bars[52].h, format!("{:.1}", PLOT_HEIGHT / 2.0));
        assert_eq!(c.bars[0].h, "0.0");
        assert_eq!(today_down.title, "02.03.2026: pobrano 2,0\u{a0}GB");
        let ticks: Vec<&str> = c.ticks.iter().map(|t| t.label.as_str()).collect();
        assert_eq!(
            ticks,
            [
                "0 B",
                "500,0\u{a0}MB",
                "1,0\u{a0}GB",
                "1,5\u{a0}GB",
                "2,0\u{a0}GB"
            ]
        );
        assert_eq!(c.labels.len(), 10);
        assert_eq!(c.labels[0].label, "01.02");
    }

    #[tokio::test]
    async fn statistics_page_charts_tables_and_paged_history() {
        let h = Harness::sqlite().await;
        let mut b = jan_registered(&h).await;
        let now = OffsetDateTime::now_utc();
        let earlier = now - time::Duration::days(3);
        let started = datetime_utc(2026, 1, 10);
        let sessions = (0..25)
            .map(|i| {
                closed(
                    "jan@isp",
                    &format!("j{i:02}"),
                    "83.1.9.9",
                    started + time::Duration::hours(i),
                    600,
                    Some(1),
                )
            })
            .chain([closed("anna@isp", "a1", "83.1.7.7", started, 60, Some(2))])
            .collect();
        record(
            &h,
            sessions,
            vec![
                delta("jan@isp", now, 500_000_000, 2_000_000_000),
                delta("jan@isp", earlier, 0, 1_000_000_000),
                delta("anna@isp", now, 9_000_000_000, 9_000_000_000),
            ],
        )
        .await;

        let r = b.get("/statystyki").await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        let body = &r.body;
        assert!(body.contains("role=\"img\""));
        assert!(body.contains("<title id=\"daily-title\">Transfer w ostatnich 30 dniach</title>"));
        assert!(!body.contains("style="), "no inline styles under the CSP");
        let today = ebok_store::tz::format_date(ebok_store::tz::warsaw_date(now));
        let full = format!("{PLOT_HEIGHT:.1}");
        assert!(
            body.contains(&format!(
                "height=\"{full}\"><title>{today}: pobrano 2,0\u{a0}GB</title>"
            )),
            "{body}"
        );
        assert!(body.contains(&format!(
            "height=\"{:.1}\"><title>{today}: wysłano 500,0\u{a0}MB</title>",
            PLOT_HEIGHT / 4.0
        )));
        assert!(body.contains(&format!(
            "<th scope=\"row\">{today}</th><td class=\"num\">2,0\u{a0}GB</td><td class=\"num\">500,0\u{a0}MB</td>"
        )));
        let total = "<th scope=\"row\">Razem</th><td class=\"num\">3,0\u{a0}GB</td><td class=\"num\">500,0\u{a0}MB</td>";
        assert_eq!(body.matches(total).count(), 2, "30 days and 12 months");
        // Anna's traffic and sessions stay hers.
        assert!(!body.contains("9,0\u{a0}GB") && !body.contains("83.1.7.7"));

        // History: 25 sessions, 20 on the first page, newest first.
        assert_eq!(body.matches("rozłączenie przez użytkownika").count(), 20);
        assert!(
            body.contains("11.01.2026 11:00"),
            "newest: 10 Jan 10:00 UTC + 24 h"
        );
        assert!(body.contains("href=\"/statystyki?strona=2\""));
        let r = b.get("/statystyki?strona=2").await;
        assert_eq!(r.body.matches("rozłączenie przez użytkownika").count(), 5);
        assert!(r.body.contains("10.01.2026 11:00"));
        assert!(r.body.contains("href=\"/statystyki?strona=1\""));

        let r = h.browser(JAN_IP).get("/statystyki").await;
        assert_eq!(r.location(), "/logowanie?wroc=/statystyki");
        h.finish().await;
    }

    /// No traffic yet: one sentence instead of two empty charts and 42 rows of "0 B".
    #[tokio::test]
    async fn statistics_without_traffic_say_so() {
        let h = Harness::sqlite().await;
        let mut b = jan_registered(&h).await;
        let r = b.get("/statystyki").await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        assert!(
            r.body
                .contains("Nie zarejestrowaliśmy jeszcze żadnego ruchu"),
            "{}",
            r.body
        );
        assert!(!r.body.contains("<svg"), "no empty chart");
        assert!(!r.body.contains("0 B"), "no rows of zeros");
        b.cookies.insert("ebok_lang".into(), "en".into());
        let r = b.get("/statystyki").await;
        assert!(r.body.contains("No traffic has been recorded"));
        h.finish().await;
    }

    /// A page number past the end shows the last page ("Strona 2 z 2"), never "Strona 99
    /// z 2" with nothing on it.
    #[tokio::test]
    async fn history_page_past_the_end_is_the_last_page() {
        let h = Harness::sqlite().await;
        let mut b = jan_registered(&h).await;
        let started = datetime_utc(2026, 1, 10);
        let sessions = (0..25)
            .map(|i| {
                let at = started + time::Duration::hours(i);
                closed("jan@isp", &format!("j{i:02}"), "83.1.9.9", at, 600, Some(1))
            })
            .collect();
        record(&h, sessions, Vec::new()).await;
        let r = b.get("/statystyki?strona=99").await;
        assert_eq!(r.status, StatusCode::OK);
        assert!(
            !r.body.contains("z 99") && !r.body.contains("99 z"),
            "{}",
            r.body
        );
        assert!(r.body.contains("strona 2 z 2") || r.body.contains("Strona 2 z 2"));
        assert_eq!(r.body.matches("rozłączenie przez użytkownika").count(), 5);
        assert!(r.body.contains("href=\"/statystyki?strona=1\""));
        assert!(!r.body.contains("strona=3") && !r.body.contains("strona=100"));
        h.finish().await;
    }

    /// The same reads on PostgreSQL (SUM casts, DATE comparisons) with the Redis live map.
    #[tokio::test]
    async fn statistics_and_pppoe_on_postgres_and_redis() {
        let Some(h) = Harness::postgres_redis("stats_pg").await else {
            return;
        };
        let mut b = jan_registered(&h).await;
        let now = OffsetDateTime::now_utc();
        record(
            &h,
            vec![closed(
                "jan@isp",
                "j1",
                "83.1.9.9",
                datetime_utc(2026, 1, 10),
                600,
                Some(1),
            )],
            vec![
                delta("jan@isp", now, 500_000_000, 2_000_000_000),
                delta("jan@isp", now, 500_000_000, 1_000_000_000),
                delta("anna@isp", now, 1, 1),
            ],
        )
        .await;
        let r = b.get("/statystyki").await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        let total = "<th scope=\"row\">Razem</th><td class=\"num\">3,0\u{a0}GB</td><td class=\"num\">1,0\u{a0}GB</td>";
        assert_eq!(r.body.matches(total).count(), 2, "{}", r.body);
        assert!(r.body.contains("rozłączenie przez użytkownika"));
        let r = b.get("/pppoe").await;
        assert!(r.body.contains("s-jan") && !r.body.contains("s-anna"));
        h.finish().await;
    }

    fn datetime_utc(y: i32, m: u8, d: u8) -> OffsetDateTime {
        Date::from_calendar_date(y, time::Month::try_from(m).unwrap(), d)
            .unwrap()
            .midnight()
            .assume_utc()
            + time::Duration::hours(10)
    }
}
