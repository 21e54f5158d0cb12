//! What the repositories share: the error type, upsert outcomes, pages, text enums, and the
//! plumbing that lets one piece of code read rows and bind values on either backend.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use sqlx::query::Query;
use sqlx::{Database, Encode, Type};
use time::{Date, OffsetDateTime};

use super::money::Money;

time::serde::format_description!(pub iso_date, Date, "[year]-[month]-[day]");

/// The kinds of stored things, as named in errors.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Entity {
    Subscriber,
    Contract,
    PppoeAccount,
    IpAssignment,
    Invoice,
    Payment,
    Service,
    ServiceOrder,
    News,
    Faq,
    PanelAccount,
    Ticket,
    Notice,
}

impl Entity {
    pub const fn as_str(self) -> &'static str {
        match self {
            Entity::Subscriber => "subscriber",
            Entity::Contract => "contract",
            Entity::PppoeAccount => "PPPoE account",
            Entity::IpAssignment => "IP assignment",
            Entity::Invoice => "invoice",
            Entity::Payment => "payment",
            Entity::Service => "service",
            Entity::ServiceOrder => "service order",
            Entity::News => "news item",
            Entity::Faq => "FAQ entry",
            Entity::PanelAccount => "panel account",
            Entity::Ticket => "ticket",
            Entity::Notice => "notice",
        }
    }

    /// The table holding this entity.
    pub(crate) const fn table(self) -> &'static str {
        match self {
            Entity::Subscriber => "subscribers",
            Entity::Contract => "contracts",
            Entity::PppoeAccount => "pppoe_accounts",
            Entity::IpAssignment => "ip_assignments",
            Entity::Invoice => "invoices",
            Entity::Payment => "payments",
            Entity::Service => "services",
            Entity::ServiceOrder => "service_orders",
            Entity::News => "news",
            Entity::Faq => "faq",
            Entity::PanelAccount => "panel_accounts",
            Entity::Ticket => "tickets",
            Entity::Notice => "notices",
        }
    }
}

impl fmt::Display for Entity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A value that must be unique, for [`StoreError::Duplicate`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum UniqueField {
    /// The billing system's id of an entity (only on a concurrent double insert).
    ExtId(Entity),
    ContractNumber,
    PppoeLogin,
    InvoiceNumber,
    /// Panel login, compared case-insensitively.
    PanelLogin,
    /// A subscriber holds at most one panel account.
    PanelAccountOfSubscriber,
}

impl UniqueField {
    /// (PostgreSQL constraint name, SQLite "table.column") of the unique constraint.
    fn constraint(self) -> (Cow<'static, str>, Cow<'static, str>) {
        let pair = |t: &str, c: &str| {
            (
                Cow::Owned(format!("{t}_{c}_key")),
                Cow::Owned(format!("{t}.{c}")),
            )
        };
        match self {
            UniqueField::ExtId(e) => pair(e.table(), "ext_id"),
            UniqueField::ContractNumber => pair("contracts", "number"),
            UniqueField::PppoeLogin => pair("pppoe_accounts", "login"),
            UniqueField::InvoiceNumber => pair("invoices", "number"),
            UniqueField::PanelLogin => pair("panel_accounts", "login_key"),
            UniqueField::PanelAccountOfSubscriber => pair("panel_accounts", "subscriber_id"),
        }
    }
}

impl fmt::Display for UniqueField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UniqueField::ExtId(e) => write!(f, "{e} ext_id"),
            UniqueField::ContractNumber => f.write_str("contract number"),
            UniqueField::PppoeLogin => f.write_str("PPPoE login"),
            UniqueField::InvoiceNumber => f.write_str("invoice number"),
            UniqueField::PanelLogin => f.write_str("panel login"),
            UniqueField::PanelAccountOfSubscriber => f.write_str("panel account of subscriber"),
        }
    }
}

/// Errors of the repositories. Constraint violations a user or an import can cause are
/// typed; everything else is [`StoreError::Database`].
///
/// `UnknownReference`, `NotFound`, `Invalid` and `InvoiceTotals` are found before anything
/// is written, so the transaction can go on. After a `Duplicate` from an upsert (the
/// database refused the write) PostgreSQL has aborted the transaction: roll it back.
/// [`super::panel::create_panel_account`] is the exception — it checks first and leaves the
/// transaction usable.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A billing record refers to a parent (by the billing system's id) that is not stored.
    #[error("{kind} with ext_id {ext_id:?} is not known")]
    UnknownReference { kind: Entity, ext_id: String },
    /// An internal id given to a write does not exist.
    #[error("{kind} {id} does not exist")]
    NotFound { kind: Entity, id: i64 },
    /// A unique value is already held by another row.
    #[error("{field} {value:?} is already taken")]
    Duplicate { field: UniqueField, value: String },
    /// An invoice whose totals or lines do not add up.
    #[error("invoice {number}: {what} is {stated} but the lines give {computed}")]
    InvoiceTotals {
        number: String,
        what: String,
        stated: Money,
        computed: Money,
    },
    /// A record that breaks a rule of the model (missing name, end before start, …).
    #[error("{field}: {reason}")]
    Invalid { field: &'static str, reason: String },
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

impl StoreError {
    pub(crate) fn invalid(field: &'static str, reason: impl Into<String>) -> StoreError {
        StoreError::Invalid {
            field,
            reason: reason.into(),
        }
    }
}

/// Turn a unique violation on one of `candidates` into [`StoreError::Duplicate`].
pub(crate) fn unique_error(e: sqlx::Error, candidates: &[(UniqueField, &str)]) -> StoreError {
    if let Some(db) = e.as_database_error() {
        if db.is_unique_violation() {
            let text = format!("{} {}", db.constraint().unwrap_or(""), db.message());
            for (field, value) in candidates {
                let (pg, lite) = field.constraint();
                if db.constraint() == Some(pg.as_ref()) || text.contains(lite.as_ref()) {
                    return StoreError::Duplicate {
                        field: *field,
                        value: (*value).to_owned(),
                    };
                }
            }
        }
    }
    StoreError::Database(e)
}

/// The optional fields a record was given without: CSV columns the file does not have, or
/// JSON keys the object does not carry (named as the CSV columns). An upsert leaves their
/// stored values as they are, so that an import never erases what it was not given; a
/// field given empty (or `null`) is cleared.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Absent(Vec<&'static str>);

impl Absent {
    pub(crate) const NONE: &'static Absent = &Absent(Vec::new());

    pub fn new(fields: Vec<&'static str>) -> Self {
        Absent(fields)
    }

    pub fn has(&self, field: &str) -> bool {
        self.0.contains(&field)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The fields, for messages.
    pub fn fields(&self) -> &[&'static str] {
        &self.0
    }
}

/// What an upsert by the billing system's id did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Upserted {
    Inserted,
    Updated,
    /// The stored row already held these values; nothing was written.
    Unchanged,
}

/// Counts of upsert outcomes, for an import summary.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UpsertSummary {
    pub inserted: u64,
    pub updated: u64,
    pub unchanged: u64,
}

impl UpsertSummary {
    pub fn add(&mut self, u: Upserted) {
        match u {
            Upserted::Inserted => self.inserted += 1,
            Upserted::Updated => self.updated += 1,
            Upserted::Unchanged => self.unchanged += 1,
        }
    }

    pub fn total(&self) -> u64 {
        self.inserted + self.updated + self.unchanged
    }
}

/// One page of a list: `number` counts from 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Page {
    pub number: u32,
    pub size: u32,
}

impl Page {
    pub const MAX_SIZE: u32 = 500;

    /// Page `number` (1 when 0) of `size` items (clamped to 1..=[`Page::MAX_SIZE`]).
    pub fn new(number: u32, size: u32) -> Page {
        Page {
            number: number.max(1),
            size: size.clamp(1, Page::MAX_SIZE),
        }
    }

    pub fn first(size: u32) -> Page {
        Page::new(1, size)
    }

    pub(crate) fn limit(&self) -> i64 {
        i64::from(self.size)
    }

    pub fn offset(&self) -> i64 {
        i64::from(self.number.max(1) - 1) * i64::from(self.size)
    }
}

/// A page of items and the total count of the whole list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Paged<T> {
    pub items: Vec<T>,
    pub total: u64,
    pub page: Page,
}

impl<T> Paged<T> {
    /// Number of pages (at least 1, so an empty list shows one empty page).
    pub fn pages(&self) -> u32 {
        let size = u64::from(self.page.size.max(1));
        (self.total.div_ceil(size).max(1)).min(u64::from(u32::MAX)) as u32
    }

    pub fn has_next(&self) -> bool {
        self.page.number < self.pages()
    }

    pub fn has_prev(&self) -> bool {
        self.page.number > 1
    }
}

/// A stored text that is not one of an enum's values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {kind} {value:?}")]
pub struct UnknownValue {
    pub kind: &'static str,
    pub value: String,
}

/// An enum stored as text: `as_str`, `FromStr` (case-insensitive, trimmed), `Display`,
/// serde by the same texts.
macro_rules! text_enum {
    (
        $(#[$m:meta])*
        $vis:vis enum $name:ident { $($(#[$vm:meta])* $var:ident = $s:literal),+ $(,)? }
    ) => {
        $(#[$m])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
        $vis enum $name {
            $($(#[$vm])* #[serde(rename = $s)] $var),+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$var),+];

            pub const fn as_str(self) -> &'static str {
                match self {
                    $($name::$var => $s),+
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $name {
            type Err = $crate::repo::UnknownValue;
            fn from_str(s: &str) -> Result<$name, Self::Err> {
                let t = s.trim();
                $(if t.eq_ignore_ascii_case($s) {
                    return Ok($name::$var);
                })+
                Err($crate::repo::UnknownValue {
                    kind: stringify!($name),
                    value: s.to_owned(),
                })
            }
        }
    };
}
pub(crate) use text_enum;

pub fn now() -> OffsetDateTime {
    let t = OffsetDateTime::now_utc();
    from_ts(t.unix_timestamp())
}

pub fn from_ts(v: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(v).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// A value to bind, so that one list of (column, value) drives both the SQL text and the
/// binding on either backend.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Val {
    Int(Option<i64>),
    Text(Option<String>),
    Date(Option<Date>),
    Bool(bool),
}

impl From<i64> for Val {
    fn from(v: i64) -> Val {
        Val::Int(Some(v))
    }
}

impl From<Option<i64>> for Val {
    fn from(v: Option<i64>) -> Val {
        Val::Int(v)
    }
}

impl From<Money> for Val {
    fn from(v: Money) -> Val {
        Val::Int(Some(v.grosze()))
    }
}

impl From<OffsetDateTime> for Val {
    fn from(v: OffsetDateTime) -> Val {
        Val::Int(Some(v.unix_timestamp()))
    }
}

impl From<&str> for Val {
    fn from(v: &str) -> Val {
        Val::Text(Some(v.to_owned()))
    }
}

impl From<&String> for Val {
    fn from(v: &String) -> Val {
        Val::Text(Some(v.clone()))
    }
}

impl From<Option<&str>> for Val {
    fn from(v: Option<&str>) -> Val {
        Val::Text(v.map(str::to_owned))
    }
}

impl From<&Option<String>> for Val {
    fn from(v: &Option<String>) -> Val {
        Val::Text(v.clone())
    }
}

impl From<Date> for Val {
    fn from(v: Date) -> Val {
        Val::Date(Some(v))
    }
}

impl From<Option<Date>> for Val {
    fn from(v: Option<Date>) -> Val {
        Val::Date(v)
    }
}

impl From<bool> for Val {
    fn from(v: bool) -> Val {
        Val::Bool(v)
    }
}

/// Bind `vals` in order.
pub(crate) fn bind_vals<'q, DB>(
    mut q: Query<'q, DB, <DB as Database>::Arguments<'q>>,
    vals: &[(&str, Val)],
) -> Query<'q, DB, <DB as Database>::Arguments<'q>>
where
    DB: Database,
    Option<i64>: Encode<'q, DB> + Type<DB>,
    Option<String>: Encode<'q, DB> + Type<DB>,
    Option<Date>: Encode<'q, DB> + Type<DB>,
    bool: Encode<'q, DB> + Type<DB>,
{
    for (_, v) in vals {
        q = match v {
            Val::Int(x) => q.bind(*x),
            Val::Text(x) => q.bind(x.clone()),
            Val::Date(x) => q.bind(*x),
            Val::Bool(x) => q.bind(*x),
        };
    }
    q
}

/// `INSERT INTO table (cols…) VALUES ($1…) ON CONFLICT (ext_id) DO NOTHING RETURNING id`.
pub(crate) fn insert_by_ext_id_sql(table: &str, vals: &[(&str, Val)]) -> String {
    format!(
        "{} ON CONFLICT (ext_id) DO NOTHING RETURNING id",
        insert_sql(table, vals)
    )
}

/// `INSERT INTO table (cols…) VALUES ($1…)`.
pub(crate) fn insert_sql(table: &str, vals: &[(&str, Val)]) -> String {
    let cols: Vec<&str> = vals.iter().map(|(c, _)| *c).collect();
    let params: Vec<String> = (1..=vals.len()).map(|i| format!("${i}")).collect();
    format!(
        "INSERT INTO {table} ({}) VALUES ({})",
        cols.join(", "),
        params.join(", ")
    )
}

/// `UPDATE table SET col2 = $2, … WHERE ext_id = $1 RETURNING id`; `vals[0]` is ext_id.
pub(crate) fn update_by_ext_id_sql(table: &str, vals: &[(&str, Val)]) -> String {
    debug_assert_eq!(vals[0].0, "ext_id");
    let sets: Vec<String> = vals
        .iter()
        .enumerate()
        .skip(1)
        .map(|(i, (c, _))| format!("{c} = ${}", i + 1))
        .collect();
    format!(
        "UPDATE {table} SET {} WHERE ext_id = $1 RETURNING id",
        sets.join(", ")
    )
}

/// `a.c1 AS p_c1, a.c2 AS p_c2, …`: a table's columns under a prefix, for joins.
pub(crate) fn select_list(alias: &str, prefix: &str, cols: &[&str]) -> String {
    cols.iter()
        .map(|c| format!("{alias}.{c} AS {prefix}{c}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Typed column access implemented for the rows of both backends.
pub trait RowGet {
    fn get_i64(&self, col: &str) -> Result<Option<i64>, sqlx::Error>;
    fn get_text(&self, col: &str) -> Result<Option<String>, sqlx::Error>;
    fn get_date(&self, col: &str) -> Result<Option<Date>, sqlx::Error>;
    fn get_bool(&self, col: &str) -> Result<Option<bool>, sqlx::Error>;
}

macro_rules! impl_row_get {
    ($row:ty) => {
        impl RowGet for $row {
            fn get_i64(&self, col: &str) -> Result<Option<i64>, sqlx::Error> {
                sqlx::Row::try_get(self, col)
            }
            fn get_text(&self, col: &str) -> Result<Option<String>, sqlx::Error> {
                sqlx::Row::try_get(self, col)
            }
            fn get_date(&self, col: &str) -> Result<Option<Date>, sqlx::Error> {
                sqlx::Row::try_get(self, col)
            }
            fn get_bool(&self, col: &str) -> Result<Option<bool>, sqlx::Error> {
                sqlx::Row::try_get(self, col)
            }
        }
    };
}
impl_row_get!(sqlx::sqlite::SqliteRow);
impl_row_get!(sqlx::postgres::PgRow);

/// The columns of one row, optionally under a prefix (`s_id`, `s_ext_id`, … in joins).
pub struct Cols<'r, R> {
    row: &'r R,
    prefix: &'static str,
}

fn decode_error(col: &str, e: impl std::error::Error + Send + Sync + 'static) -> sqlx::Error {
    sqlx::Error::ColumnDecode {
        index: col.to_owned(),
        source: Box::new(e),
    }
}

impl<'r, R: RowGet> Cols<'r, R> {
    pub fn new(row: &'r R) -> Self {
        Cols { row, prefix: "" }
    }

    pub fn prefixed(row: &'r R, prefix: &'static str) -> Self {
        Cols { row, prefix }
    }

    fn name<'a>(&self, col: &'a str) -> Cow<'a, str> {
        if self.prefix.is_empty() {
            Cow::Borrowed(col)
        } else {
            Cow::Owned(format!("{}{col}", self.prefix))
        }
    }

    fn required<T>(&self, col: &str, v: Option<T>) -> Result<T, sqlx::Error> {
        v.ok_or_else(|| decode_error(&self.name(col), sqlx::error::UnexpectedNullError))
    }

    pub(crate) fn opt_i64(&self, col: &str) -> Result<Option<i64>, sqlx::Error> {
        self.row.get_i64(&self.name(col))
    }

    pub fn i64(&self, col: &str) -> Result<i64, sqlx::Error> {
        let v = self.opt_i64(col)?;
        self.required(col, v)
    }

    pub fn u32(&self, col: &str) -> Result<u32, sqlx::Error> {
        let v = self.i64(col)?;
        u32::try_from(v).map_err(|e| decode_error(&self.name(col), e))
    }

    pub(crate) fn opt_text(&self, col: &str) -> Result<Option<String>, sqlx::Error> {
        self.row.get_text(&self.name(col))
    }

    pub fn text(&self, col: &str) -> Result<String, sqlx::Error> {
        let v = self.opt_text(col)?;
        self.required(col, v)
    }

    pub(crate) fn opt_date(&self, col: &str) -> Result<Option<Date>, sqlx::Error> {
        self.row.get_date(&self.name(col))
    }

    pub fn date(&self, col: &str) -> Result<Date, sqlx::Error> {
        let v = self.opt_date(col)?;
        self.required(col, v)
    }

    pub fn boolean(&self, col: &str) -> Result<bool, sqlx::Error> {
        let v = self.row.get_bool(&self.name(col))?;
        self.required(col, v)
    }

    pub fn money(&self, col: &str) -> Result<Money, sqlx::Error> {
        self.i64(col).map(Money::from_grosze)
    }

    /// Unix seconds as a UTC time.
    pub fn ts(&self, col: &str) -> Result<OffsetDateTime, sqlx::Error> {
        self.i64(col).map(from_ts)
    }

    pub(crate) fn opt_ts(&self, col: &str) -> Result<Option<OffsetDateTime>, sqlx::Error> {
        Ok(self.opt_i64(col)?.map(from_ts))
    }

    /// A text column parsed with `FromStr` (enums, validated identifiers).
    pub fn parse<T>(&self, col: &str) -> Result<T, sqlx::Error>
    where
        T: FromStr,
        T::Err: std::error::Error + Send + Sync + 'static,
    {
        let s = self.text(col)?;
        s.parse().map_err(|e| decode_error(&self.name(col), e))
    }

    pub fn opt_parse<T>(&self, col: &str) -> Result<Option<T>, sqlx::Error>
    where
        T: FromStr,
        T::Err: std::error::Error + Send + Sync + 'static,
    {
        match self.opt_text(col)? {
            None => Ok(None),
            Some(s) => s
                .parse()
                .map(Some)
                .map_err(|e| decode_error(&self.name(col), e)),
        }
    }
}

/// The upsert steps shared by every billing-imported entity, on one backend's transaction:
/// load the stored record by ext_id; absent → insert (a concurrent insert of the same ext_id
/// falls through to the compare); equal → nothing; different → update (with the new
/// updated_at). Evaluates to `(Upserted, id)`.
///
/// `$load` is an expression (awaited inside) giving `Option<(i64, Record)>`; it may run
/// twice. `$uniques` lists the unique values a write may collide on.
macro_rules! upsert_steps {
    ($conn:ident, $table:expr, $rec:expr, $vals:expr, $uniques:expr, $load:expr) => {{
        let vals: Vec<(&'static str, $crate::repo::Val)> = $vals;
        let uniques: &[($crate::repo::UniqueField, &str)] = $uniques;
        let mut stored = $load;
        let mut inserted = None;
        if stored.is_none() {
            let sql = $crate::repo::insert_by_ext_id_sql($table, &vals);
            let row = $crate::repo::bind_vals(sqlx::query(&sql), &vals)
                .fetch_optional(&mut **$conn)
                .await
                .map_err(|e| $crate::repo::unique_error(e, uniques))?;
            match row {
                Some(row) => inserted = Some($crate::repo::Cols::new(&row).i64("id")?),
                None => stored = $load,
            }
        }
        match (inserted, stored) {
            (Some(id), _) => ($crate::repo::Upserted::Inserted, id),
            (None, Some((id, old))) if old == *$rec => ($crate::repo::Upserted::Unchanged, id),
            (None, _) => {
                let sql = $crate::repo::update_by_ext_id_sql($table, &vals);
                let row = $crate::repo::bind_vals(sqlx::query(&sql), &vals)
                    .fetch_one(&mut **$conn)
                    .await
                    .map_err(|e| $crate::repo::unique_error(e, uniques))?;
                (
                    $crate::repo::Upserted::Updated,
                    $crate::repo::Cols::new(&row).i64("id")?,
                )
            }
        }
    }};
}
pub(crate) use upsert_steps;

/// The internal id of a parent by its ext_id, inside a transaction, or
/// [`StoreError::UnknownReference`].
macro_rules! parent_id {
    ($conn:ident, $kind:expr, $ext_id:expr) => {{
        let kind: $crate::repo::Entity = $kind;
        let ext_id: &str = $ext_id;
        let sql = format!("SELECT id FROM {} WHERE ext_id = $1", kind.table());
        let row = sqlx::query(&sql)
            .bind(ext_id)
            .fetch_optional(&mut **$conn)
            .await?;
        match row {
            Some(row) => $crate::repo::Cols::new(&row).i64("id")?,
            None => {
                return Err($crate::repo::StoreError::UnknownReference {
                    kind,
                    ext_id: ext_id.to_owned(),
                })
            }
        }
    }};
}
pub(crate) use parent_id;

/// Most bound values in one multi-row statement of a batch (well below the limits of both
/// backends; SQLite gets anonymous `?` parameters from `QueryBuilder`).
pub(crate) const BATCH_PARAMS: usize = 2000;

/// `key → id` of the rows of `$table` whose `$col` is one of `$keys` (a `Vec<&str>`), in
/// statements of at most 500 keys. Evaluates to a `HashMap<String, i64>`; `?` on errors.
macro_rules! ids_by {
    ($conn:ident, $table:expr, $col:expr, $keys:expr) => {{
        let keys: Vec<&str> = $keys;
        let mut found = std::collections::HashMap::<String, i64>::with_capacity(keys.len());
        for chunk in keys.chunks(500) {
            let mut qb = sqlx::QueryBuilder::new(format!(
                "SELECT id, {col} AS k FROM {table} WHERE {col} IN (",
                col = $col,
                table = $table
            ));
            let mut sep = qb.separated(", ");
            for k in chunk {
                sep.push_bind((*k).to_owned());
            }
            qb.push(")");
            for row in qb.build().fetch_all(&mut **$conn).await? {
                let c = $crate::repo::Cols::new(&row);
                found.insert(c.text("k")?, c.i64("id")?);
            }
        }
        found
    }};
}
pub(crate) use ids_by;

/// Insert `$rows` (`&[Vec<(&str, Val)>]`, the same columns in every row) into `$table` with
/// multi-row INSERTs. With `returning ext_id` it evaluates to the `ext_id → id` map of the
/// new rows, else to `()`; `?` on errors.
macro_rules! insert_rows {
    (@stmt $table:expr, $chunk:expr) => {{
        let chunk: &[Vec<(&'static str, $crate::repo::Val)>] = $chunk;
        let cols: Vec<&str> = chunk[0].iter().map(|(c, _)| *c).collect();
        let mut qb =
            sqlx::QueryBuilder::new(format!("INSERT INTO {} ({}) ", $table, cols.join(", ")));
        qb.push_values(chunk, |mut b, row| {
            for (_, v) in row {
                match v {
                    $crate::repo::Val::Int(x) => b.push_bind(*x),
                    $crate::repo::Val::Text(x) => b.push_bind(x.clone()),
                    $crate::repo::Val::Date(x) => b.push_bind(*x),
                    $crate::repo::Val::Bool(x) => b.push_bind(*x),
                };
            }
        });
        qb
    }};
    ($conn:ident, $table:expr, $rows:expr, returning ext_id) => {{
        let rows: &[Vec<(&'static str, $crate::repo::Val)>] = $rows;
        let mut ids = std::collections::HashMap::<String, i64>::with_capacity(rows.len());
        if let Some(first) = rows.first() {
            let per = ($crate::repo::BATCH_PARAMS / first.len().max(1)).max(1);
            for chunk in rows.chunks(per) {
                let mut qb = $crate::repo::insert_rows!(@stmt $table, chunk);
                qb.push(" RETURNING id, ext_id");
                for row in qb.build().fetch_all(&mut **$conn).await? {
                    let c = $crate::repo::Cols::new(&row);
                    ids.insert(c.text("ext_id")?, c.i64("id")?);
                }
            }
        }
        ids
    }};
    ($conn:ident, $table:expr, $rows:expr) => {{
        let rows: &[Vec<(&'static str, $crate::repo::Val)>] = $rows;
        if let Some(first) = rows.first() {
            let per = ($crate::repo::BATCH_PARAMS / first.len().max(1)).max(1);
            for chunk in rows.chunks(per) {
                let mut qb = $crate::repo::insert_rows!(@stmt $table, chunk);
                qb.build().execute(&mut **$conn).await?;
            }
        }
    }};
}
pub(crate) use insert_rows;

/// Whether `keys` holds a value twice.
pub(crate) fn has_duplicates<'a>(keys: impl IntoIterator<Item = &'a str>) -> bool {
    let mut seen = std::collections::HashSet::new();
    keys.into_iter().any(|k| !seen.insert(k))
}

/// Fail with [`StoreError::NotFound`] unless a row with this internal id exists.
/// One page of rows filtered by one key: `$count` (`$1` = key, answering a column `n`)
/// gives the total, `$sql` (`$1` = key, `$2` = limit, `$3` = offset) the rows, each read by
/// `$read`. Evaluates to `Result<Paged<_>, StoreError>`.
macro_rules! paged_by {
    ($db:expr, $count:expr, $sql:expr, $key:expr, $page:expr, $read:expr) => {{
        let page: $crate::repo::Page = $page;
        let (total, items) = $crate::on_pool!($db, pool => {
            let total = $crate::repo::Cols::new(
                &sqlx::query($count).bind($key).fetch_one(pool).await?,
            )
            .i64("n")?;
            let items = sqlx::query($sql)
                .bind($key)
                .bind(page.limit())
                .bind(page.offset())
                .fetch_all(pool)
                .await?
                .iter()
                .map(|r| $read(&$crate::repo::Cols::new(r)))
                .collect::<Result<Vec<_>, _>>()?;
            (total, items)
        });
        Ok::<_, $crate::repo::StoreError>($crate::repo::Paged {
            items,
            total: total as u64,
            page,
        })
    }};
}
pub(crate) use paged_by;

macro_rules! ensure_exists {
    ($conn:ident, $kind:expr, $id:expr) => {{
        let kind: $crate::repo::Entity = $kind;
        let id: i64 = $id;
        let sql = format!("SELECT id FROM {} WHERE id = $1", kind.table());
        if sqlx::query(&sql)
            .bind(id)
            .fetch_optional(&mut **$conn)
            .await?
            .is_none()
        {
            return Err($crate::repo::StoreError::NotFound { kind, id });
        }
    }};
}
pub(crate) use ensure_exists;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages() {
        let p = Page::new(0, 0);
        assert_eq!((p.number, p.size), (1, 1));
        assert_eq!(Page::new(3, 20).offset(), 40);
        assert_eq!(Page::new(1, 10_000).size, Page::MAX_SIZE);
        let paged = Paged::<u8> {
            items: vec![],
            total: 41,
            page: Page::new(2, 20),
        };
        assert_eq!(paged.pages(), 3);
        assert!(paged.has_next() && paged.has_prev());
        let empty = Paged::<u8> {
            items: vec![],
            total: 0,
            page: Page::first(20),
        };
        assert_eq!(empty.pages(), 1);
        assert!(!empty.has_next() && !empty.has_prev());
    }

    #[test]
    fn sql_texts() {
        let vals = vec![("ext_id", Val::from("a")), ("name", Val::from("b"))];
        assert_eq!(
            insert_by_ext_id_sql("t", &vals),
            "INSERT INTO t (ext_id, name) VALUES ($1, $2) ON CONFLICT (ext_id) DO NOTHING \
             RETURNING id"
        );
        assert_eq!(
            update_by_ext_id_sql("t", &vals),
            "UPDATE t SET name = $2 WHERE ext_id = $1 RETURNING id"
        );
        assert_eq!(
            select_list("s", "s_", &["id", "x"]),
            "s.id AS s_id, s.x AS s_x"
        );
    }

    text_enum! {
        enum Colour { Red = "red", DarkBlue = "dark_blue" }
    }

    #[test]
    fn text_enums() {
        assert_eq!("Dark_Blue ".parse::<Colour>(), Ok(Colour::DarkBlue));
        assert_eq!(Colour::Red.to_string(), "red");
        assert!("green".parse::<Colour>().is_err());
        assert_eq!(
            serde_json::to_string(&Colour::DarkBlue).unwrap(),
            "\"dark_blue\""
        );
        assert_eq!(Colour::ALL.len(), 2);
    }
}
