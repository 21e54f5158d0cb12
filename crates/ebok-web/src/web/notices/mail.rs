//! The mail about a notice (`[mail] notices = true`): once per notice, to the confirmed
//! addresses of the subscribers it touches, each in the language they last used in the
//! panel. Instances sharing the database race for each notice's marker
//! ([`notices::claim_mail`], a compare-and-set); only the winner sends.

use std::collections::HashSet;

use time::OffsetDateTime;

use crate::web::i18n::{Lang, Tr};
use crate::web::AppState;
use ebok_store::notices::{self, Notice};
use ebok_store::tz::format_datetime;

/// Accounts read per query while finding the recipients.
const RECIPIENT_PAGE: u32 = 500;
/// Notices taken per pass.
const NOTICES_PER_PASS: u32 = 20;

/// Update the `ebok_notices_active` gauge and, when mail about notices is on, mail about
/// every active notice nobody has mailed about. Gives the number of mails.
pub(crate) async fn pass(state: &AppState) -> anyhow::Result<usize> {
    let now = OffsetDateTime::now_utc();
    let active = notices::count_active(&state.db, now).await?;
    metrics::gauge!("ebok_notices_active").set(active as f64);
    if !state.config.mail.notices {
        return Ok(0);
    }
    let mut sent = 0;
    for id in notices::unmailed(&state.db, now, NOTICES_PER_PASS).await? {
        if !notices::claim_mail(&state.db, id).await? {
            continue;
        }
        let Some(notice) = notices::get(&state.db, id).await? else {
            continue;
        };
        let n = mail_notice(state, &notice).await?;
        tracing::info!(notice = id, mails = n, "notice mails");
        sent += n;
    }
    Ok(sent)
}

/// Mail everyone `notice` touches now: a live session on a NAS it names, an installation
/// address in its areas, or every subscriber.
async fn mail_notice(state: &AppState, notice: &Notice) -> anyhow::Result<usize> {
    let mut live: HashSet<String> = HashSet::new();
    for key in &notice.draft.nas {
        live.extend(super::logins_on(state, key).await?);
    }
    let until = notice
        .draft
        .expected_end
        .map(format_datetime)
        .unwrap_or_default();
    let since = format_datetime(notice.draft.starts_at);
    let link = state.link("/panel");
    let mut after = 0;
    let mut sent = 0;
    loop {
        let page = notices::recipients_after(&state.db, after, RECIPIENT_PAGE).await?;
        let Some(last) = page.last() else { break };
        after = last.account_id;
        for r in &page {
            let on_nas = r
                .places
                .logins
                .iter()
                .any(|l| live.contains(&l.to_ascii_lowercase()));
            if !(on_nas || notice.touches(std::iter::empty(), &r.places)) {
                continue;
            }
            let lang = r
                .lang
                .as_deref()
                .and_then(Lang::from_code)
                .unwrap_or(Lang::Pl);
            let t = Tr::new(lang);
            let until = if until.is_empty() {
                t.t("notices.mail_until_unknown").to_owned()
            } else {
                until.clone()
            };
            state.mail(
                t,
                &r.email,
                &format!("notices.mail_subject_{}", notice.draft.severity.as_str()),
                "notices.mail_body",
                &[
                    ("title", &notice.draft.title),
                    ("body", &notice.draft.body),
                    ("since", &since),
                    ("until", &until),
                    ("link", &link),
                ],
            );
            sent += 1;
        }
    }
    Ok(sent)
}
