//! The session stores' tests, each run against SQLite, PostgreSQL and Redis.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, Ordering};

use super::*;
use std::net::IpAddr;
use std::sync::Arc;

use ebok_live::redis_link::{LinkOptions, RedisLink, RedisTarget};
use time::OffsetDateTime;

// The SHA-256 hex a token is stored under (as every other token of the panel).
use crate::testkit::FreshPg;
use ebok_store::auth::token_hash as stored_hash;
use ebok_store::on_pool;
use ebok_store::panel::create_panel_account;
use ebok_store::repo::{from_ts, Cols};
use ebok_store::subscribers::{
    subscriber_by_ext_id, upsert_subscriber, Address, SubscriberKind, SubscriberRecord,
};
use ebok_store::Db;

const MIN: i64 = 60;
const HOUR: i64 = 3600;

/// A clock the test moves by hand; starts at the real time so Redis TTLs are sensible.
#[derive(Clone)]
struct TestClock(Arc<AtomicI64>);

impl TestClock {
    fn new() -> Self {
        TestClock(Arc::new(AtomicI64::new(
            OffsetDateTime::now_utc().unix_timestamp(),
        )))
    }

    fn source(&self) -> Clock {
        let t = self.0.clone();
        Arc::new(move || from_ts(t.load(Ordering::SeqCst)))
    }

    fn advance(&self, secs: i64) {
        self.0.fetch_add(secs, Ordering::SeqCst);
    }

    fn now(&self) -> OffsetDateTime {
        from_ts(self.0.load(Ordering::SeqCst))
    }
}

enum Backend {
    Sql {
        db: Db,
        _dir: Option<tempfile::TempDir>,
        pg: Option<FreshPg>,
    },
    Redis {
        /// A link of the test's own, to look inside.
        link: RedisLink,
        prefix: String,
        /// The shared server to clean up after the test (a Cluster of the test's own goes
        /// with it).
        cleanup: Option<String>,
    },
}

/// One store under test, its clock, two panel accounts and a way to look inside.
struct Harness {
    store: Box<dyn WebSessionStore>,
    clock: TestClock,
    accounts: [i64; 2],
    backend: Backend,
}

async fn make_account(db: &Db, n: i64) -> i64 {
    let rec = SubscriberRecord {
        ext_id: format!("S{n}"),
        kind: SubscriberKind::Person,
        first_name: Some("Jan".into()),
        last_name: Some(format!("Kowalski {n}")),
        company_name: None,
        pesel: None,
        nip: None,
        home: Address {
            street: "ul. Internetowa 1".into(),
            postcode: "30-001".into(),
            city: "Kraków".into(),
        },
        correspondence: None,
        phone: None,
        email: None,
        bank_account: None,
    };
    let mut tx = db.begin().await.unwrap();
    upsert_subscriber(&mut tx, &rec).await.unwrap();
    tx.commit().await.unwrap();
    let subscriber = subscriber_by_ext_id(db, &rec.ext_id)
        .await
        .unwrap()
        .unwrap();
    let mut tx = db.begin().await.unwrap();
    let id = create_panel_account(
        &mut tx,
        subscriber.id,
        &format!("jan{n}"),
        "$argon2id$not-a-real-hash",
        "jan@example.pl",
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    id
}

impl Harness {
    async fn sql(db: Db, dir: Option<tempfile::TempDir>, pg: Option<FreshPg>) -> Harness {
        let clock = TestClock::new();
        let accounts = [make_account(&db, 1).await, make_account(&db, 2).await];
        let store =
            SqlWebSessions::new(db.clone(), SessionPolicy::default()).with_clock(clock.source());
        Harness {
            store: Box::new(store),
            clock,
            accounts,
            backend: Backend::Sql { db, _dir: dir, pg },
        }
    }

    async fn sqlite() -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("ebok.sqlite").display());
        let db = Db::connect(&url).await.expect("open sqlite");
        Self::sql(db, Some(dir), None).await
    }

    async fn postgres(test: &str) -> Option<Harness> {
        let pg = FreshPg::create(test).await?;
        let db = Db::connect(&pg.url).await.expect("connect postgres");
        Some(Self::sql(db, None, Some(pg)).await)
    }

    async fn redis(test: &str) -> Option<Harness> {
        let url = crate::testkit::redis(test).await?;
        let target = RedisTarget::Single { url: url.clone() };
        Some(Self::redis_on(&target, Some(url)).await)
    }

    /// The Redis store on `target` under a fresh prefix.
    async fn redis_on(target: &RedisTarget, cleanup: Option<String>) -> Harness {
        let prefix = crate::testkit::redis_prefix();
        let clock = TestClock::new();
        let store = RedisWebSessions::connect(target, &prefix, SessionPolicy::default())
            .await
            .expect("connect redis")
            .with_clock(clock.source());
        let link = target.connect(LinkOptions::default()).await.unwrap();
        Harness {
            store: Box::new(store),
            clock,
            accounts: [41, 42],
            backend: Backend::Redis {
                link,
                prefix,
                cleanup,
            },
        }
    }

    /// Every key of the store, of every node.
    async fn redis_keys(link: &RedisLink, prefix: &str, pattern: &str) -> Vec<String> {
        let mut keys: Vec<String> = ::redis::cmd("KEYS")
            .arg(format!("{{{prefix}ws}}:{pattern}"))
            .query_async(&mut link.clone())
            .await
            .unwrap();
        keys.sort();
        keys
    }

    /// Sessions held, expired or not.
    async fn stored(&self) -> usize {
        match &self.backend {
            Backend::Sql { db, .. } => on_pool!(db, pool => {
                let row = sqlx::query("SELECT COUNT(*) AS n FROM web_sessions")
                    .fetch_one(pool)
                    .await
                    .unwrap();
                Cols::new(&row).i64("n").unwrap() as usize
            }),
            Backend::Redis { link, prefix, .. } => {
                Self::redis_keys(link, prefix, "s:*").await.len()
            }
        }
    }

    /// Everything the backend holds about sessions, as text.
    async fn dump(&self) -> String {
        let mut out = String::new();
        match &self.backend {
            Backend::Sql { db, .. } => on_pool!(db, pool => {
                let sql = "SELECT id_hash || ' ' || CAST(account_id AS TEXT) || ' ' || \
                           CAST(created_at AS TEXT) || ' ' || \
                           CAST(last_seen_at AS TEXT) || ' ' || COALESCE(ip, '') AS line \
                           FROM web_sessions";
                for row in sqlx::query(sql).fetch_all(pool).await.unwrap() {
                    out.push_str(&Cols::new(&row).text("line").unwrap());
                    out.push('\n');
                }
            }),
            Backend::Redis { link, prefix, .. } => {
                let mut conn = link.clone();
                for key in Self::redis_keys(link, prefix, "*").await {
                    let kind: String = ::redis::cmd("TYPE")
                        .arg(&key)
                        .query_async(&mut conn)
                        .await
                        .unwrap();
                    let values: Vec<String> = match kind.as_str() {
                        "hash" => ::redis::cmd("HGETALL"),
                        "set" => ::redis::cmd("SMEMBERS"),
                        other => panic!("unexpected {other} at {key}"),
                    }
                    .arg(&key)
                    .query_async(&mut conn)
                    .await
                    .unwrap();
                    let _ = writeln!(out, "{key} {}", values.join(" "));
                }
            }
        }
        out
    }

    async fn finish(self) {
        match self.backend {
            Backend::Sql { db, pg, .. } => {
                if let Db::Postgres(p) = &db {
                    p.close().await;
                }
                if let Some(pg) = pg {
                    pg.drop_db().await;
                }
            }
            Backend::Redis {
                prefix,
                cleanup: Some(url),
                ..
            } => {
                crate::testkit::redis_cleanup(&url, &format!("{{{prefix}")).await;
            }
            Backend::Redis { cleanup: None, .. } => {}
        }
    }
}

/// Generate `sqlite::NAME`, `postgres::NAME` and `::redis::NAME` from `async fn NAME(&Harness)`,
/// and `redis_cluster`, every scenario in turn on a Redis Cluster.
macro_rules! all_backends {
    ($($name:ident),+ $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    let h = super::Harness::sqlite().await;
                    super::$name(&h).await;
                    h.finish().await;
                }
            )+
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $name() {
                    let test = concat!(
                        "web::session_store::tests::postgres::", stringify!($name)
                    );
                    let Some(h) = super::Harness::postgres(test).await else {
                        return;
                    };
                    super::$name(&h).await;
                    h.finish().await;
                }
            )+
        }
        mod redis {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let test = concat!(
                        "web::session_store::tests::redis::", stringify!($name)
                    );
                    let Some(h) = super::Harness::redis(test).await else {
                        return;
                    };
                    super::$name(&h).await;
                    h.finish().await;
                }
            )+
        }
        /// Every scenario on one Redis Cluster (ports 7121–7123), each under a prefix of
        /// its own.
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn redis_cluster() {
            let test = "web::session_store::tests::redis_cluster";
            let Some(cluster) = crate::testkit::RedisCluster::start(test, 7121, 3).await else {
                return;
            };
            let target = RedisTarget::Cluster {
                nodes: cluster.nodes(),
            };
            $(
                let h = Harness::redis_on(&target, None).await;
                $name(&h).await;
                h.finish().await;
            )+
        }
    };
}

all_backends!(
    create_and_get,
    unknown_token,
    idle_expiry,
    absolute_expiry_even_when_active,
    touch_is_throttled,
    promote_rotates_token,
    delete_ends_one,
    delete_all_keeps_one,
    purge_expired_removes_ended,
    token_stored_only_hashed,
    joined_get_matches_get,
    list_and_end_one_of_the_account,
);

/// An account lists its own live sessions, newest activity first, and ends one by its
/// listed id; another account's id ends nothing.
async fn list_and_end_one_of_the_account(h: &Harness) {
    let [a, b] = h.accounts;
    let old = h.store.create(a, false, ip()).await.unwrap();
    h.clock.advance(2 * MIN);
    let new = h.store.create(a, false, None).await.unwrap();
    let other = h.store.create(b, false, None).await.unwrap();
    let stale = h.store.create(a, false, None).await.unwrap();
    let listed = h.store.list(a).await.unwrap();
    assert_eq!(listed.len(), 3, "{listed:?}");
    let ids: Vec<&str> = listed.iter().map(|l| l.id.as_str()).collect();
    let id = |t: &str| session_id(t).unwrap();
    assert_eq!(ids[2], id(&old), "least recently active last");
    assert_eq!(listed[2].session.ip, ip());
    assert!(!ids.contains(&id(&other).as_str()));
    assert!(
        !ids.iter().any(|i| i.contains(old.as_str())),
        "no token listed"
    );
    // Ending another account's session through this account does nothing.
    assert!(!h.store.end(a, &id(&other)).await.unwrap());
    assert!(h.store.get(&other).await.unwrap().is_some());
    assert!(!h.store.end(a, "../../etc").await.unwrap());
    assert!(h.store.end(a, &id(&new)).await.unwrap());
    assert_eq!(h.store.get(&new).await.unwrap(), None);
    assert!(!h.store.end(a, &id(&new)).await.unwrap(), "already ended");
    assert_eq!(h.store.list(a).await.unwrap().len(), 2);
    // An expired session is not listed.
    h.clock.advance(31 * MIN);
    assert!(h.store.get(&stale).await.unwrap().is_none());
    assert!(h.store.list(a).await.unwrap().is_empty());
    h.store.delete_all(b, None).await.unwrap();
}

/// The SQL store's session + account query answers as `get` then the account would.
async fn joined_get_matches_get(h: &Harness) {
    let Some(sql) = h.store.as_sql() else {
        return; // Redis: the extractor reads the account separately
    };
    let [a, b] = h.accounts;
    let ta = h.store.create(a, false, ip()).await.unwrap();
    let tb = h.store.create(b, true, None).await.unwrap();
    for (token, id) in [(&ta, a), (&tb, b)] {
        for overview in [false, true] {
            let (s, view) = sql
                .get_with_account(token, None, overview)
                .await
                .unwrap()
                .unwrap();
            assert_eq!(Some(s), h.store.get(token).await.unwrap());
            let view = view.unwrap();
            assert_eq!((view.account.id, view.account.disabled), (id, false));
            assert_eq!(view.line_contract, None);
            assert_eq!(
                view.overview.map(|o| o.subscriber.id),
                overview.then_some(view.account.subscriber_id)
            );
        }
    }
    assert!(sql
        .get_with_account("x", None, false)
        .await
        .unwrap()
        .is_none());
    h.store.delete(&ta).await.unwrap();
    assert!(sql
        .get_with_account(&ta, None, true)
        .await
        .unwrap()
        .is_none());
    h.clock.advance(31 * MIN);
    assert!(sql
        .get_with_account(&tb, None, false)
        .await
        .unwrap()
        .is_none());
    assert_eq!(h.stored().await, 0, "the expired session was deleted");
}

fn ip() -> Option<IpAddr> {
    Some("2001:db8::7".parse().unwrap())
}

async fn create_and_get(h: &Harness) {
    let [a, b] = h.accounts;
    let t0 = h.clock.now();
    let token = h.store.create(a, false, ip()).await.unwrap();
    assert_eq!(token.len(), 43);
    assert!(token
        .bytes()
        .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'));
    let expected = WebSession {
        account_id: a,
        created_at: t0,
        last_seen_at: t0,
        second_factor_pending: false,
        ip: ip(),
    };
    assert_eq!(h.store.get(&token).await.unwrap(), Some(expected.clone()));

    let other = h.store.create(b, true, None).await.unwrap();
    assert_ne!(other, token);
    let s = h.store.get(&other).await.unwrap().unwrap();
    assert_eq!(
        (s.account_id, s.second_factor_pending, s.ip),
        (b, true, None)
    );
    assert_eq!(h.store.get(&token).await.unwrap(), Some(expected));
    assert_eq!(h.stored().await, 2);
}

async fn unknown_token(h: &Harness) {
    let [a, _] = h.accounts;
    let token = h.store.create(a, false, None).await.unwrap();
    let (unknown, _) = new_token();
    let mut bad_char = token.clone();
    bad_char.replace_range(0..1, "+");
    for t in ["", "x", unknown.as_str(), bad_char.as_str(), &token[..42]] {
        assert_eq!(h.store.get(t).await.unwrap(), None, "{t:?}");
        assert_eq!(h.store.promote(t).await.unwrap(), None, "{t:?}");
        h.store.delete(t).await.unwrap();
    }
    assert!(h.store.get(&token).await.unwrap().is_some());
    assert_eq!(h.store.delete_all(h.accounts[1], None).await.unwrap(), 0);
}

async fn idle_expiry(h: &Harness) {
    let [a, _] = h.accounts;
    let token = h.store.create(a, false, None).await.unwrap();
    h.clock.advance(30 * MIN - 1);
    assert!(h.store.get(&token).await.unwrap().is_some(), "idle 29:59");
    h.clock.advance(30 * MIN - 1);
    assert!(
        h.store.get(&token).await.unwrap().is_some(),
        "the last use counts"
    );
    h.clock.advance(30 * MIN);
    assert_eq!(h.store.get(&token).await.unwrap(), None, "idle 30:00");
    assert_eq!(
        h.stored().await,
        0,
        "an expired session is deleted on sight"
    );
    assert_eq!(h.store.get(&token).await.unwrap(), None);
}

async fn absolute_expiry_even_when_active(h: &Harness) {
    let [a, _] = h.accounts;
    let token = h.store.create(a, false, None).await.unwrap();
    let mut elapsed = 0;
    while elapsed + 20 * MIN < 12 * HOUR {
        h.clock.advance(20 * MIN);
        elapsed += 20 * MIN;
        assert!(h.store.get(&token).await.unwrap().is_some(), "at {elapsed}");
    }
    h.clock.advance(12 * HOUR - elapsed - 1);
    assert!(h.store.get(&token).await.unwrap().is_some(), "11:59:59");
    h.clock.advance(1);
    assert_eq!(h.store.get(&token).await.unwrap(), None, "12:00:00");
    assert_eq!(h.stored().await, 0);
}

async fn touch_is_throttled(h: &Harness) {
    let [a, _] = h.accounts;
    let t0 = h.clock.now();
    let token = h.store.create(a, false, None).await.unwrap();
    let seen = |s: Option<WebSession>| s.unwrap().last_seen_at;
    h.clock.advance(30);
    assert_eq!(seen(h.store.get(&token).await.unwrap()), t0);
    h.clock.advance(29);
    assert_eq!(
        seen(h.store.get(&token).await.unwrap()),
        t0,
        "59 s: not written"
    );
    h.clock.advance(1);
    let t60 = h.clock.now();
    assert_eq!(
        seen(h.store.get(&token).await.unwrap()),
        t60,
        "60 s: written"
    );
    h.clock.advance(59);
    assert_eq!(seen(h.store.get(&token).await.unwrap()), t60);

    // A read that did not write does not extend the idle limit.
    let quiet = h.store.create(a, false, None).await.unwrap();
    h.clock.advance(59);
    assert!(h.store.get(&quiet).await.unwrap().is_some());
    h.clock.advance(30 * MIN - 59);
    assert_eq!(h.store.get(&quiet).await.unwrap(), None);
}

async fn promote_rotates_token(h: &Harness) {
    let [a, _] = h.accounts;
    let t0 = h.clock.now();
    let old = h.store.create(a, true, ip()).await.unwrap();
    assert!(
        h.store
            .get(&old)
            .await
            .unwrap()
            .unwrap()
            .second_factor_pending
    );
    h.clock.advance(10);
    let new = h.store.promote(&old).await.unwrap().expect("promoted");
    assert_ne!(new, old);
    assert_eq!(h.store.get(&old).await.unwrap(), None, "old token dead");
    assert_eq!(
        h.store.promote(&old).await.unwrap(),
        None,
        "old token single-use"
    );
    assert_eq!(
        h.store.get(&new).await.unwrap(),
        Some(WebSession {
            account_id: a,
            created_at: t0,
            last_seen_at: t0 + time::Duration::seconds(10),
            second_factor_pending: false,
            ip: ip(),
        })
    );
    assert_eq!(h.stored().await, 1);
    // delete_all finds the promoted session under its account.
    assert_eq!(h.store.delete_all(a, None).await.unwrap(), 1);

    // Expired sessions are not promoted.
    let stale = h.store.create(a, true, None).await.unwrap();
    h.clock.advance(30 * MIN);
    assert_eq!(h.store.promote(&stale).await.unwrap(), None);
    assert_eq!(h.stored().await, 0);

    // Two concurrent promotions of one token: one wins.
    let once = h.store.create(a, true, None).await.unwrap();
    let (p1, p2) = tokio::join!(h.store.promote(&once), h.store.promote(&once));
    let winners = [p1.unwrap(), p2.unwrap()];
    assert_eq!(winners.iter().flatten().count(), 1, "{winners:?}");
    assert_eq!(h.stored().await, 1);
}

async fn delete_ends_one(h: &Harness) {
    let [a, _] = h.accounts;
    let one = h.store.create(a, false, None).await.unwrap();
    let two = h.store.create(a, false, None).await.unwrap();
    h.store.delete(&one).await.unwrap();
    assert_eq!(h.store.get(&one).await.unwrap(), None);
    assert!(h.store.get(&two).await.unwrap().is_some());
    h.store.delete(&one).await.unwrap();
    assert_eq!(h.stored().await, 1);
}

async fn delete_all_keeps_one(h: &Harness) {
    let [a, b] = h.accounts;
    let s1 = h.store.create(a, false, None).await.unwrap();
    let s2 = h.store.create(a, false, None).await.unwrap();
    let s3 = h.store.create(a, true, None).await.unwrap();
    let other = h.store.create(b, false, None).await.unwrap();
    assert_eq!(h.store.delete_all(a, Some(&s1)).await.unwrap(), 2);
    assert!(h.store.get(&s1).await.unwrap().is_some(), "kept");
    assert_eq!(h.store.get(&s2).await.unwrap(), None);
    assert_eq!(h.store.get(&s3).await.unwrap(), None);
    assert!(
        h.store.get(&other).await.unwrap().is_some(),
        "other account"
    );
    // Keeping another account's token protects nothing of this one.
    assert_eq!(h.store.delete_all(a, Some(&other)).await.unwrap(), 1);
    assert_eq!(h.store.get(&s1).await.unwrap(), None);
    assert_eq!(h.store.delete_all(b, None).await.unwrap(), 1);
    assert_eq!(h.store.delete_all(b, None).await.unwrap(), 0);
    assert_eq!(h.stored().await, 0);
}

async fn purge_expired_removes_ended(h: &Harness) {
    let [a, b] = h.accounts;
    let idle = h.store.create(a, false, None).await.unwrap();
    let busy = h.store.create(b, false, None).await.unwrap();
    h.clock.advance(20 * MIN);
    let fresh = h.store.create(a, false, None).await.unwrap();
    assert!(h.store.get(&busy).await.unwrap().is_some());
    h.clock.advance(10 * MIN);
    assert_eq!(h.store.purge_expired().await.unwrap(), 1, "idle for 30 min");
    assert_eq!(h.stored().await, 2);
    assert_eq!(h.store.purge_expired().await.unwrap(), 0);
    assert!(h.store.get(&fresh).await.unwrap().is_some());
    assert_eq!(h.store.get(&idle).await.unwrap(), None);

    // Active until the absolute limit passes: purged then, too.
    let mut elapsed = 30 * MIN;
    while elapsed < 12 * HOUR {
        h.clock.advance(10 * MIN);
        elapsed += 10 * MIN;
        if elapsed < 12 * HOUR {
            assert!(h.store.get(&busy).await.unwrap().is_some());
        }
    }
    // `fresh` went idle long ago, `busy` reached 12 h.
    assert_eq!(h.store.purge_expired().await.unwrap(), 2);
    assert_eq!(h.stored().await, 0);
}

async fn token_stored_only_hashed(h: &Harness) {
    let [a, _] = h.accounts;
    let first = h.store.create(a, true, ip()).await.unwrap();
    let promoted = h.store.promote(&first).await.unwrap().unwrap();
    let plain = h.store.create(a, false, None).await.unwrap();
    let dump = h.dump().await;
    for token in [&promoted, &plain] {
        assert!(!dump.contains(token.as_str()), "raw token stored:\n{dump}");
        assert!(dump.contains(&stored_hash(token)), "hash missing:\n{dump}");
    }
    assert!(
        !dump.contains(&stored_hash(&first)),
        "old session left:\n{dump}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_keys_expire_by_themselves() {
    let Some(h) = Harness::redis("web::session_store::tests::redis_keys_expire").await else {
        return;
    };
    let Backend::Redis { link, prefix, .. } = &h.backend else {
        unreachable!()
    };
    let token = h.store.create(7, false, None).await.unwrap();
    let mut conn = link.clone();
    let ttl = |key: String| {
        let mut conn = conn.clone();
        async move {
            ::redis::cmd("TTL")
                .arg(key)
                .query_async::<i64>(&mut conn)
                .await
                .unwrap()
        }
    };
    let session = format!("{{{prefix}ws}}:s:{}", stored_hash(&token));
    let set = format!("{{{prefix}ws}}:a:7");
    assert!((1795..=1800).contains(&ttl(session.clone()).await));
    assert!((12 * HOUR - 5..=12 * HOUR).contains(&ttl(set.clone()).await));
    // Touched 11 h 50 min later: the TTL is what is left of the absolute limit.
    for _ in 0..71 {
        h.clock.advance(10 * MIN);
        assert!(h.store.get(&token).await.unwrap().is_some());
    }
    assert!((595..=600).contains(&ttl(session.clone()).await));
    // An expired member's key vanished by TTL: purge drops it from the account set.
    let _: i64 = ::redis::cmd("DEL")
        .arg(&session)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(h.store.purge_expired().await.unwrap(), 0);
    let members: Vec<String> = ::redis::cmd("SMEMBERS")
        .arg(&set)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(members.is_empty());
    h.finish().await;
}

#[test]
fn base64url_vectors() {
    // RFC 4648 §10, without padding.
    for (plain, encoded) in [
        ("", ""),
        ("f", "Zg"),
        ("fo", "Zm8"),
        ("foo", "Zm9v"),
        ("foob", "Zm9vYg"),
        ("fooba", "Zm9vYmE"),
        ("foobar", "Zm9vYmFy"),
    ] {
        assert_eq!(base64url(plain.as_bytes()), encoded);
    }
    assert_eq!(base64url(&[0xfb, 0xff]), "-_8");
    let (token, hash) = new_token();
    assert_eq!(token.len(), TOKEN_LEN);
    assert_eq!(token_hash(&token), Some(hash));
}
