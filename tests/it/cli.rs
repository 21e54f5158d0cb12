//! The operator's console: what a NAS sent reaches the terminal escaped, times are in
//! Europe/Warsaw (`--utc` on request), counts read as English.

use std::time::Duration;

use ebok::radius::packet;

use crate::harness::*;

const T0: i64 = 1_764_000_000; // 2025-11-24 16:00 UTC, 17:00 in Warsaw

/// A User-Name that would clear the screen, set the window title and forge an output line.
const HOSTILE: &str = "jan\x1b[2J\x1b]0;pwned\x07\r\nsubscriber   forged";

fn cli(dir: &std::path::Path, args: &[&str]) -> (bool, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ebok"))
        .args(["--config", dir.join("ebok.toml").to_str().unwrap()])
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8(out.stdout).unwrap() + &String::from_utf8(out.stderr).unwrap(),
    )
}

#[tokio::test]
async fn the_console_escapes_what_a_nas_sent_and_speaks_warsaw_time() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), &Backend::Embedded, None);
    std::fs::write(
        dir.path().join("ebok.toml"),
        format!(
            "[state]\ndir = \"{d}\"\n[database]\nurl = \"{db}\"\n[sessions]\nloopback_lines = true\n",
            d = dir.path().display(),
            db = config.database.url
        ),
    )
    .unwrap();
    let ebok = Ebok::start(config).await;
    let start = packet::build_accounting_request(
        7,
        SECRET.as_bytes(),
        &[
            (40, 1u32.to_be_bytes().to_vec()),
            (44, b"s\x1b[31m1".to_vec()),
            (1, HOSTILE.as_bytes().to_vec()),
            (4, vec![192, 0, 2, 1]),
            (8, vec![10, 4, 0, 1]),
            (31, b"02:00:00:00:00:01\x1b[0m".to_vec()),
            (55, (T0 as u32).to_be_bytes().to_vec()),
            (42, 2_500_000_000u32.to_be_bytes().to_vec()),
        ],
        false,
    );
    let raw = RawClient::new(ebok.radius).await;
    assert!(raw.exchange(&start, Duration::from_secs(2)).await.is_some());
    ebok.settle().await;
    ebok.stop().await;

    for args in [
        &["sessions", "lookup", "10.4.0.1"][..],
        &["sessions", "list"][..],
        &["attribution", "10.4.0.1", "2025-11-24 17:30"][..],
    ] {
        let (ok, out) = cli(dir.path(), args);
        assert!(ok, "{args:?}: {out}");
        assert!(
            !out.contains('\x1b') && !out.contains('\r') && !out.contains('\x07'),
            "{args:?}: {out:?}"
        );
        assert!(
            out.contains("jan\\x1b[2J\\x1b]0;pwned\\x07\\r\\nsubscriber"),
            "{args:?}: {out}"
        );
        assert!(out.contains("2025-11-24 17:00:00 CET"), "{args:?}: {out}");
        assert!(!out.contains("+00:00:00"), "{args:?}: {out}");
    }
    let (_, lookup) = cli(dir.path(), &["sessions", "lookup", "10.4.0.1"]);
    assert!(lookup.contains("in 2.5 GB"), "{lookup}");
    assert!(
        !lookup.lines().any(|l| l.starts_with("subscriber   forged")),
        "no forged line: {lookup}"
    );
    let (_, list) = cli(dir.path(), &["sessions", "list"]);
    assert!(list.starts_with("NAS\tSESSION\tLOGIN"), "{list}");
    assert!(list.trim_end().ends_with("1 live session"), "{list}");
    let (_, utc) = cli(dir.path(), &["--utc", "sessions", "lookup", "10.4.0.1"]);
    assert!(utc.contains("2025-11-24 16:00:00 UTC"), "{utc}");
}

/// `ebok sessions lookup|list` beside the running daemon, with either store: the embedded
/// file, or a copy of the daemon's snapshot and the log in Redis (the daemon's files are
/// left as they were).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_commands_work_while_the_daemon_runs() {
    for backend in Backend::all("cli::sessions_commands_work_while_the_daemon_runs").await {
        let dir = tempfile::tempdir().unwrap();
        let config = config(dir.path(), &backend, None);
        let store = match &backend {
            Backend::Embedded => String::new(),
            Backend::Redis { url, prefix } => {
                format!("store = \"redis\"\nredis_url = \"{url}\"\nredis_prefix = \"{prefix}\"\n")
            }
        };
        std::fs::write(
            dir.path().join("ebok.toml"),
            format!(
                "[state]\ndir = \"{d}\"\n[database]\nurl = \"{db}\"\n[sessions]\n{store}",
                d = dir.path().display(),
                db = config.database.url
            ),
        )
        .unwrap();
        let ebok = Ebok::start(config).await;
        acct(
            &ebok,
            &attrs("Start", "cli-1", "anna", Some("10.4.1.1"), T0, ""),
        )
        .await;
        let d = dir.path().to_owned();
        let (lookup, list) = tokio::task::spawn_blocking(move || {
            (
                cli(&d, &["sessions", "lookup", "10.4.1.1"]),
                cli(&d, &["sessions", "list"]),
            )
        })
        .await
        .unwrap();
        assert!(
            lookup.0 && lookup.1.contains("anna"),
            "{backend:?}: {}",
            lookup.1
        );
        assert!(
            list.0 && list.1.trim_end().ends_with("1 live session"),
            "{backend:?}: {}",
            list.1
        );
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains("copy"))
            .collect();
        assert!(left.is_empty(), "{backend:?}: copies left behind: {left:?}");
        // The daemon goes on: a later event still reaches its map.
        acct(
            &ebok,
            &attrs("Stop", "cli-1", "anna", Some("10.4.1.1"), T0 + 60, ""),
        )
        .await;
        assert!(ebok.lookup("10.4.1.1").await.is_none());
        ebok.stop().await;
        backend.cleanup().await;
    }
}
