//! `ebok run --demo`: the demo data set plus a live session for 127.0.0.1 sent through the
//! real accounting path, so localhost is recognised as Jan Kowalski's line.

use std::time::Duration;

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

/// The demo's outbox gets a payment reminder: the demo gives its first debtor a confirmed
/// panel account, and its `[reminders]` days put that subscriber's unpaid invoice in today's
/// window; the sender's first pass (a minute after start) mails it with the transfer QR.
#[tokio::test]
async fn demo_outbox_gets_a_payment_reminder() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path(), &Backend::Embedded, None);
    c.isp = ebok::demo::isp();
    c.reminders = Some(ebok::demo::reminders_config(ebok::demo::warsaw_today()));
    let ebok = Ebok::start(c).await;
    let (_tx, rx) = tokio::sync::watch::channel(false);
    ebok::server::start_demo(&ebok.running, rx).await.unwrap();
    let debtor = ebok::store::subscribers::subscriber_by_ext_id(&ebok.running.db, "demo-sub-0009")
        .await
        .unwrap()
        .expect("the demo's first debtor");
    let account = ebok::store::panel::panel_account_of_subscriber(&ebok.running.db, debtor.id)
        .await
        .unwrap()
        .expect("the demo made the debtor's panel account");
    assert!(account.email_confirmed_at.is_some());
    let mails = mails_to(
        &dir.path().join("outbox"),
        &account.email,
        Duration::from_secs(120),
    )
    .await;
    assert_eq!(mails.len(), 1, "{mails:?}");
    let text = &mails[0];
    assert!(text.contains("zł"), "{text}");
    assert!(text.contains("FV/"), "{text}");
    ebok.stop().await;
}
