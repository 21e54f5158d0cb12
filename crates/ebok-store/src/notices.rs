//! Outage and maintenance notices: what the operators post (title, text, start, expected
//! end, severity) and whom it touches (NAS keys of the live map, postcodes or cities of
//! installation addresses, or everyone); the places of a subscriber or a line to match
//! them against; and the once-only mail marker and the recipients of that mail.
//!
//! Matching itself is plain code over [`Notice`] and [`Places`] ([`Notice::touches`]), so
//! the panel and the mail decide alike.

use std::collections::{BTreeMap, HashSet};

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::repo::{
    from_ts, now, select_list, text_enum, Cols, Entity, Page, Paged, RowGet, StoreError,
};
use super::validate::valid_postcode;
use super::{Db, DbTx};
use crate::{on_pool, on_tx};

/// Most notices a panel page considers at once (active notices are few).
pub const ACTIVE_LIMIT: u32 = 50;
/// Longest title and text.
pub const MAX_TITLE: usize = 200;
pub const MAX_BODY: usize = 5_000;
/// Most targets of one kind on one notice, and the longest target value.
pub const MAX_TARGETS: usize = 200;
pub const MAX_TARGET_LEN: usize = 253;
/// Most rows of one subscriber's places (contracts × logins and IP addresses).
const PLACES_LIMIT: i64 = 200;

text_enum! {
    /// How serious a notice is: the panel orders and colours by it.
    pub enum Severity { Info = "info", Maintenance = "maintenance", Outage = "outage" }
}

text_enum! {
    /// What a target names.
    pub enum TargetKind { Nas = "nas", Postcode = "postcode", City = "city" }
}

impl Severity {
    /// Higher first on the page.
    pub fn rank(self) -> u8 {
        match self {
            Severity::Outage => 2,
            Severity::Maintenance => 1,
            Severity::Info => 0,
        }
    }
}

/// A notice as the operators write it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NoticeDraft {
    pub title: String,
    pub body: String,
    pub severity: Severity,
    #[serde(with = "time::serde::rfc3339")]
    pub starts_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option", default)]
    pub expected_end: Option<OffsetDateTime>,
    /// Every subscriber and every visitor (then no other target).
    #[serde(default)]
    pub everyone: bool,
    /// NAS keys as the live map names a session's NAS (NAS-IP-Address / NAS-Identifier).
    #[serde(default)]
    pub nas: Vec<String>,
    /// Postcodes (`NN-NNN`) of installation addresses.
    #[serde(default)]
    pub postcodes: Vec<String>,
    /// Cities of installation addresses (compared ignoring case).
    #[serde(default)]
    pub cities: Vec<String>,
}

/// A stored notice.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notice {
    pub id: i64,
    pub draft: NoticeDraft,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
    pub resolved_at: Option<OffsetDateTime>,
    /// When an instance took the mail about it (sent at most once).
    pub mail_claimed_at: Option<OffsetDateTime>,
}

/// Where a subscriber (or one line) is: its PPPoE logins and installation postcodes and
/// cities.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Places {
    pub logins: Vec<String>,
    pub postcodes: Vec<String>,
    pub cities: Vec<String>,
}

/// One value is the same city as another: trimmed, ignoring case (Polish letters too).
pub fn same_city(a: &str, b: &str) -> bool {
    a.trim().to_lowercase() == b.trim().to_lowercase()
}

fn has_control(s: &str, allow_newline: bool) -> bool {
    s.chars()
        .any(|c| c.is_control() && !(allow_newline && (c == '\n' || c == '\r' || c == '\t')))
}

impl NoticeDraft {
    /// Trim the texts and targets, drop repeated targets, and check every rule; the first
    /// broken rule names its field.
    pub fn normalized(mut self) -> Result<NoticeDraft, StoreError> {
        self.title = self.title.trim().to_owned();
        self.body = self.body.trim().replace("\r\n", "\n");
        if self.title.is_empty() {
            return Err(StoreError::invalid("title", "must not be empty"));
        }
        if self.title.chars().count() > MAX_TITLE {
            return Err(StoreError::invalid(
                "title",
                format!("at most {MAX_TITLE} characters"),
            ));
        }
        if has_control(&self.title, false) {
            return Err(StoreError::invalid(
                "title",
                "must not contain control characters",
            ));
        }
        if self.body.chars().count() > MAX_BODY {
            return Err(StoreError::invalid(
                "body",
                format!("at most {MAX_BODY} characters"),
            ));
        }
        if has_control(&self.body, true) {
            return Err(StoreError::invalid(
                "body",
                "must not contain control characters other than line breaks",
            ));
        }
        if let Some(end) = self.expected_end {
            if end <= self.starts_at {
                return Err(StoreError::invalid(
                    "expected_end",
                    "must be after starts_at",
                ));
            }
        }
        for (field, list) in [
            ("nas", &mut self.nas),
            ("postcodes", &mut self.postcodes),
            ("cities", &mut self.cities),
        ] {
            let mut seen = HashSet::new();
            let mut kept = Vec::new();
            for v in list.iter() {
                let v = v.trim();
                if v.is_empty() {
                    return Err(StoreError::invalid(field, "an entry is empty"));
                }
                if v.len() > MAX_TARGET_LEN || has_control(v, false) {
                    return Err(StoreError::invalid(
                        field,
                        format!("{v:?}: at most {MAX_TARGET_LEN} bytes, no control characters"),
                    ));
                }
                if field == "postcodes" && !valid_postcode(v) {
                    return Err(StoreError::invalid(
                        field,
                        format!("{v:?} is not a postcode (NN-NNN, e.g. 30-001)"),
                    ));
                }
                let key = if field == "cities" {
                    v.to_lowercase()
                } else {
                    v.to_owned()
                };
                if seen.insert(key) {
                    kept.push(v.to_owned());
                }
            }
            if kept.len() > MAX_TARGETS {
                return Err(StoreError::invalid(
                    field,
                    format!("at most {MAX_TARGETS} entries"),
                ));
            }
            *list = kept;
        }
        let targeted =
            !(self.nas.is_empty() && self.postcodes.is_empty() && self.cities.is_empty());
        match (self.everyone, targeted) {
            (true, true) => Err(StoreError::invalid(
                "everyone",
                "a notice for everyone takes no nas, postcodes or cities",
            )),
            (false, false) => Err(StoreError::invalid(
                "everyone",
                "name at least one of nas, postcodes, cities, or set everyone",
            )),
            _ => Ok(self),
        }
    }

    fn targets(&self) -> Vec<(TargetKind, &str)> {
        let mut out = Vec::new();
        for (kind, list) in [
            (TargetKind::Nas, &self.nas),
            (TargetKind::Postcode, &self.postcodes),
            (TargetKind::City, &self.cities),
        ] {
            out.extend(list.iter().map(|v| (kind, v.as_str())));
        }
        out
    }
}

impl Notice {
    /// Shown at `at`: started and not resolved.
    pub fn is_active(&self, at: OffsetDateTime) -> bool {
        self.resolved_at.is_none() && self.draft.starts_at <= at
    }

    /// Whether it names any area (postcode or city).
    pub fn has_areas(&self) -> bool {
        !(self.draft.postcodes.is_empty() && self.draft.cities.is_empty())
    }

    /// Whether it touches a line on one of `nas_keys` or at one of `places`' addresses.
    pub fn touches<'a>(
        &self,
        mut nas_keys: impl Iterator<Item = &'a str>,
        places: &Places,
    ) -> bool {
        let d = &self.draft;
        d.everyone
            || nas_keys.any(|k| d.nas.iter().any(|n| n == k))
            || places.postcodes.iter().any(|p| d.postcodes.contains(p))
            || places
                .cities
                .iter()
                .any(|c| d.cities.iter().any(|t| same_city(c, t)))
    }
}

const NOTICE_COLS: &[&str] = &[
    "id",
    "title",
    "body",
    "severity",
    "everyone",
    "starts_at",
    "expected_end",
    "created_at",
    "updated_at",
    "resolved_at",
    "mail_claimed_at",
];

fn read_notice<R: RowGet>(c: &Cols<'_, R>) -> Result<Notice, sqlx::Error> {
    Ok(Notice {
        id: c.i64("id")?,
        draft: NoticeDraft {
            title: c.text("title")?,
            body: c.text("body")?,
            severity: c.parse("severity")?,
            starts_at: c.ts("starts_at")?,
            expected_end: c.opt_ts("expected_end")?,
            everyone: c.boolean("everyone")?,
            nas: Vec::new(),
            postcodes: Vec::new(),
            cities: Vec::new(),
        },
        created_at: c.ts("created_at")?,
        updated_at: c.ts("updated_at")?,
        resolved_at: c.opt_ts("resolved_at")?,
        mail_claimed_at: c.opt_ts("mail_claimed_at")?,
    })
}

/// Fill in the targets of `notices` (one query).
async fn with_targets(db: &Db, mut notices: Vec<Notice>) -> Result<Vec<Notice>, StoreError> {
    if notices.is_empty() {
        return Ok(notices);
    }
    let marks: Vec<String> = (1..=notices.len()).map(|i| format!("${i}")).collect();
    let sql = format!(
        "SELECT notice_id, kind, value FROM notice_targets WHERE notice_id IN ({}) \
         ORDER BY notice_id, kind, value",
        marks.join(", ")
    );
    let rows: Vec<(i64, String, String)> = on_pool!(db, pool => {
        let mut q = sqlx::query_as::<_, (i64, String, String)>(&sql);
        for n in &notices {
            q = q.bind(n.id);
        }
        q.fetch_all(pool).await?
    });
    let mut by_id: BTreeMap<i64, usize> = BTreeMap::new();
    for (i, n) in notices.iter().enumerate() {
        by_id.insert(n.id, i);
    }
    for (id, kind, value) in rows {
        let Some(&i) = by_id.get(&id) else { continue };
        let d = &mut notices[i].draft;
        match kind.parse::<TargetKind>() {
            Ok(TargetKind::Nas) => d.nas.push(value),
            Ok(TargetKind::Postcode) => d.postcodes.push(value),
            Ok(TargetKind::City) => d.cities.push(value),
            Err(_) => {}
        }
    }
    Ok(notices)
}

async fn write_targets(tx: &mut DbTx, id: i64, draft: &NoticeDraft) -> Result<(), StoreError> {
    let insert = "INSERT INTO notice_targets (notice_id, kind, value) VALUES ($1, $2, $3)";
    on_tx!(tx, conn => {
        sqlx::query("DELETE FROM notice_targets WHERE notice_id = $1")
            .bind(id)
            .execute(&mut **conn)
            .await?;
        for (kind, value) in draft.targets() {
            sqlx::query(insert)
                .bind(id)
                .bind(kind.as_str())
                .bind(value)
                .execute(&mut **conn)
                .await?;
        }
    });
    Ok(())
}

/// Store a new notice (already [`NoticeDraft::normalized`]); gives its id.
pub async fn create(tx: &mut DbTx, draft: &NoticeDraft) -> Result<i64, StoreError> {
    let at = now().unix_timestamp();
    let sql = "INSERT INTO notices (title, body, severity, everyone, starts_at, expected_end, \
               created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $7) RETURNING id";
    let id: i64 = on_tx!(tx, conn => sqlx::query_scalar(sql)
        .bind(&draft.title)
        .bind(&draft.body)
        .bind(draft.severity.as_str())
        .bind(draft.everyone)
        .bind(draft.starts_at.unix_timestamp())
        .bind(draft.expected_end.map(|t| t.unix_timestamp()))
        .bind(at)
        .fetch_one(&mut **conn)
        .await?);
    write_targets(tx, id, draft).await?;
    Ok(id)
}

/// Replace what a notice says and whom it touches. A resolved notice stays as it was.
pub async fn update(tx: &mut DbTx, id: i64, draft: &NoticeDraft) -> Result<(), StoreError> {
    let at = now().unix_timestamp();
    let sql = "UPDATE notices SET title = $1, body = $2, severity = $3, everyone = $4, \
               starts_at = $5, expected_end = $6, updated_at = $7 \
               WHERE id = $8 AND resolved_at IS NULL";
    let done = on_tx!(tx, conn => sqlx::query(sql)
        .bind(&draft.title)
        .bind(&draft.body)
        .bind(draft.severity.as_str())
        .bind(draft.everyone)
        .bind(draft.starts_at.unix_timestamp())
        .bind(draft.expected_end.map(|t| t.unix_timestamp()))
        .bind(at)
        .bind(id)
        .execute(&mut **conn)
        .await?
        .rows_affected());
    if done == 0 {
        return Err(resolved_or_missing(tx, id).await);
    }
    write_targets(tx, id, draft).await
}

async fn resolved_or_missing(tx: &mut DbTx, id: i64) -> StoreError {
    let found: Result<Option<i64>, sqlx::Error> = on_tx!(tx, conn => sqlx::query_scalar(
        "SELECT id FROM notices WHERE id = $1")
        .bind(id)
        .fetch_optional(&mut **conn)
        .await);
    match found {
        Ok(Some(_)) => StoreError::invalid("resolved_at", format!("notice {id} is resolved")),
        Ok(None) => StoreError::NotFound {
            kind: Entity::Notice,
            id,
        },
        Err(e) => e.into(),
    }
}

/// Mark a notice resolved (it leaves the panel). Resolving it again changes nothing.
pub async fn resolve(tx: &mut DbTx, id: i64) -> Result<(), StoreError> {
    let at = now().unix_timestamp();
    let sql = "UPDATE notices SET resolved_at = $1, updated_at = $1 \
               WHERE id = $2 AND resolved_at IS NULL";
    let done = on_tx!(tx, conn => sqlx::query(sql)
        .bind(at)
        .bind(id)
        .execute(&mut **conn)
        .await?
        .rows_affected());
    if done == 0 {
        return match resolved_or_missing(tx, id).await {
            StoreError::Invalid { .. } => Ok(()),
            e => Err(e),
        };
    }
    Ok(())
}

/// One notice with its targets.
pub async fn get(db: &Db, id: i64) -> Result<Option<Notice>, StoreError> {
    let sql = format!(
        "SELECT {} FROM notices n WHERE n.id = $1",
        select_list("n", "", NOTICE_COLS)
    );
    let found = on_pool!(db, pool => sqlx::query(&sql)
        .bind(id)
        .fetch_optional(pool)
        .await?
        .map(|r| read_notice(&Cols::new(&r)))
        .transpose()?);
    Ok(with_targets(db, found.into_iter().collect()).await?.pop())
}

/// The notices shown at `at` (started, not resolved), most serious and newest first; at
/// most `limit`.
pub async fn active(db: &Db, at: OffsetDateTime, limit: u32) -> Result<Vec<Notice>, StoreError> {
    let sql = format!(
        "SELECT {} FROM notices n WHERE n.resolved_at IS NULL AND n.starts_at <= $1 \
         ORDER BY n.starts_at DESC, n.id DESC LIMIT $2",
        select_list("n", "", NOTICE_COLS)
    );
    let found = on_pool!(db, pool => sqlx::query(&sql)
        .bind(at.unix_timestamp())
        .bind(i64::from(limit))
        .fetch_all(pool)
        .await?
        .iter()
        .map(|r| read_notice(&Cols::new(r)))
        .collect::<Result<Vec<_>, _>>()?);
    let mut all = with_targets(db, found).await?;
    all.sort_by_key(|n| std::cmp::Reverse((n.draft.severity.rank(), n.draft.starts_at, n.id)));
    Ok(all)
}

/// Which notices a list shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Listing {
    /// Not resolved (started or still to start).
    Open,
    /// Every notice.
    All,
}

/// Notices newest first, a page at a time, with their targets.
pub async fn list(db: &Db, which: Listing, page: Page) -> Result<Paged<Notice>, StoreError> {
    let filter = match which {
        Listing::Open => "n.resolved_at IS NULL AND n.id > $1",
        Listing::All => "n.id > $1",
    };
    let sql = format!(
        "SELECT {} FROM notices n WHERE {filter} ORDER BY n.starts_at DESC, n.id DESC \
         LIMIT $2 OFFSET $3",
        select_list("n", "", NOTICE_COLS)
    );
    let count = format!("SELECT COUNT(*) AS n FROM notices n WHERE {filter}");
    let paged = super::repo::paged_by!(db, &count, &sql, 0_i64, page, read_notice)?;
    let items = with_targets(db, paged.items).await?;
    Ok(Paged { items, ..paged })
}

/// Number of notices shown now.
pub async fn count_active(db: &Db, at: OffsetDateTime) -> Result<u64, StoreError> {
    let sql = "SELECT COUNT(*) FROM notices WHERE resolved_at IS NULL AND starts_at <= $1";
    let n: i64 = on_pool!(db, pool => sqlx::query_scalar(sql)
        .bind(at.unix_timestamp())
        .fetch_one(pool)
        .await?);
    Ok(n.max(0) as u64)
}

/// Take the mail about notice `id` (compare-and-set): true for exactly one caller, however
/// many instances try at once, and never for a resolved notice.
pub async fn claim_mail(db: &Db, id: i64) -> Result<bool, StoreError> {
    let sql = "UPDATE notices SET mail_claimed_at = $1 \
               WHERE id = $2 AND mail_claimed_at IS NULL AND resolved_at IS NULL";
    let done = on_pool!(db, pool => sqlx::query(sql)
        .bind(now().unix_timestamp())
        .bind(id)
        .execute(pool)
        .await?
        .rows_affected());
    Ok(done == 1)
}

/// Active notices nobody has mailed about yet (at most `limit`).
pub async fn unmailed(db: &Db, at: OffsetDateTime, limit: u32) -> Result<Vec<i64>, StoreError> {
    let sql = "SELECT id FROM notices WHERE mail_claimed_at IS NULL AND resolved_at IS NULL \
               AND starts_at <= $1 ORDER BY id LIMIT $2";
    Ok(on_pool!(db, pool => sqlx::query_scalar(sql)
        .bind(at.unix_timestamp())
        .bind(i64::from(limit))
        .fetch_all(pool)
        .await?))
}

/// Collect (login, postcode, city) rows into places.
fn places_of_rows(rows: Vec<(Option<String>, String, String)>) -> Places {
    let mut p = Places::default();
    for (login, postcode, city) in rows {
        if let Some(l) = login {
            if !p.logins.contains(&l) {
                p.logins.push(l);
            }
        }
        if !p.postcodes.contains(&postcode) {
            p.postcodes.push(postcode);
        }
        if !p.cities.iter().any(|c| same_city(c, &city)) {
            p.cities.push(city);
        }
    }
    p
}

/// The contracts' installation addresses (and those of their IPs) with their PPPoE logins,
/// as (login, postcode, city) rows; `{where}` picks the contracts.
const PLACES_SQL: &str = "SELECT p.login, c.inst_postcode, c.inst_city FROM contracts c \
     LEFT JOIN pppoe_accounts p ON p.contract_id = c.id WHERE {where} \
     UNION SELECT NULL, i.inst_postcode, i.inst_city FROM contracts c \
     JOIN ip_assignments i ON i.contract_id = c.id \
     WHERE {where} AND i.inst_postcode IS NOT NULL AND i.inst_city IS NOT NULL \
     LIMIT $2";

/// Where a subscriber's lines are: every contract's logins and installation addresses
/// (one bounded query).
pub async fn places_of_subscriber(db: &Db, subscriber_id: i64) -> Result<Places, StoreError> {
    let sql = PLACES_SQL.replace("{where}", "c.subscriber_id = $1");
    let rows = on_pool!(db, pool => sqlx::query_as::<_, (Option<String>, String, String)>(&sql)
        .bind(subscriber_id)
        .bind(PLACES_LIMIT)
        .fetch_all(pool)
        .await?);
    Ok(places_of_rows(rows))
}

/// Where the line of one PPPoE login is: its contract's installation addresses (one
/// bounded query). Nothing personal leaves: only postcodes and cities.
pub async fn places_of_login(db: &Db, login: &str) -> Result<Places, StoreError> {
    let sql = PLACES_SQL.replace(
        "{where}",
        "c.id = (SELECT contract_id FROM pppoe_accounts WHERE login = $1)",
    );
    let rows = on_pool!(db, pool => sqlx::query_as::<_, (Option<String>, String, String)>(&sql)
        .bind(login)
        .bind(PLACES_LIMIT)
        .fetch_all(pool)
        .await?);
    let mut p = places_of_rows(rows);
    p.logins.retain(|l| l == login);
    Ok(p)
}

/// A panel account a notice mail may go to: confirmed address, not blocked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recipient {
    pub account_id: i64,
    pub email: String,
    /// The language last used in the panel (`None`: never recorded).
    pub lang: Option<String>,
    pub places: Places,
}

/// The next `limit` accounts after `after` (by id) that can receive mail, with the places of
/// their subscribers. Two queries; the caller pages through all of them.
pub async fn recipients_after(
    db: &Db,
    after: i64,
    limit: u32,
) -> Result<Vec<Recipient>, StoreError> {
    let accounts = "SELECT id, subscriber_id, email, lang FROM panel_accounts \
                    WHERE id > $1 AND email_confirmed_at IS NOT NULL AND disabled = $2 \
                    ORDER BY id LIMIT $3";
    let rows: Vec<(i64, i64, String, Option<String>)> = on_pool!(db, pool =>
        sqlx::query_as(accounts)
            .bind(after)
            .bind(false)
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await?);
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let marks: Vec<String> = (1..=rows.len()).map(|i| format!("${i}")).collect();
    let within = format!("c.subscriber_id IN ({})", marks.join(", "));
    let sql = format!(
        "SELECT c.subscriber_id, p.login, c.inst_postcode, c.inst_city FROM contracts c \
         LEFT JOIN pppoe_accounts p ON p.contract_id = c.id WHERE {within} \
         UNION SELECT c.subscriber_id, NULL, i.inst_postcode, i.inst_city FROM contracts c \
         JOIN ip_assignments i ON i.contract_id = c.id WHERE {within} \
         AND i.inst_postcode IS NOT NULL AND i.inst_city IS NOT NULL"
    );
    let places: Vec<(i64, Option<String>, String, String)> = on_pool!(db, pool => {
        let mut q = sqlx::query_as(&sql);
        for r in &rows {
            q = q.bind(r.1);
        }
        q.fetch_all(pool).await?
    });
    let mut by_subscriber: BTreeMap<i64, Vec<(Option<String>, String, String)>> = BTreeMap::new();
    for (sid, login, postcode, city) in places {
        by_subscriber
            .entry(sid)
            .or_default()
            .push((login, postcode, city));
    }
    Ok(rows
        .into_iter()
        .map(|(account_id, sid, email, lang)| Recipient {
            account_id,
            email,
            lang,
            places: places_of_rows(by_subscriber.get(&sid).cloned().unwrap_or_default()),
        })
        .collect())
}

/// Remember the language an account uses the panel in (for mails nobody asked for).
pub async fn set_account_lang(db: &Db, account_id: i64, lang: &str) -> Result<(), StoreError> {
    let sql = "UPDATE panel_accounts SET lang = $1 WHERE id = $2 AND (lang IS NULL OR lang <> $1)";
    on_pool!(db, pool => sqlx::query(sql)
        .bind(lang)
        .bind(account_id)
        .execute(pool)
        .await
        .map(|_| ())?);
    Ok(())
}

/// The time a notice is stored with (whole seconds).
pub fn stored_time(t: OffsetDateTime) -> OffsetDateTime {
    from_ts(t.unix_timestamp())
}
