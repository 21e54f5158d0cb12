//! What operators see of a running ebok: the NAS overview and live-session list of the ops
//! API after real accounting from radclient, and the Prometheus endpoint read by the
//! official Python client's text parser (`prometheus_client`, from PyPI).

use std::collections::BTreeMap;
use std::process::Stdio;

use ebok::config::OpsToken;
use serde_json::Value;
use time::OffsetDateTime;
use tokio::io::AsyncWriteExt;

use crate::harness::*;

const TOKEN: &str = "ebok_test-token-of-the-noc";

/// One metric family as the parser read it.
#[derive(Debug)]
struct Family {
    kind: String,
    help: String,
    samples: Vec<(String, BTreeMap<String, String>, f64)>,
}

/// Families by name, or `None` when Python's `prometheus_client` is not installed.
async fn parse_exposition(text: &str) -> Option<BTreeMap<String, Family>> {
    const SCRIPT: &str = "import json, sys\n\
        from prometheus_client.parser import text_string_to_metric_families\n\
        out = {}\n\
        for f in text_string_to_metric_families(sys.stdin.read()):\n\
        \x20   out[f.name] = {'type': f.type, 'help': f.documentation,\n\
        \x20       'samples': [[s.name, s.labels, s.value] for s in f.samples]}\n\
        print(json.dumps(out))\n";
    let check = tokio::process::Command::new("python3")
        .args(["-c", "import prometheus_client"])
        .output()
        .await;
    if !check.is_ok_and(|o| o.status.success()) {
        return None;
    }
    let mut child = tokio::process::Command::new("python3")
        .args(["-c", SCRIPT])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(text.as_bytes()).await.unwrap();
    drop(stdin);
    let out = child.wait_with_output().await.unwrap();
    assert!(
        out.status.success(),
        "the exposition does not parse: {}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    Some(
        json.as_object()
            .unwrap()
            .iter()
            .map(|(name, f)| {
                let samples = f["samples"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|s| {
                        let labels = s[1]
                            .as_object()
                            .unwrap()
                            .iter()
                            .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
                            .collect();
                        (
                            s[0].as_str().unwrap().to_owned(),
                            labels,
                            s[2].as_f64().unwrap(),
                        )
                    })
                    .collect();
                (
                    name.clone(),
                    Family {
                        kind: f["type"].as_str().unwrap().to_owned(),
                        help: f["help"].as_str().unwrap().to_owned(),
                        samples,
                    },
                )
            })
            .collect(),
    )
}

/// The value of the sample `name` whose labels include all of `labels`.
fn sample(
    families: &BTreeMap<String, Family>,
    family: &str,
    name: &str,
    labels: &[(&str, &str)],
) -> Option<f64> {
    families.get(family)?.samples.iter().find_map(|(n, l, v)| {
        (n == name
            && labels
                .iter()
                .all(|(k, want)| l.get(*k).map(String::as_str) == Some(*want)))
        .then_some(*v)
    })
}

#[tokio::test]
async fn operators_see_nas_activity_sessions_and_parseable_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path(), &Backend::Embedded, None);
    config.ops.tokens = vec![OpsToken {
        name: "noc".into(),
        sha256: ebok::store::auth::token_hash(TOKEN),
    }];
    let ebok = Ebok::start(config).await;
    let now = OffsetDateTime::now_utc().unix_timestamp();
    acct(
        &ebok,
        &attrs("Start", "op-1", "jan.kowalski", Some("10.0.0.7"), now, ""),
    )
    .await;
    acct(
        &ebok,
        &attrs("Start", "op-2", "anna.nowak", Some("10.0.0.8"), now, ""),
    )
    .await;
    let web = ebok.running.web_addr;
    let auth = format!("Authorization: Bearer {TOKEN}\r\n");

    let (status, body) = http_get_with(web, "/api/v1/nas", &auth).await;
    assert_eq!(status, 200, "{body}");
    let nas: Value = serde_json::from_str(&body).unwrap();
    let entry = &nas["nas"][0];
    assert_eq!(entry["name"], "localhost");
    assert_eq!(entry["sessions"], 2);
    assert_eq!(entry["stale"], 0);
    assert_eq!(entry["received"]["events"], 2);
    let seen = OffsetDateTime::parse(
        entry["received"]["last_seen"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    assert!((OffsetDateTime::now_utc() - seen).whole_seconds() < 60);
    assert_eq!(
        entry["newest_update"].as_str().map(|t| t.len() > 10),
        Some(true)
    );

    let (status, body) = http_get_with(web, "/api/v1/sessions?login=anna.nowak", &auth).await;
    assert_eq!(status, 200, "{body}");
    let list: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(list["total"], 1);
    assert_eq!(list["items"][0]["session_id"], "op-2");
    assert_eq!(list["items"][0]["framed_ip"], "10.0.0.8");
    let (status, _) = http_get_with(web, "/api/v1/nas", "").await;
    assert_eq!(status, 401);

    // Panel traffic for the HTTP metrics: a page, one with a path parameter, a 404.
    assert_eq!(http_get_with(web, "/", "").await.0, 200);
    assert_eq!(http_get_with(web, "/jezyk/en", "").await.0, 303);
    assert_eq!(http_get_with(web, "/no/such/page", "").await.0, 404);

    let text = ebok.metrics().await;
    let Some(families) = parse_exposition(&text).await else {
        ebok_testkit::skip(
            "operators_see_nas_activity_sessions_and_parseable_metrics",
            "python3 prometheus_client",
            "not installed (pip install prometheus_client)",
        );
        ebok.stop().await;
        return;
    };
    // Every family of ours is described and typed.
    for (name, f) in families.iter().filter(|(n, _)| n.starts_with("ebok_")) {
        assert!(!f.help.is_empty(), "{name} has no HELP");
        assert!(
            ["counter", "gauge", "histogram", "summary"].contains(&f.kind.as_str()),
            "{name}: {}",
            f.kind
        );
    }
    assert_eq!(families["ebok_radius_packets"].kind, "counter");
    // The recorder is global to the test binary: other tests count too.
    let starts = sample(
        &families,
        "ebok_radius_packets",
        "ebok_radius_packets_total",
        &[("type", "start")],
    );
    assert!(starts.is_some_and(|n| n >= 2.0), "{starts:?}");
    assert_eq!(families["ebok_live_sessions"].kind, "gauge");
    let last_seen = sample(
        &families,
        "ebok_nas_last_seen_timestamp_seconds",
        "ebok_nas_last_seen_timestamp_seconds",
        &[("nas", "localhost")],
    )
    .expect("per-NAS last seen");
    assert!((now as f64 - last_seen).abs() < 60.0);
    // HTTP by matched route pattern, 404s as one `unmatched` route.
    let http = |route: &str, status: &str| {
        sample(
            &families,
            "ebok_http_requests",
            "ebok_http_requests_total",
            &[("route", route), ("method", "GET"), ("status", status)],
        )
    };
    assert!(http("/", "2xx").is_some_and(|n| n >= 1.0));
    assert!(http("/jezyk/{code}", "3xx").is_some_and(|n| n >= 1.0));
    assert!(http("unmatched", "4xx").is_some_and(|n| n >= 1.0));
    assert!(http("/api/v1/nas", "2xx").is_some_and(|n| n >= 1.0));
    assert!(
        !text.contains("no/such/page"),
        "raw paths never become labels"
    );
    let latency = &families["ebok_store_latency_seconds"];
    assert_eq!(latency.kind, "histogram");
    assert!(latency
        .samples
        .iter()
        .any(|(n, l, _)| n == "ebok_store_latency_seconds_bucket"
            && l.get("le").is_some_and(|le| le == "+Inf")));
    assert_eq!(
        families["ebok_http_request_duration_seconds"].kind,
        "histogram"
    );
    ebok.stop().await;
}
