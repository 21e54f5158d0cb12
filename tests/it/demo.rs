//! `ebok run --demo`: the demo data set plus a live session for 127.0.0.1 sent through the
//! real accounting path, so localhost is recognised as Jan Kowalski's line.

use crate::harness::*;

#[tokio::test]
async fn demo_makes_loopback_jan_kowalskis_line() {
    let dir = tempfile::tempdir().unwrap();
    let ebok = Ebok::start(config(dir.path(), &Backend::Embedded, None)).await;
    let (_tx, rx) = tokio::sync::watch::channel(false);
    ebok::server::start_demo(&ebok.running, rx).await.unwrap();
    let found = ebok::identify::identify(
        ebok.running.ingest.live.as_ref(),
        &ebok.running.db,
        "127.0.0.1".parse().unwrap(),
    )
    .await
    .unwrap()
    .expect("127.0.0.1 is a live line");
    assert_eq!(found.session.user_name.as_deref(), Some("jan.kowalski"));
    let (subscriber, contract) = found.holder.expect("joined to the subscriber");
    assert_eq!(subscriber.display_name(), "Jan Kowalski");
    assert_eq!(subscriber.home.city, "Kraków");
    assert_eq!(contract.monthly_fee.to_string(), "50,00\u{a0}zł");
    // IPv6 loopback too.
    assert!(ebok.lookup("::1").await.is_some());
    // It came through the listener: counted as a Start.
    assert!(
        ebok.metric("ebok_radius_packets_total{type=\"start\"}")
            .await
            >= 1.0
    );
    ebok.stop().await;
}
