//! Outage and maintenance notices in the panel: which active notices touch the caller (the
//! NAS their live session is on now, their installation address, or everyone), for the
//! banner on every page and the dashboard; a visitor on a live line sees those of the line
//! without anything personal. [`mail`] sends the once-only mail about a notice.
//!
//! Per request: a read of [`Board`] (the active notices and the logins live on each NAS
//! they name, refreshed from the database and the live map at most every
//! [`BOARD_TTL`]), the caller's line from the live map, and, only while a targeted notice
//! is active, one bounded query for the caller's places (for a visitor only while a notice
//! names an area). No notice: no query at all.

pub mod mail;
#[cfg(test)]
mod tests;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use time::OffsetDateTime;

use super::i18n::Tr;
use super::pages::Ctx;
use super::AppState;
use ebok_store::notices::{self, Notice, Places};
use ebok_store::tz::format_datetime;

/// How long an instance shows a notice as it last read it. The instance that changes a
/// notice reads it again at once; others within this time.
pub const BOARD_TTL: Duration = Duration::from_secs(5);

/// The active notices as last read, with the logins live on each NAS they name.
#[derive(Default)]
pub struct Board {
    notices: Vec<Notice>,
    /// NAS key → lowercased PPPoE logins of its live sessions.
    on_nas: HashMap<String, HashSet<String>>,
}

impl Board {
    /// Whether any notice names a NAS or an area (so the caller's places are needed).
    fn targeted(&self) -> bool {
        self.notices.iter().any(|n| !n.draft.everyone)
    }

    /// Whether any notice names an area (so a visitor's line needs its holder's address).
    fn names_areas(&self) -> bool {
        self.notices
            .iter()
            .any(|n| !n.draft.postcodes.is_empty() || !n.draft.cities.is_empty())
    }

    /// Whether one of `logins` is live on a NAS `n` names.
    fn live_on(&self, n: &Notice, logins: &[String]) -> bool {
        n.draft.nas.iter().any(|key| {
            self.on_nas
                .get(key)
                .is_some_and(|set| logins.iter().any(|l| set.contains(&l.to_ascii_lowercase())))
        })
    }

    /// The notices that touch a line on `nas` (the caller's, if live) or `places`.
    fn touching(&self, nas: Option<&str>, places: &Places) -> Vec<&Notice> {
        self.notices
            .iter()
            .filter(|n| n.touches(nas.into_iter(), places) || self.live_on(n, &places.logins))
            .collect()
    }
}

/// The short-lived copy of the active notices each instance keeps.
#[derive(Default)]
pub struct NoticeCache {
    slot: Mutex<Option<(Instant, Arc<Board>)>>,
}

impl NoticeCache {
    /// Forget the copy (after this instance changed a notice).
    pub fn invalidate(&self) {
        *self.slot.lock().expect("notice cache") = None;
    }

    /// The board, read again when older than [`BOARD_TTL`]. A failed read shows no notice
    /// (and is logged): the page never fails for it.
    pub(crate) async fn board(&self, state: &AppState) -> Arc<Board> {
        if let Some((at, board)) = &*self.slot.lock().expect("notice cache") {
            if at.elapsed() < BOARD_TTL {
                return board.clone();
            }
        }
        let board = match read_board(state).await {
            Ok(b) => Arc::new(b),
            Err(e) => {
                tracing::error!(error = %e, "reading the active notices");
                Arc::new(Board::default())
            }
        };
        *self.slot.lock().expect("notice cache") = Some((Instant::now(), board.clone()));
        board
    }
}

async fn read_board(state: &AppState) -> anyhow::Result<Board> {
    let notices =
        notices::active(&state.db, OffsetDateTime::now_utc(), notices::ACTIVE_LIMIT).await?;
    let mut on_nas = HashMap::new();
    for key in notices.iter().flat_map(|n| n.draft.nas.iter()) {
        if on_nas.contains_key(key) {
            continue;
        }
        on_nas.insert(key.clone(), logins_on(state, key).await?);
    }
    Ok(Board { notices, on_nas })
}

/// The lowercased PPPoE logins of the live sessions on NAS `key`.
pub(crate) async fn logins_on(state: &AppState, key: &str) -> anyhow::Result<HashSet<String>> {
    Ok(state
        .live
        .list(Some(key))
        .await?
        .into_iter()
        .filter_map(|s| s.user_name.map(|u| u.to_ascii_lowercase()))
        .collect())
}

/// One notice as the banner and the dashboard show it (ops-written text, no personal data).
pub struct NoticeView {
    pub severity: &'static str,
    /// "Wykryliśmy awarię w Twojej okolicy" or, for everyone, "Awaria".
    pub lead: String,
    pub title: String,
    pub body: String,
    pub since: String,
    pub until: Option<String>,
}

fn view(t: Tr, n: &Notice) -> NoticeView {
    let severity = n.draft.severity.as_str();
    let scope = if n.draft.everyone { "all" } else { "near" };
    NoticeView {
        severity,
        lead: t.t(&format!("notices.{scope}_{severity}")).to_owned(),
        title: n.draft.title.clone(),
        body: n.draft.body.clone(),
        since: format_datetime(n.draft.starts_at),
        until: n.draft.expected_end.map(format_datetime),
    }
}

/// The active notices that touch the caller: the live line the request comes from (anyone
/// on it), and when logged in the subscriber's lines (their live sessions' NAS, their
/// installation addresses); everyone-notices to all.
pub(crate) async fn for_caller(state: &AppState, ctx: &Ctx) -> Vec<NoticeView> {
    let board = state.panel.notices.board(state).await;
    if board.notices.is_empty() {
        return Vec::new();
    }
    let line = state.live.lookup(ctx.info.ip).await.ok().flatten();
    let places = if board.targeted() {
        let found = match (&ctx.auth, &line) {
            (Some(a), _) => {
                Some(notices::places_of_subscriber(&state.db, a.account.subscriber_id).await)
            }
            // A visitor's line is matched by its NAS directly; its holder's address is read
            // only while a notice names an area.
            (None, Some(s)) if board.names_areas() => match &s.user_name {
                Some(login) => Some(notices::places_of_login(&state.db, login).await),
                None => None,
            },
            (None, Some(_)) => None,
            (None, None) => None,
        };
        match found {
            Some(Ok(p)) => p,
            Some(Err(e)) => {
                tracing::error!(error = %e, "places for the notices");
                Places::default()
            }
            None => Places::default(),
        }
    } else {
        Places::default()
    };
    board
        .touching(line.as_ref().map(|s| s.nas.as_str()), &places)
        .into_iter()
        .map(|n| view(ctx.t, n))
        .collect()
}

/// After this instance changed a notice: show it at once here, count it, and mail about it
/// when that is on.
pub(crate) fn changed(state: &AppState) {
    state.panel.notices.invalidate();
    let state = state.clone();
    let work = state.panel.mail_work.clone();
    work.spawn(async move {
        if let Err(e) = mail::pass(&state).await {
            tracing::error!(error = %e, "notice mails");
        }
    });
}

/// Every 30 s: the `ebok_notices_active` gauge, and the mail about notices that began since
/// (or were posted on another instance).
pub async fn run_notices(state: AppState, mut shutdown: tokio::sync::watch::Receiver<bool>) {
    let every = Duration::from_secs(30);
    let mut tick = tokio::time::interval(every);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.changed() => return,
        }
        if let Err(e) = mail::pass(&state).await {
            tracing::warn!(error = %e, "notice mails");
        }
    }
}
