//! Retention: connection data (session history, daily traffic) is kept for
//! `[retention] history_days` — Polish telecom law asks for 12 months — and the audit log for
//! `audit_days`; older rows are deleted by a scheduled task.

use time::{Duration, OffsetDateTime};

use super::Db;
use crate::on_pool;

/// Rows deleted by one pruning run.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Pruned {
    pub sessions: u64,
    pub traffic_days: u64,
    pub audit: u64,
}

/// Delete what is older than the retention periods, as of `now`.
pub async fn prune(
    db: &Db,
    now: OffsetDateTime,
    history_days: u32,
    audit_days: u32,
) -> Result<Pruned, sqlx::Error> {
    let history_cut = now - Duration::days(i64::from(history_days));
    let audit_cut = (now - Duration::days(i64::from(audit_days))).unix_timestamp();
    let day_cut = crate::tz::warsaw_date(history_cut);
    on_pool!(db, pool => {
        let mut tx = pool.begin().await?;
        // IPv6 rows go with their session (ON DELETE CASCADE on both backends).
        let sessions = sqlx::query("DELETE FROM session_history WHERE stopped_at < $1")
            .bind(history_cut.unix_timestamp())
            .execute(&mut *tx)
            .await?
            .rows_affected();
        let traffic_days = sqlx::query("DELETE FROM traffic_daily WHERE day < $1")
            .bind(day_cut)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        let audit = sqlx::query("DELETE FROM audit_log WHERE at < $1")
            .bind(audit_cut)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok(Pruned { sessions, traffic_days, audit })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sessions::{Applied, CloseReason, ClosedSession, LiveSession, TrafficDelta};
    use time::macros::datetime;

    fn closed(id: &str, start: OffsetDateTime, stop: OffsetDateTime) -> ClosedSession {
        ClosedSession {
            session: LiveSession {
                nas: "nas".into(),
                nas_client: "nas".into(),
                session_id: id.into(),
                user_name: Some("jan".into()),
                framed_ip: Some("10.0.0.7".parse().unwrap()),
                ipv6_prefixes: vec!["2001:db8::/56".parse().unwrap()],
                calling_station_id: None,
                nas_port: None,
                nas_port_id: None,
                started_at: start,
                updated_at: stop,
                expires_at: stop,
                input_octets: 1,
                output_octets: 2,
                input_packets: 0,
                output_packets: 0,
                session_time: None,
            },
            stopped_at: stop,
            reason: CloseReason::Stop,
            terminate_cause: None,
        }
    }

    async fn scenario(db: &Db) {
        let now = datetime!(2026-11-25 12:00 UTC);
        let old = now - Duration::days(400);
        let recent = now - Duration::days(10);
        let applied = Applied {
            stale: false,
            closed: vec![
                closed("old", old, old + Duration::hours(1)),
                closed("new", recent, recent + Duration::hours(1)),
            ],
            traffic: vec![
                TrafficDelta {
                    user_name: "jan".into(),
                    at: old,
                    input_octets: 1,
                    output_octets: 1,
                },
                TrafficDelta {
                    user_name: "jan".into(),
                    at: recent,
                    input_octets: 1,
                    output_octets: 1,
                },
            ],
        };
        crate::store::history::record(db, &applied).await.unwrap();
        let mut tx = db.begin().await.unwrap();
        crate::store::audit::append(&mut tx, "test", "login", None, "x")
            .await
            .unwrap();
        tx.commit().await.unwrap();

        let p = prune(db, now, 365, 730).await.unwrap();
        assert_eq!(p.sessions, 1);
        assert_eq!(p.traffic_days, 1);
        assert_eq!(p.audit, 0, "today's audit entry stays");
        let ip = "10.0.0.7".parse().unwrap();
        let history = crate::store::history::held_at;
        assert!(history(db, ip, old).await.unwrap().is_empty());
        assert_eq!(history(db, ip, recent).await.unwrap().len(), 1);
        let v6 = "2001:db8::1".parse().unwrap();
        assert!(
            history(db, v6, old).await.unwrap().is_empty(),
            "IPv6 rows pruned too"
        );
        // A later run one year on removes the audit entry as well.
        let later = prune(
            db,
            OffsetDateTime::now_utc() + Duration::days(800),
            365,
            730,
        )
        .await
        .unwrap();
        assert_eq!(later.audit, 1);
    }

    #[tokio::test]
    async fn prunes_old_history_traffic_and_audit_on_sqlite() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::connect(&format!(
            "sqlite://{}",
            dir.path().join("t.sqlite").display()
        ))
        .await
        .unwrap();
        scenario(&db).await;
    }

    #[tokio::test]
    async fn prunes_old_history_traffic_and_audit_on_postgresql() {
        let Some(pg) = crate::testkit::FreshPg::create("retention_postgresql").await else {
            return;
        };
        let db = Db::connect(&pg.url).await.unwrap();
        scenario(&db).await;
        drop(db);
        pg.drop_db().await;
    }
}
