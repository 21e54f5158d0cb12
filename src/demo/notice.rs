//! The demo's outage notice: a fibre cut behind the demo NAS (NAS-IP-Address 127.0.0.1,
//! where the demo's live session is), so the banner shows on the demo's own line. Posted once:
//! an open notice with the same title is left as it is.

use time::OffsetDateTime;

use crate::store::notices::{self, Listing, NoticeDraft, Severity};
use crate::store::repo::{Page, StoreError};
use crate::store::Db;

/// The demo's NAS key: the NAS-IP-Address of its Accounting-Requests.
pub const DEMO_NAS: &str = "127.0.0.1";
const TITLE: &str = "Awaria łącza światłowodowego w Krakowie-Podgórzu";

/// Post the outage unless it is open already; gives whether it was posted now.
pub async fn post_outage(db: &Db) -> Result<bool, StoreError> {
    let open = notices::list(db, Listing::Open, Page::first(Page::MAX_SIZE)).await?;
    if open.items.iter().any(|n| n.draft.title == TITLE) {
        return Ok(false);
    }
    let now = OffsetDateTime::now_utc();
    let draft = NoticeDraft {
        title: TITLE.into(),
        body: "Uszkodzony kabel między węzłami. Ekipa techniczna jest na miejscu; \
               połączenia mogą być wolniejsze lub przerywane."
            .into(),
        severity: Severity::Outage,
        starts_at: notices::stored_time(now - time::Duration::minutes(20)),
        expected_end: Some(notices::stored_time(now + time::Duration::hours(3))),
        everyone: false,
        nas: vec![DEMO_NAS.into()],
        postcodes: Vec::new(),
        cities: Vec::new(),
    }
    .normalized()?;
    let mut tx = db.begin().await?;
    notices::create(&mut tx, &draft).await?;
    tx.commit().await?;
    Ok(true)
}
