//! The link against real deployments: the local server, a three-node Cluster (ports
//! 7101–7103) and a Sentinel set (ports 7111–7115) started for the test.

use std::time::Duration;

use ebok_testkit::{RedisCluster, RedisSentinel};
use redis::Script;
use tokio::time::Instant;

use super::*;

/// `INCRBY key n`, run as a script: the new value.
async fn add(link: &mut RedisLink, key: &str, n: i64) -> i64 {
    Script::new("return redis.call('INCRBY', KEYS[1], ARGV[1])")
        .key(key)
        .arg(n)
        .invoke_async(link)
        .await
        .unwrap()
}

async fn set(link: &mut RedisLink, key: &str, value: &str) -> Result<(), RedisError> {
    redis::cmd("SET")
        .arg(key)
        .arg(value)
        .query_async::<()>(link)
        .await
}

async fn get(link: &mut RedisLink, key: &str) -> Option<String> {
    redis::cmd("GET").arg(key).query_async(link).await.unwrap()
}

/// A pipeline and a transaction on keys of one hash tag, and a script whose cached copy
/// was flushed everywhere (EVALSHA answered NOSCRIPT, then loaded).
async fn pipeline_and_script(link: &mut RedisLink, tag: &str) {
    let (a, b) = (format!("{{{tag}}}:a"), format!("{{{tag}}}:b"));
    let (ok, n, got): ((), i64, String) = redis::pipe()
        .cmd("SET")
        .arg(&a)
        .arg("x")
        .cmd("INCR")
        .arg(&b)
        .cmd("GET")
        .arg(&a)
        .query_async(link)
        .await
        .unwrap();
    assert_eq!((ok, n, got.as_str()), ((), 1, "x"));
    let (n,): (i64,) = redis::pipe()
        .atomic()
        .cmd("INCRBY")
        .arg(&b)
        .arg(5)
        .query_async(link)
        .await
        .unwrap();
    assert_eq!(n, 6);

    let key = format!("{{{tag}}}:script");
    assert_eq!(add(link, &key, 2).await, 2);
    redis::cmd("SCRIPT")
        .arg("FLUSH")
        .query_async::<()>(link)
        .await
        .unwrap();
    assert_eq!(add(link, &key, 3).await, 5);
}

/// Two links of one target are two connections: one held by a blocking command does not
/// hold up the other.
async fn links_are_independent(target: &RedisTarget, list: &str) {
    let options = LinkOptions {
        response_timeout: Some(Duration::from_secs(10)),
        ..LinkOptions::default()
    };
    let mut blocked = target.connect(options).await.unwrap();
    let mut other = target.connect(LinkOptions::default()).await.unwrap();
    let key = list.to_owned();
    let waiting = tokio::spawn(async move {
        redis::cmd("BLPOP")
            .arg(&key)
            .arg(5)
            .query_async::<Option<(String, String)>>(&mut blocked)
            .await
            .unwrap()
    });
    // Let BLPOP reach the server first (it answers only when the list gets a value).
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = Instant::now();
    set(&mut other, &format!("{list}:x"), "1").await.unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "the other link waited"
    );
    redis::cmd("RPUSH")
        .arg(list)
        .arg("v")
        .query_async::<i64>(&mut other)
        .await
        .unwrap();
    assert_eq!(
        waiting.await.unwrap(),
        Some((list.to_owned(), "v".to_owned()))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_server() {
    let test = "redis_link::tests::single_server";
    let Some(url) = ebok_testkit::redis(test).await else {
        return;
    };
    let prefix = ebok_testkit::redis_prefix();
    let target = RedisTarget::Single { url: url.clone() };
    let mut link = target.connect(LinkOptions::default()).await.unwrap();
    assert!(!link.is_cluster());
    set(&mut link, &format!("{prefix}k"), "v").await.unwrap();
    assert_eq!(
        get(&mut link, &format!("{prefix}k")).await.as_deref(),
        Some("v")
    );
    pipeline_and_script(&mut link, &format!("{prefix}t")).await;
    links_are_independent(&target, &format!("{prefix}list")).await;
    ebok_testkit::redis_cleanup(&url, &prefix).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_routes_by_slot() {
    let test = "redis_link::tests::cluster_routes_by_slot";
    let Some(cluster) = RedisCluster::start(test, 7101, 3).await else {
        return;
    };
    let target = RedisTarget::Cluster {
        nodes: cluster.nodes(),
    };
    let mut link = target.connect(LinkOptions::default()).await.unwrap();
    assert!(link.is_cluster());
    for i in 0..300 {
        set(&mut link, &format!("key:{i}"), &i.to_string())
            .await
            .unwrap();
    }
    for i in 0..300 {
        assert_eq!(
            get(&mut link, &format!("key:{i}")).await,
            Some(i.to_string())
        );
    }
    // The keys are spread over every node, each holding only its own slots.
    let mut total = 0;
    for node in cluster.nodes() {
        let mut conn = redis::Client::open(node.as_str())
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap();
        let n: usize = redis::cmd("DBSIZE").query_async(&mut conn).await.unwrap();
        assert!(n > 0, "{node} holds no key");
        total += n;
    }
    assert_eq!(total, 300);
    pipeline_and_script(&mut link, "ebok:s07").await;
    // A script on keys of every node, through one link.
    for i in 0..30 {
        assert_eq!(add(&mut link, &format!("counter:{i}"), i).await, i);
    }
    links_are_independent(&target, "list").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sentinel_follows_the_primary() {
    let test = "redis_link::tests::sentinel_follows_the_primary";
    let Some(mut set_) = RedisSentinel::start(test, 7111).await else {
        return;
    };
    let target = RedisTarget::Sentinel {
        service: set_.service().to_owned(),
        nodes: set_.sentinel_urls(),
    };
    let mut link = target.connect(LinkOptions::default()).await.unwrap();
    assert!(!link.is_cluster());
    set(&mut link, "before", "1").await.unwrap();
    pipeline_and_script(&mut link, "t").await;
    links_are_independent(&target, "list").await;

    // A link left on the replica (as on an old primary that came back as one) gets
    // READONLY, asks the sentinels again and writes to the primary.
    let primary = set_.primary_port().await;
    let replica = if primary == 7111 { 7112 } else { 7111 };
    let mut on_replica = redis::Client::open(format!("redis://127.0.0.1:{replica}/"))
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let refused = redis::cmd("SET")
        .arg("x")
        .arg("1")
        .query_async::<()>(&mut on_replica)
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Some("READONLY"), "{refused}");
    let Inner::Sentinel(s) = &link.inner else {
        unreachable!()
    };
    s.pin_to(&format!("redis://127.0.0.1:{replica}/")).await;
    set(&mut link, "after-readonly", "1").await.unwrap();
    let replicated: i64 = redis::cmd("WAIT")
        .arg(1)
        .arg(2000)
        .query_async(&mut link)
        .await
        .unwrap();
    assert_eq!(
        replicated, 1,
        "the write went to the primary, with its replica"
    );

    // Failover: the primary is killed, the replica promoted; the same link writes again.
    let killed = set_.kill_primary().await;
    let promoted = set_.wait_for_promotion(Duration::from_secs(20)).await;
    assert_ne!(killed, promoted);
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut last = None;
    loop {
        match set(&mut link, "after-failover", "1").await {
            Ok(()) => break,
            Err(e) if Instant::now() < deadline => {
                last = Some(e);
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("no write 5 s after the promotion: {e} (before: {last:?})"),
        }
    }
    assert_eq!(get(&mut link, "before").await.as_deref(), Some("1"));
    assert_eq!(get(&mut link, "after-readonly").await.as_deref(), Some("1"));
    // The new primary had not loaded the script: NOSCRIPT, loaded, run.
    assert_eq!(add(&mut link, "{t}:script", 1).await, 6);
}

/// Nothing listening: every kind of target fails within the connect timeout.
#[tokio::test]
async fn connect_fails_within_its_timeout() {
    // Ports nobody listens on (a test range of its own, never started).
    let dead = vec!["redis://127.0.0.1:7199/".to_owned()];
    let options = LinkOptions {
        connect_timeout: Duration::from_millis(500),
        ..LinkOptions::default()
    };
    for target in [
        RedisTarget::Single {
            url: dead[0].clone(),
        },
        RedisTarget::Cluster {
            nodes: dead.clone(),
        },
        RedisTarget::Sentinel {
            service: "ebok".into(),
            nodes: dead.clone(),
        },
    ] {
        let started = Instant::now();
        let e = target.connect(options).await.unwrap_err();
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{}: {e} after {:?}",
            target.describe(),
            started.elapsed()
        );
    }
}

#[test]
fn describe_hides_passwords() {
    let target = RedisTarget::Sentinel {
        service: "ebok".into(),
        nodes: vec![
            "redis://:s3cret@10.0.0.1:26379".into(),
            "redis://user:s3cret@10.0.0.2:26379/".into(),
        ],
    };
    let text = target.describe();
    assert!(!text.contains("s3cret"), "{text}");
    assert_eq!(
        text,
        "Redis Sentinel service \"ebok\" [redis://:***@10.0.0.1:26379, \
         redis://user:***@10.0.0.2:26379/]"
    );
    let cluster = RedisTarget::Cluster {
        nodes: vec!["redis://a:1".into(), "redis://b:2".into()],
    };
    assert_eq!(
        cluster.describe(),
        "Redis Cluster [redis://a:1, redis://b:2]"
    );
    let single = RedisTarget::Single {
        url: "redis://u:pw@h/2".into(),
    };
    assert_eq!(single.describe(), "Redis redis://u:***@h/2");
}
