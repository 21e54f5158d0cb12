//! Retention: connection data (session history, daily traffic) is kept for
//! `[retention] history_days` — Polish telecom law asks for 12 months — and the audit log for
//! `audit_days`; older rows are deleted by a scheduled task. Former subscribers (every
//! contract terminated and ended more than `former_subscriber_days` ago) lose the personal
//! data the ISP no longer needs — PESEL, phone, e-mail, correspondence address, PPPoE
//! passwords, panel account, tickets and orders — keeping name, home address and NIP, which
//! their invoices (accounting records, kept by tax law) must still carry.

use time::{Duration, OffsetDateTime};

use super::Db;
use crate::on_pool;

/// Rows deleted by one pruning run.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Pruned {
    pub sessions: u64,
    pub traffic_days: u64,
    pub audit: u64,
    /// Former subscribers whose personal data was reduced.
    pub former_subscribers: u64,
}

/// Delete what is older than the retention periods, as of `now`.
pub async fn prune(
    db: &Db,
    now: OffsetDateTime,
    history_days: u32,
    audit_days: u32,
    former_subscriber_days: u32,
) -> Result<Pruned, sqlx::Error> {
    let former_cut =
        crate::tz::warsaw_date(now - Duration::days(i64::from(former_subscriber_days)));
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
        // Former subscribers with personal data still on file.
        let former = "SELECT s.id FROM subscribers s \
            WHERE EXISTS (SELECT 1 FROM contracts c WHERE c.subscriber_id = s.id) \
            AND NOT EXISTS (SELECT 1 FROM contracts c WHERE c.subscriber_id = s.id \
                AND (c.status <> 'terminated' OR c.ends_on IS NULL OR c.ends_on >= $1)) \
            AND (s.pesel IS NOT NULL OR s.phone IS NOT NULL OR s.email IS NOT NULL \
                OR s.corr_street IS NOT NULL \
                OR EXISTS (SELECT 1 FROM panel_accounts p WHERE p.subscriber_id = s.id) \
                OR EXISTS (SELECT 1 FROM tickets t WHERE t.subscriber_id = s.id) \
                OR EXISTS (SELECT 1 FROM pppoe_accounts a JOIN contracts c ON c.id = a.contract_id \
                    WHERE c.subscriber_id = s.id AND a.password IS NOT NULL))";
        let ids: Vec<i64> = sqlx::query_scalar(former)
            .bind(former_cut)
            .fetch_all(&mut *tx)
            .await?;
        for id in &ids {
            for sql in [
                "DELETE FROM panel_accounts WHERE subscriber_id = $1",
                "DELETE FROM tickets WHERE subscriber_id = $1",
                "DELETE FROM service_orders WHERE subscriber_id = $1",
                "UPDATE pppoe_accounts SET password = NULL WHERE contract_id IN \
                 (SELECT id FROM contracts WHERE subscriber_id = $1)",
            ] {
                sqlx::query(sql).bind(id).execute(&mut *tx).await?;
            }
            sqlx::query(
                "UPDATE subscribers SET pesel = NULL, phone = NULL, email = NULL, \
                 corr_street = NULL, corr_postcode = NULL, corr_city = NULL, updated_at = $2 \
                 WHERE id = $1",
            )
            .bind(id)
            .bind(now.unix_timestamp())
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(Pruned { sessions, traffic_days, audit, former_subscribers: ids.len() as u64 })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ebok_live::sessions::{Applied, CloseReason, ClosedSession, LiveSession};
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
                crate::testkit::traffic_sample("jan", old, 1, 1),
                crate::testkit::traffic_sample("jan", recent, 1, 1),
            ],
        };
        crate::history::record(db, &applied).await.unwrap();
        let mut tx = db.begin().await.unwrap();
        crate::audit::append(&mut tx, "test", "login", None, "x")
            .await
            .unwrap();
        tx.commit().await.unwrap();

        let p = prune(db, now, 365, 730, 730).await.unwrap();
        assert_eq!(p.sessions, 1);
        assert_eq!(p.traffic_days, 1);
        assert_eq!(p.audit, 0, "today's audit entry stays");
        let ip = "10.0.0.7".parse().unwrap();
        let history = crate::attribution::held_at;
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
            730,
        )
        .await
        .unwrap();
        assert_eq!(later.audit, 1);
    }

    #[tokio::test]
    async fn prunes_old_history_traffic_and_audit_on_sqlite() {
        let dir = tempfile::tempdir().unwrap();
        let db = crate::testkit::sqlite_in(dir.path(), "t.sqlite").await;
        scenario(&db).await;
        former_scenario(&db).await;
    }

    /// A subscriber with one contract; returns the subscriber id.
    async fn subscriber(db: &Db, n: u32, status: &str, ends_on: Option<time::Date>) -> i64 {
        let mut tx = db.begin().await.unwrap();
        let id = crate::on_tx!(&mut tx, conn => {
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO subscribers (ext_id, kind, first_name, last_name, pesel, home_street, \
                 home_postcode, home_city, phone, email, updated_at) \
                 VALUES ($1, 'person', 'Jan', 'Nowak', '44051401359', 'ul. Długa 1', '30-001', \
                 'Kraków', '600100200', 'jan@example.pl', 0) RETURNING id",
            )
            .bind(format!("s{n}"))
            .fetch_one(&mut **conn)
            .await
            .unwrap();
            sqlx::query(
                "INSERT INTO contracts (ext_id, subscriber_id, number, starts_on, ends_on, \
                 monthly_fee, tariff, download_kbps, upload_kbps, inst_street, inst_postcode, \
                 inst_city, status, updated_at) VALUES ($1, $2, $3, $4, $5, 5000, 'T', 1, 1, \
                 'ul. Długa 1', '30-001', 'Kraków', $6, 0)",
            )
            .bind(format!("c{n}"))
            .bind(id)
            .bind(format!("KR/{n}"))
            .bind(time::macros::date!(2015 - 01 - 01))
            .bind(ends_on)
            .bind(status)
            .execute(&mut **conn)
            .await
            .unwrap();
            id
        });
        tx.commit().await.unwrap();
        id
    }

    async fn former_scenario(db: &Db) {
        use time::macros::date;
        let now = datetime!(2026-11-25 12:00 UTC);
        let long_gone = subscriber(db, 1, "terminated", Some(date!(2023 - 06 - 30))).await;
        let recently_gone = subscriber(db, 2, "terminated", Some(date!(2026 - 06 - 30))).await;
        let active = subscriber(db, 3, "active", None).await;
        let p = prune(db, now, 365, 730, 730).await.unwrap();
        assert_eq!(p.former_subscribers, 1);
        let get = |id: i64| async move {
            crate::subscribers::subscriber(db, id)
                .await
                .unwrap()
                .unwrap()
        };
        let gone = get(long_gone).await;
        assert!(gone.pesel.is_none() && gone.phone.is_none() && gone.email.is_none());
        assert_eq!(
            gone.display_name(),
            "Jan Nowak",
            "the name stays for the invoices"
        );
        assert_eq!(gone.home.city, "Kraków");
        assert!(get(recently_gone).await.pesel.is_some());
        assert!(get(active).await.pesel.is_some());
        // Nothing left to do on the next run.
        assert_eq!(
            prune(db, now, 365, 730, 730)
                .await
                .unwrap()
                .former_subscribers,
            0
        );
    }

    #[tokio::test]
    async fn prunes_old_history_traffic_and_audit_on_postgresql() {
        let Some(pg) = crate::testkit::FreshPg::create("retention_postgresql").await else {
            return;
        };
        let db = Db::connect(&pg.url).await.unwrap();
        scenario(&db).await;
        former_scenario(&db).await;
        drop(db);
        pg.drop_db().await;
    }
}
