//! Subscribers, their contracts, PPPoE accounts and assigned IPs, as imported from the
//! billing system (upserts by the billing system's ids), and the lookups the panel and the
//! live-session join need (PPPoE login → contract → subscriber; PESEL/NIP + contract number
//! for registration).

use std::fmt;
use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Deserializer, Serialize};
use time::{Date, OffsetDateTime};

use super::money::Money;
use super::repo::{
    has_duplicates, ids_by, insert_rows, iso_date, now, parent_id, select_list, text_enum,
    upsert_steps, Absent, Cols, Entity, RowGet, StoreError, UniqueField, Upserted, Val,
};
use super::validate::{valid_email, valid_phone, valid_postcode, Nip, Nrb, Pesel};
use super::{Db, DbTx};
use crate::{on_pool, on_tx};

text_enum! {
    /// A person (identified by PESEL) or a company (by NIP).
    pub enum SubscriberKind { Person = "person", Company = "company" }
}

text_enum! {
    pub enum ContractStatus {
        Active = "active",
        Suspended = "suspended",
        Terminated = "terminated",
    }
}

text_enum! {
    /// A fixed address, or one handed out from a pool.
    pub enum IpKind { Static = "static", Pool = "pool" }
}

/// A postal address.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Address {
    pub street: String,
    pub postcode: String,
    pub city: String,
}

/// A postcode field of an address: `NN-NNN`.
fn check_postcode(field: &'static str, code: &str) -> Result<(), StoreError> {
    if valid_postcode(code) {
        Ok(())
    } else {
        Err(StoreError::invalid(
            field,
            format!("{code:?} is not a postcode (NN-NNN, e.g. 30-001)"),
        ))
    }
}

impl fmt::Display for Address {
    /// `ul. Internetowa 1, 30-001 Kraków`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}, {} {}", self.street, self.postcode, self.city)
    }
}

fn address_vals(
    prefix: &'static [&'static str; 3],
    a: Option<&Address>,
) -> [(&'static str, Val); 3] {
    [
        (prefix[0], Val::from(a.map(|a| a.street.as_str()))),
        (prefix[1], Val::from(a.map(|a| a.postcode.as_str()))),
        (prefix[2], Val::from(a.map(|a| a.city.as_str()))),
    ]
}

fn read_address<R: RowGet>(
    c: &Cols<'_, R>,
    cols: &[&str; 3],
) -> Result<Option<Address>, sqlx::Error> {
    Ok(
        match (
            c.opt_text(cols[0])?,
            c.opt_text(cols[1])?,
            c.opt_text(cols[2])?,
        ) {
            (Some(street), Some(postcode), Some(city)) => Some(Address {
                street,
                postcode,
                city,
            }),
            _ => None,
        },
    )
}

const HOME: [&str; 3] = ["home_street", "home_postcode", "home_city"];
const CORR: [&str; 3] = ["corr_street", "corr_postcode", "corr_city"];
const INST: [&str; 3] = ["inst_street", "inst_postcode", "inst_city"];

fn required_address<R: RowGet>(c: &Cols<'_, R>, cols: &[&str; 3]) -> Result<Address, sqlx::Error> {
    Ok(Address {
        street: c.text(cols[0])?,
        postcode: c.text(cols[1])?,
        city: c.text(cols[2])?,
    })
}

fn not_blank(field: &'static str, v: &str) -> Result<(), StoreError> {
    if v.trim().is_empty() {
        Err(StoreError::invalid(field, "must not be empty"))
    } else {
        Ok(())
    }
}

fn opt_not_blank(v: &Option<String>) -> bool {
    v.as_deref().is_some_and(|s| !s.trim().is_empty())
}

// ---------------------------------------------------------------------------------------------
// Subscribers
// ---------------------------------------------------------------------------------------------

/// A subscriber as the billing system sends it.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct SubscriberRecord {
    pub ext_id: String,
    pub kind: SubscriberKind,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub company_name: Option<String>,
    pub pesel: Option<Pesel>,
    pub nip: Option<Nip>,
    pub home: Address,
    pub correspondence: Option<Address>,
    pub phone: Option<String>,
    pub email: Option<String>,
    /// The subscriber's individual account for transfers.
    pub bank_account: Option<Nrb>,
}

impl SubscriberRecord {
    /// A person needs first and last name; a company its name.
    pub fn check(&self) -> Result<(), StoreError> {
        not_blank("ext_id", &self.ext_id)?;
        match self.kind {
            SubscriberKind::Person => {
                if !opt_not_blank(&self.first_name) {
                    return Err(StoreError::invalid(
                        "first_name",
                        "a person needs a first name",
                    ));
                }
                if !opt_not_blank(&self.last_name) {
                    return Err(StoreError::invalid(
                        "last_name",
                        "a person needs a last name",
                    ));
                }
            }
            SubscriberKind::Company => {
                if !opt_not_blank(&self.company_name) {
                    return Err(StoreError::invalid(
                        "company_name",
                        "a company needs a name",
                    ));
                }
            }
        }
        check_postcode("home_postcode", &self.home.postcode)?;
        if let Some(c) = &self.correspondence {
            check_postcode("correspondence_postcode", &c.postcode)?;
        }
        if let Some(email) = self.email.as_deref().filter(|e| !e.is_empty()) {
            if !valid_email(email) {
                return Err(StoreError::invalid(
                    "email",
                    format!("{email:?} is not an e-mail address (name@domain.pl)"),
                ));
            }
        }
        if let Some(phone) = self.phone.as_deref().filter(|p| !p.is_empty()) {
            if !valid_phone(phone) {
                return Err(StoreError::invalid(
                    "phone",
                    format!(
                        "{phone:?} is not a phone number (9 to 15 digits, e.g. 12 345 67 89 \
                         or +48 12 345 67 89)"
                    ),
                ));
            }
        }
        Ok(())
    }

    fn vals(&self, updated_at: OffsetDateTime) -> Vec<(&'static str, Val)> {
        let mut v = vec![
            ("ext_id", Val::from(&self.ext_id)),
            ("kind", Val::from(self.kind.as_str())),
            ("first_name", Val::from(&self.first_name)),
            ("last_name", Val::from(&self.last_name)),
            ("company_name", Val::from(&self.company_name)),
            ("pesel", Val::from(self.pesel.as_ref().map(Pesel::as_str))),
            ("nip", Val::from(self.nip.as_ref().map(Nip::as_str))),
        ];
        v.extend(address_vals(&HOME, Some(&self.home)));
        v.extend(address_vals(&CORR, self.correspondence.as_ref()));
        v.extend([
            ("phone", Val::from(&self.phone)),
            ("email", Val::from(&self.email)),
            (
                "bank_account",
                Val::from(self.bank_account.as_ref().map(Nrb::as_str)),
            ),
            ("updated_at", Val::from(updated_at)),
        ]);
        v
    }
}

/// A stored subscriber.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subscriber {
    pub id: i64,
    pub ext_id: String,
    pub kind: SubscriberKind,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub company_name: Option<String>,
    pub pesel: Option<Pesel>,
    pub nip: Option<Nip>,
    pub home: Address,
    pub correspondence: Option<Address>,
    pub phone: Option<String>,
    pub email: Option<String>,
    pub bank_account: Option<Nrb>,
    pub updated_at: OffsetDateTime,
}

impl Subscriber {
    /// "Jan Kowalski" or the company name.
    pub fn display_name(&self) -> String {
        match self.kind {
            SubscriberKind::Company => self.company_name.clone().unwrap_or_default(),
            SubscriberKind::Person => {
                let parts = [self.first_name.as_deref(), self.last_name.as_deref()];
                parts.into_iter().flatten().collect::<Vec<_>>().join(" ")
            }
        }
    }

    /// Where letters go: the correspondence address when given, else home.
    pub fn mailing_address(&self) -> &Address {
        self.correspondence.as_ref().unwrap_or(&self.home)
    }

    pub fn to_record(&self) -> SubscriberRecord {
        SubscriberRecord {
            ext_id: self.ext_id.clone(),
            kind: self.kind,
            first_name: self.first_name.clone(),
            last_name: self.last_name.clone(),
            company_name: self.company_name.clone(),
            pesel: self.pesel.clone(),
            nip: self.nip.clone(),
            home: self.home.clone(),
            correspondence: self.correspondence.clone(),
            phone: self.phone.clone(),
            email: self.email.clone(),
            bank_account: self.bank_account.clone(),
        }
    }
}

pub(crate) const SUBSCRIBER_COLS: &[&str] = &[
    "id",
    "ext_id",
    "kind",
    "first_name",
    "last_name",
    "company_name",
    "pesel",
    "nip",
    "home_street",
    "home_postcode",
    "home_city",
    "corr_street",
    "corr_postcode",
    "corr_city",
    "phone",
    "email",
    "bank_account",
    "updated_at",
];

pub(crate) fn read_subscriber<R: RowGet>(c: &Cols<'_, R>) -> Result<Subscriber, sqlx::Error> {
    Ok(Subscriber {
        id: c.i64("id")?,
        ext_id: c.text("ext_id")?,
        kind: c.parse("kind")?,
        first_name: c.opt_text("first_name")?,
        last_name: c.opt_text("last_name")?,
        company_name: c.opt_text("company_name")?,
        pesel: c.opt_parse("pesel")?,
        nip: c.opt_parse("nip")?,
        home: required_address(c, &HOME)?,
        correspondence: read_address(c, &CORR)?,
        phone: c.opt_text("phone")?,
        email: c.opt_text("email")?,
        bank_account: c.opt_parse("bank_account")?,
        updated_at: c.ts("updated_at")?,
    })
}

impl SubscriberRecord {
    /// `self` with the fields `absent` names taken from `stored` (see [`Absent`]).
    pub fn kept(&self, stored: &SubscriberRecord, absent: &Absent) -> SubscriberRecord {
        let mut r = self.clone();
        let keep = |field: &str| absent.has(field);
        if keep("first_name") {
            r.first_name = stored.first_name.clone();
        }
        if keep("last_name") {
            r.last_name = stored.last_name.clone();
        }
        if keep("company_name") {
            r.company_name = stored.company_name.clone();
        }
        if keep("pesel") {
            r.pesel = stored.pesel.clone();
        }
        if keep("nip") {
            r.nip = stored.nip.clone();
        }
        if keep("correspondence_street") {
            r.correspondence = stored.correspondence.clone();
        }
        if keep("phone") {
            r.phone = stored.phone.clone();
        }
        if keep("email") {
            r.email = stored.email.clone();
        }
        if keep("bank_account") {
            r.bank_account = stored.bank_account.clone();
        }
        r
    }
}

fn subscriber_select() -> String {
    format!(
        "SELECT {} FROM subscribers s WHERE s.ext_id = $1",
        select_list("s", "", SUBSCRIBER_COLS)
    )
}

/// [`upsert_subscriber`], the fields `absent` names kept as stored.
pub async fn upsert_subscriber_keeping(
    tx: &mut DbTx,
    rec: &SubscriberRecord,
    absent: &Absent,
) -> Result<Upserted, StoreError> {
    if absent.is_empty() {
        return upsert_subscriber(tx, rec).await;
    }
    let select = subscriber_select();
    let stored = on_tx!(tx, conn => sqlx::query(&select)
        .bind(&rec.ext_id)
        .fetch_optional(&mut **conn)
        .await?
        .map(|r| read_subscriber(&Cols::new(&r)))
        .transpose()?);
    match stored {
        Some(s) => upsert_subscriber(tx, &rec.kept(&s.to_record(), absent)).await,
        None => upsert_subscriber(tx, rec).await,
    }
}

/// Insert or update a subscriber by `ext_id`.
pub async fn upsert_subscriber(
    tx: &mut DbTx,
    rec: &SubscriberRecord,
) -> Result<Upserted, StoreError> {
    rec.check()?;
    let select = subscriber_select();
    let vals = rec.vals(now());
    let uniques = [(UniqueField::ExtId(Entity::Subscriber), rec.ext_id.as_str())];
    let (outcome, _) = on_tx!(tx, conn => upsert_steps!(conn, "subscribers", rec, vals, &uniques, {
        sqlx::query(&select)
            .bind(&rec.ext_id)
            .fetch_optional(&mut **conn)
            .await?
            .map(|r| read_subscriber(&Cols::new(&r)).map(|s| (s.id, s.to_record())))
            .transpose()?
    }));
    Ok(outcome)
}

/// A subscriber by internal id.
pub async fn subscriber(db: &Db, id: i64) -> Result<Option<Subscriber>, StoreError> {
    let sql = format!(
        "SELECT {} FROM subscribers s WHERE s.id = $1",
        select_list("s", "", SUBSCRIBER_COLS)
    );
    Ok(on_pool!(db, pool => sqlx::query(&sql)
        .bind(id)
        .fetch_optional(pool)
        .await?
        .map(|r| read_subscriber(&Cols::new(&r)))
        .transpose()?))
}

/// A subscriber by the billing system's id.
pub async fn subscriber_by_ext_id(db: &Db, ext_id: &str) -> Result<Option<Subscriber>, StoreError> {
    let sql = format!(
        "SELECT {} FROM subscribers s WHERE s.ext_id = $1",
        select_list("s", "", SUBSCRIBER_COLS)
    );
    Ok(on_pool!(db, pool => sqlx::query(&sql)
        .bind(ext_id)
        .fetch_optional(pool)
        .await?
        .map(|r| read_subscriber(&Cols::new(&r)))
        .transpose()?))
}

// ---------------------------------------------------------------------------------------------
// Contracts
// ---------------------------------------------------------------------------------------------

/// A contract as the billing system sends it.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct ContractRecord {
    pub ext_id: String,
    pub subscriber_ext_id: String,
    /// The contract number the subscriber knows (Nr Umowy), unique.
    pub number: String,
    #[serde(with = "iso_date")]
    pub starts_on: Date,
    /// `None`: open-ended.
    #[serde(default, with = "iso_date::option")]
    pub ends_on: Option<Date>,
    pub monthly_fee: Money,
    pub tariff: String,
    pub download_kbps: u32,
    pub upload_kbps: u32,
    pub installation: Address,
    pub status: ContractStatus,
}

impl ContractRecord {
    pub fn check(&self) -> Result<(), StoreError> {
        not_blank("ext_id", &self.ext_id)?;
        not_blank("number", &self.number)?;
        if let Some(end) = self.ends_on {
            if end < self.starts_on {
                return Err(StoreError::invalid(
                    "ends_on",
                    "the contract ends before it starts",
                ));
            }
        }
        check_postcode("installation_postcode", &self.installation.postcode)
    }

    fn vals(&self, subscriber_id: i64, updated_at: OffsetDateTime) -> Vec<(&'static str, Val)> {
        let mut v = vec![
            ("ext_id", Val::from(&self.ext_id)),
            ("subscriber_id", Val::from(subscriber_id)),
            ("number", Val::from(&self.number)),
            ("starts_on", Val::from(self.starts_on)),
            ("ends_on", Val::from(self.ends_on)),
            ("monthly_fee", Val::from(self.monthly_fee)),
            ("tariff", Val::from(&self.tariff)),
            ("download_kbps", Val::from(i64::from(self.download_kbps))),
            ("upload_kbps", Val::from(i64::from(self.upload_kbps))),
        ];
        v.extend(address_vals(&INST, Some(&self.installation)));
        v.extend([
            ("status", Val::from(self.status.as_str())),
            ("updated_at", Val::from(updated_at)),
        ]);
        v
    }
}

/// A stored contract.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Contract {
    pub id: i64,
    pub ext_id: String,
    pub subscriber_id: i64,
    pub number: String,
    pub starts_on: Date,
    pub ends_on: Option<Date>,
    pub monthly_fee: Money,
    pub tariff: String,
    pub download_kbps: u32,
    pub upload_kbps: u32,
    pub installation: Address,
    pub status: ContractStatus,
    pub updated_at: OffsetDateTime,
}

impl Contract {
    pub fn to_record(&self, subscriber_ext_id: String) -> ContractRecord {
        ContractRecord {
            ext_id: self.ext_id.clone(),
            subscriber_ext_id,
            number: self.number.clone(),
            starts_on: self.starts_on,
            ends_on: self.ends_on,
            monthly_fee: self.monthly_fee,
            tariff: self.tariff.clone(),
            download_kbps: self.download_kbps,
            upload_kbps: self.upload_kbps,
            installation: self.installation.clone(),
            status: self.status,
        }
    }
}

pub(crate) const CONTRACT_COLS: &[&str] = &[
    "id",
    "ext_id",
    "subscriber_id",
    "number",
    "starts_on",
    "ends_on",
    "monthly_fee",
    "tariff",
    "download_kbps",
    "upload_kbps",
    "inst_street",
    "inst_postcode",
    "inst_city",
    "status",
    "updated_at",
];

pub(crate) fn read_contract<R: RowGet>(c: &Cols<'_, R>) -> Result<Contract, sqlx::Error> {
    Ok(Contract {
        id: c.i64("id")?,
        ext_id: c.text("ext_id")?,
        subscriber_id: c.i64("subscriber_id")?,
        number: c.text("number")?,
        starts_on: c.date("starts_on")?,
        ends_on: c.opt_date("ends_on")?,
        monthly_fee: c.money("monthly_fee")?,
        tariff: c.text("tariff")?,
        download_kbps: c.u32("download_kbps")?,
        upload_kbps: c.u32("upload_kbps")?,
        installation: required_address(c, &INST)?,
        status: c.parse("status")?,
        updated_at: c.ts("updated_at")?,
    })
}

fn contract_select() -> String {
    format!(
        "SELECT {}, p.ext_id AS parent_ext_id FROM contracts c \
         JOIN subscribers p ON p.id = c.subscriber_id WHERE c.ext_id = $1",
        select_list("c", "", CONTRACT_COLS)
    )
}

/// [`upsert_contract`], the fields `absent` names (`ends_on`) kept as stored.
pub async fn upsert_contract_keeping(
    tx: &mut DbTx,
    rec: &ContractRecord,
    absent: &Absent,
) -> Result<Upserted, StoreError> {
    if !absent.has("ends_on") {
        return upsert_contract(tx, rec).await;
    }
    let select = contract_select();
    let stored = on_tx!(tx, conn => sqlx::query(&select)
        .bind(&rec.ext_id)
        .fetch_optional(&mut **conn)
        .await?
        .map(|r| read_contract(&Cols::new(&r)))
        .transpose()?);
    let mut rec = rec.clone();
    if let Some(c) = stored {
        rec.ends_on = c.ends_on;
    }
    upsert_contract(tx, &rec).await
}

/// Insert or update a contract by `ext_id`; its subscriber is named by the subscriber's
/// `ext_id` ([`StoreError::UnknownReference`] when not stored).
pub async fn upsert_contract(tx: &mut DbTx, rec: &ContractRecord) -> Result<Upserted, StoreError> {
    rec.check()?;
    let select = contract_select();
    let uniques = [
        (UniqueField::ContractNumber, rec.number.as_str()),
        (UniqueField::ExtId(Entity::Contract), rec.ext_id.as_str()),
    ];
    let (outcome, _) = on_tx!(tx, conn => {
        let subscriber_id = parent_id!(conn, Entity::Subscriber, &rec.subscriber_ext_id);
        let vals = rec.vals(subscriber_id, now());
        upsert_steps!(conn, "contracts", rec, vals, &uniques, {
            match sqlx::query(&select).bind(&rec.ext_id).fetch_optional(&mut **conn).await? {
                None => None,
                Some(r) => {
                    let c = Cols::new(&r);
                    let stored = read_contract(&c)?;
                    Some((stored.id, stored.to_record(c.text("parent_ext_id")?)))
                }
            }
        })
    });
    Ok(outcome)
}

async fn contracts_where(db: &Db, condition: &str, id: i64) -> Result<Vec<Contract>, StoreError> {
    let sql = format!(
        "SELECT {} FROM contracts c WHERE {condition} ORDER BY c.starts_on DESC, c.id DESC",
        select_list("c", "", CONTRACT_COLS)
    );
    Ok(on_pool!(db, pool => sqlx::query(&sql)
        .bind(id)
        .fetch_all(pool)
        .await?
        .iter()
        .map(|r| read_contract(&Cols::new(r)))
        .collect::<Result<Vec<_>, _>>()?))
}

/// The contracts of a subscriber, newest first.
pub async fn contracts_of(db: &Db, subscriber_id: i64) -> Result<Vec<Contract>, StoreError> {
    contracts_where(db, "c.subscriber_id = $1", subscriber_id).await
}

/// A contract, only if it belongs to `subscriber_id`.
pub async fn contract_for(
    db: &Db,
    subscriber_id: i64,
    contract_id: i64,
) -> Result<Option<Contract>, StoreError> {
    let sql = format!(
        "SELECT {} FROM contracts c WHERE c.id = $1 AND c.subscriber_id = $2",
        select_list("c", "", CONTRACT_COLS)
    );
    Ok(on_pool!(db, pool => sqlx::query(&sql)
        .bind(contract_id)
        .bind(subscriber_id)
        .fetch_optional(pool)
        .await?
        .map(|r| read_contract(&Cols::new(&r)))
        .transpose()?))
}

// ---------------------------------------------------------------------------------------------
// PPPoE accounts
// ---------------------------------------------------------------------------------------------

/// A PPPoE account as the billing system sends it. The password is kept so that its owner
/// may reveal it to configure a router; `Debug` hides it.
#[derive(Clone, PartialEq, Eq, Deserialize)]
pub struct PppoeAccountRecord {
    pub ext_id: String,
    pub contract_ext_id: String,
    /// RADIUS User-Name, unique.
    pub login: String,
    pub password: Option<String>,
}

impl fmt::Debug for PppoeAccountRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PppoeAccountRecord")
            .field("ext_id", &self.ext_id)
            .field("contract_ext_id", &self.contract_ext_id)
            .field("login", &self.login)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .finish()
    }
}

/// A stored PPPoE account.
#[derive(Clone, PartialEq, Eq)]
pub struct PppoeAccount {
    pub id: i64,
    pub ext_id: String,
    pub contract_id: i64,
    pub login: String,
    pub password: Option<String>,
    pub updated_at: OffsetDateTime,
}

impl fmt::Debug for PppoeAccount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PppoeAccount")
            .field("id", &self.id)
            .field("ext_id", &self.ext_id)
            .field("contract_id", &self.contract_id)
            .field("login", &self.login)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("updated_at", &self.updated_at)
            .finish()
    }
}

impl PppoeAccount {
    pub fn to_record(&self, contract_ext_id: String) -> PppoeAccountRecord {
        PppoeAccountRecord {
            ext_id: self.ext_id.clone(),
            contract_ext_id,
            login: self.login.clone(),
            password: self.password.clone(),
        }
    }
}

const PPPOE_COLS: &[&str] = &[
    "id",
    "ext_id",
    "contract_id",
    "login",
    "password",
    "updated_at",
];

fn read_pppoe<R: RowGet>(c: &Cols<'_, R>) -> Result<PppoeAccount, sqlx::Error> {
    Ok(PppoeAccount {
        id: c.i64("id")?,
        ext_id: c.text("ext_id")?,
        contract_id: c.i64("contract_id")?,
        login: c.text("login")?,
        password: c.opt_text("password")?,
        updated_at: c.ts("updated_at")?,
    })
}

/// Insert or update a PPPoE account by `ext_id`; its contract is named by the contract's
/// `ext_id`. A login held by another account is [`StoreError::Duplicate`].
pub async fn upsert_pppoe_account(
    tx: &mut DbTx,
    rec: &PppoeAccountRecord,
) -> Result<Upserted, StoreError> {
    not_blank("ext_id", &rec.ext_id)?;
    not_blank("login", &rec.login)?;
    let select = pppoe_select();
    let uniques = [
        (UniqueField::PppoeLogin, rec.login.as_str()),
        (
            UniqueField::ExtId(Entity::PppoeAccount),
            rec.ext_id.as_str(),
        ),
    ];
    let (outcome, _) = on_tx!(tx, conn => {
        let contract_id = parent_id!(conn, Entity::Contract, &rec.contract_ext_id);
        let vals = vec![
            ("ext_id", Val::from(&rec.ext_id)),
            ("contract_id", Val::from(contract_id)),
            ("login", Val::from(&rec.login)),
            ("password", Val::from(&rec.password)),
            ("updated_at", Val::from(now())),
        ];
        upsert_steps!(conn, "pppoe_accounts", rec, vals, &uniques, {
            match sqlx::query(&select).bind(&rec.ext_id).fetch_optional(&mut **conn).await? {
                None => None,
                Some(r) => {
                    let c = Cols::new(&r);
                    let stored = read_pppoe(&c)?;
                    Some((stored.id, stored.to_record(c.text("parent_ext_id")?)))
                }
            }
        })
    });
    Ok(outcome)
}

fn pppoe_select() -> String {
    format!(
        "SELECT {}, p.ext_id AS parent_ext_id FROM pppoe_accounts a \
         JOIN contracts p ON p.id = a.contract_id WHERE a.ext_id = $1",
        select_list("a", "", PPPOE_COLS)
    )
}

/// [`upsert_pppoe_account`], the fields `absent` names (`password`) kept as stored.
pub async fn upsert_pppoe_account_keeping(
    tx: &mut DbTx,
    rec: &PppoeAccountRecord,
    absent: &Absent,
) -> Result<Upserted, StoreError> {
    if !absent.has("password") {
        return upsert_pppoe_account(tx, rec).await;
    }
    let select = pppoe_select();
    let stored = on_tx!(tx, conn => sqlx::query(&select)
        .bind(&rec.ext_id)
        .fetch_optional(&mut **conn)
        .await?
        .map(|r| read_pppoe(&Cols::new(&r)))
        .transpose()?);
    let mut rec = rec.clone();
    if let Some(a) = stored {
        rec.password = a.password;
    }
    upsert_pppoe_account(tx, &rec).await
}

/// The PPPoE accounts of a contract, by login.
pub async fn pppoe_accounts_of(db: &Db, contract_id: i64) -> Result<Vec<PppoeAccount>, StoreError> {
    let sql = format!(
        "SELECT {} FROM pppoe_accounts a WHERE a.contract_id = $1 ORDER BY a.login",
        select_list("a", "", PPPOE_COLS)
    );
    Ok(on_pool!(db, pool => sqlx::query(&sql)
        .bind(contract_id)
        .fetch_all(pool)
        .await?
        .iter()
        .map(|r| read_pppoe(&Cols::new(r)))
        .collect::<Result<Vec<_>, _>>()?))
}

/// The PPPoE accounts of every contract of a subscriber, by login (the panel's PPPoE page
/// and the filter for the subscriber's live sessions and history).
pub async fn pppoe_accounts_of_subscriber(
    db: &Db,
    subscriber_id: i64,
) -> Result<Vec<PppoeAccount>, StoreError> {
    let sql = format!(
        "SELECT {} FROM pppoe_accounts a JOIN contracts c ON c.id = a.contract_id \
         WHERE c.subscriber_id = $1 ORDER BY a.login",
        select_list("a", "", PPPOE_COLS)
    );
    Ok(on_pool!(db, pool => sqlx::query(&sql)
        .bind(subscriber_id)
        .fetch_all(pool)
        .await?
        .iter()
        .map(|r| read_pppoe(&Cols::new(r)))
        .collect::<Result<Vec<_>, _>>()?))
}

// ---------------------------------------------------------------------------------------------
// IP assignments
// ---------------------------------------------------------------------------------------------

/// Parse `192.0.2.10` (a single address) or `2001:db8:1::/48` (a prefix).
pub fn parse_ip_or_net(s: &str) -> Result<IpNet, ipnet::AddrParseError> {
    let s = s.trim();
    match s.parse::<IpAddr>() {
        Ok(ip) => Ok(IpNet::from(ip)),
        Err(_) => s.parse::<IpNet>(),
    }
}

/// Stored form: a bare address for a single host, `net/len` for a prefix.
pub fn ip_text(net: &IpNet) -> String {
    if net.prefix_len() == net.max_prefix_len() {
        net.addr().to_string()
    } else {
        net.to_string()
    }
}

fn deserialize_ip_or_net<'de, D: Deserializer<'de>>(d: D) -> Result<IpNet, D::Error> {
    let s = String::deserialize(d)?;
    parse_ip_or_net(&s).map_err(serde::de::Error::custom)
}

#[derive(Debug, thiserror::Error)]
#[error("not an IP address or prefix")]
struct BadIp;

/// An assigned IP as the billing system sends it.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct IpAssignmentRecord {
    pub ext_id: String,
    pub contract_ext_id: String,
    /// An address (`192.0.2.10`) or a prefix (`2001:db8:1::/48`).
    #[serde(deserialize_with = "deserialize_ip_or_net")]
    pub address: IpNet,
    pub kind: IpKind,
    #[serde(default, with = "iso_date::option")]
    pub activated_on: Option<Date>,
    /// Where this IP is used, when it differs from the contract's installation address.
    pub installation: Option<Address>,
}

/// A stored IP assignment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IpAssignment {
    pub id: i64,
    pub ext_id: String,
    pub contract_id: i64,
    pub address: IpNet,
    pub kind: IpKind,
    pub activated_on: Option<Date>,
    pub installation: Option<Address>,
    pub updated_at: OffsetDateTime,
}

impl IpAssignment {
    /// The address as shown: `192.0.2.10` or `2001:db8:1::/48`.
    pub fn address_text(&self) -> String {
        ip_text(&self.address)
    }

    pub fn to_record(&self, contract_ext_id: String) -> IpAssignmentRecord {
        IpAssignmentRecord {
            ext_id: self.ext_id.clone(),
            contract_ext_id,
            address: self.address,
            kind: self.kind,
            activated_on: self.activated_on,
            installation: self.installation.clone(),
        }
    }
}

const IP_COLS: &[&str] = &[
    "id",
    "ext_id",
    "contract_id",
    "address",
    "kind",
    "activated_on",
    "inst_street",
    "inst_postcode",
    "inst_city",
    "updated_at",
];

fn read_ip<R: RowGet>(c: &Cols<'_, R>) -> Result<IpAssignment, sqlx::Error> {
    let text = c.text("address")?;
    let address = parse_ip_or_net(&text).map_err(|_| sqlx::Error::ColumnDecode {
        index: "address".into(),
        source: Box::new(BadIp),
    })?;
    Ok(IpAssignment {
        id: c.i64("id")?,
        ext_id: c.text("ext_id")?,
        contract_id: c.i64("contract_id")?,
        address,
        kind: c.parse("kind")?,
        activated_on: c.opt_date("activated_on")?,
        installation: read_address(c, &INST)?,
        updated_at: c.ts("updated_at")?,
    })
}

/// Insert or update an IP assignment by `ext_id`; its contract is named by the contract's
/// `ext_id`.
pub async fn upsert_ip_assignment(
    tx: &mut DbTx,
    rec: &IpAssignmentRecord,
) -> Result<Upserted, StoreError> {
    not_blank("ext_id", &rec.ext_id)?;
    if let Some(a) = &rec.installation {
        check_postcode("installation_postcode", &a.postcode)?;
    }
    let select = ip_select();
    let uniques = [(
        UniqueField::ExtId(Entity::IpAssignment),
        rec.ext_id.as_str(),
    )];
    let (outcome, _) = on_tx!(tx, conn => {
        let contract_id = parent_id!(conn, Entity::Contract, &rec.contract_ext_id);
        let mut vals = vec![
            ("ext_id", Val::from(&rec.ext_id)),
            ("contract_id", Val::from(contract_id)),
            ("address", Val::from(ip_text(&rec.address).as_str())),
            ("kind", Val::from(rec.kind.as_str())),
            ("activated_on", Val::from(rec.activated_on)),
        ];
        vals.extend(address_vals(&INST, rec.installation.as_ref()));
        vals.push(("updated_at", Val::from(now())));
        upsert_steps!(conn, "ip_assignments", rec, vals, &uniques, {
            match sqlx::query(&select).bind(&rec.ext_id).fetch_optional(&mut **conn).await? {
                None => None,
                Some(r) => {
                    let c = Cols::new(&r);
                    let stored = read_ip(&c)?;
                    Some((stored.id, stored.to_record(c.text("parent_ext_id")?)))
                }
            }
        })
    });
    Ok(outcome)
}

fn ip_select() -> String {
    format!(
        "SELECT {}, p.ext_id AS parent_ext_id FROM ip_assignments i \
         JOIN contracts p ON p.id = i.contract_id WHERE i.ext_id = $1",
        select_list("i", "", IP_COLS)
    )
}

/// [`upsert_ip_assignment`], the fields `absent` names (`activated_on`, the installation
/// address) kept as stored.
pub async fn upsert_ip_assignment_keeping(
    tx: &mut DbTx,
    rec: &IpAssignmentRecord,
    absent: &Absent,
) -> Result<Upserted, StoreError> {
    if absent.is_empty() {
        return upsert_ip_assignment(tx, rec).await;
    }
    let select = ip_select();
    let stored = on_tx!(tx, conn => sqlx::query(&select)
        .bind(&rec.ext_id)
        .fetch_optional(&mut **conn)
        .await?
        .map(|r| read_ip(&Cols::new(&r)))
        .transpose()?);
    let mut rec = rec.clone();
    if let Some(i) = stored {
        if absent.has("activated_on") {
            rec.activated_on = i.activated_on;
        }
        if absent.has("installation_street") {
            rec.installation = i.installation;
        }
    }
    upsert_ip_assignment(tx, &rec).await
}

/// The IPs of a contract, by activation date then address.
pub async fn ip_assignments_of(db: &Db, contract_id: i64) -> Result<Vec<IpAssignment>, StoreError> {
    let sql = format!(
        "SELECT {} FROM ip_assignments i WHERE i.contract_id = $1 \
         ORDER BY i.activated_on, i.address, i.id",
        select_list("i", "", IP_COLS)
    );
    Ok(on_pool!(db, pool => sqlx::query(&sql)
        .bind(contract_id)
        .fetch_all(pool)
        .await?
        .iter()
        .map(|r| read_ip(&Cols::new(r)))
        .collect::<Result<Vec<_>, _>>()?))
}

/// Assignments of exactly this address (single-host entries; prefixes are not searched).
pub async fn ip_assignments_by_address(
    db: &Db,
    ip: IpAddr,
) -> Result<Vec<IpAssignment>, StoreError> {
    let sql = format!(
        "SELECT {} FROM ip_assignments i WHERE i.address = $1 ORDER BY i.id",
        select_list("i", "", IP_COLS)
    );
    Ok(on_pool!(db, pool => sqlx::query(&sql)
        .bind(ip.to_string())
        .fetch_all(pool)
        .await?
        .iter()
        .map(|r| read_ip(&Cols::new(r)))
        .collect::<Result<Vec<_>, _>>()?))
}

// ---------------------------------------------------------------------------------------------
// Joins
// ---------------------------------------------------------------------------------------------

/// `SELECT s.… AS s_…, c.… AS c_… FROM contracts c JOIN subscribers s …` + `tail`.
fn subscriber_contract_sql(from_and_where: &str) -> String {
    format!(
        "SELECT {}, {} {from_and_where}",
        select_list("s", "s_", SUBSCRIBER_COLS),
        select_list("c", "c_", CONTRACT_COLS)
    )
}

fn read_pair<R: RowGet>(r: &R) -> Result<(Subscriber, Contract), sqlx::Error> {
    Ok((
        read_subscriber(&Cols::prefixed(r, "s_"))?,
        read_contract(&Cols::prefixed(r, "c_"))?,
    ))
}

/// The subscriber and contract behind a PPPoE login (the RADIUS User-Name, exact match) —
/// the join from a live session to its owner. The contract's status is not checked here.
pub async fn subscriber_by_login(
    db: &Db,
    pppoe_login: &str,
) -> Result<Option<(Subscriber, Contract)>, StoreError> {
    let sql = subscriber_contract_sql(
        "FROM pppoe_accounts a JOIN contracts c ON c.id = a.contract_id \
         JOIN subscribers s ON s.id = c.subscriber_id WHERE a.login = $1",
    );
    Ok(on_pool!(db, pool => sqlx::query(&sql)
        .bind(pppoe_login)
        .fetch_optional(pool)
        .await?
        .map(|r| read_pair(&r))
        .transpose()?))
}

/// What "Twój panel" shows of the logged-in subscriber: him, his contracts and their IPs.
/// Read in the same query as his session and account (the select list, joins and order
/// below, after `subscribers s`).
#[derive(Debug, Clone)]
pub struct Overview {
    pub subscriber: Subscriber,
    /// Newest first (as [`contracts_of`]), each with its IPs (as [`ip_assignments_of`]).
    pub contracts: Vec<(Contract, Vec<IpAssignment>)>,
}

/// The columns of an [`Overview`] (prefixes `s_`, `c_`, `i_`).
pub(crate) fn overview_select_list() -> String {
    format!(
        "{}, {}, {}",
        select_list("s", "s_", SUBSCRIBER_COLS),
        select_list("c", "c_", CONTRACT_COLS),
        select_list("i", "i_", IP_COLS)
    )
}

/// The joins of an [`Overview`] after `subscribers s`.
pub(crate) const OVERVIEW_JOINS: &str = "LEFT JOIN contracts c ON c.subscriber_id = s.id \
     LEFT JOIN ip_assignments i ON i.contract_id = c.id";

/// The order [`read_overview`] needs (contracts newest first, then their IPs).
pub(crate) const OVERVIEW_ORDER: &str =
    "ORDER BY c.starts_on DESC, c.id DESC, i.activated_on, i.address, i.id";

/// The overview in rows selected with [`overview_select_list`]; `None` without a subscriber.
pub(crate) fn read_overview<R: RowGet>(rows: &[R]) -> Result<Option<Overview>, sqlx::Error> {
    let Some(first) = rows.first() else {
        return Ok(None);
    };
    let s = Cols::prefixed(first, "s_");
    if s.opt_i64("id")?.is_none() {
        return Ok(None);
    }
    let subscriber = read_subscriber(&s)?;
    let mut contracts: Vec<(Contract, Vec<IpAssignment>)> = Vec::new();
    for r in rows {
        let c = Cols::prefixed(r, "c_");
        let Some(contract_id) = c.opt_i64("id")? else {
            continue; // no contract at all
        };
        if contracts.last().map(|(k, _)| k.id) != Some(contract_id) {
            contracts.push((read_contract(&c)?, Vec::new()));
        }
        let i = Cols::prefixed(r, "i_");
        if i.opt_i64("id")?.is_some() {
            if let Some((_, ips)) = contracts.last_mut() {
                ips.push(read_ip(&i)?);
            }
        }
    }
    Ok(Some(Overview {
        subscriber,
        contracts,
    }))
}

/// For registration: the subscriber with this PESEL holding the contract with this number.
pub async fn subscriber_by_pesel_and_contract(
    db: &Db,
    pesel: &Pesel,
    contract_number: &str,
) -> Result<Option<(Subscriber, Contract)>, StoreError> {
    holder_of_contract(db, "pesel", pesel.as_str(), contract_number).await
}

/// For registration of a company: the subscriber with this NIP holding this contract.
pub async fn subscriber_by_nip_and_contract(
    db: &Db,
    nip: &Nip,
    contract_number: &str,
) -> Result<Option<(Subscriber, Contract)>, StoreError> {
    holder_of_contract(db, "nip", nip.as_str(), contract_number).await
}

/// The subscriber whose identifier column (`pesel` or `nip`, never user input) equals `id`
/// and who holds the contract with this number.
async fn holder_of_contract(
    db: &Db,
    id_column: &'static str,
    id: &str,
    contract_number: &str,
) -> Result<Option<(Subscriber, Contract)>, StoreError> {
    let sql = subscriber_contract_sql(&format!(
        "FROM contracts c JOIN subscribers s ON s.id = c.subscriber_id \
         WHERE c.number = $1 AND s.{id_column} = $2"
    ));
    Ok(on_pool!(db, pool => sqlx::query(&sql)
        .bind(contract_number.trim())
        .bind(id)
        .fetch_optional(pool)
        .await?
        .map(|r| read_pair(&r))
        .transpose()?))
}

// ---------------------------------------------------------------------------------------------
// Batches (import)
// ---------------------------------------------------------------------------------------------

/// The fast path `$fast` (`Result<bool, StoreError>`: `true` when it wrote every record as
/// new), else `$one` on each record in turn; evaluates to the batch function's result.
macro_rules! batch_or_each {
    ($tx:ident, $recs:ident, $absents:ident, $fast:expr, $one:path) => {{
        match $fast {
            Ok(true) => return Ok(vec![Upserted::Inserted; $recs.len()]),
            Ok(false) => {}
            Err(e) => return Err((0, e)),
        }
        let mut out = Vec::with_capacity($recs.len());
        for (i, rec) in $recs.iter().enumerate() {
            let absent = $absents.get(i).unwrap_or(Absent::NONE);
            out.push($one($tx, rec, absent).await.map_err(|e| (i, e))?);
        }
        Ok(out)
    }};
}

/// The distinct values of `keys`.
fn distinct<'a>(keys: impl Iterator<Item = &'a str>) -> Vec<&'a str> {
    let mut v: Vec<&str> = keys.collect();
    v.sort_unstable();
    v.dedup();
    v
}

/// [`upsert_subscriber_keeping`] for consecutive records of one file (each with what it lacks
/// in `absents`, none when shorter), with the same outcome and the
/// same first error (by index into `recs`). A batch of valid new subscribers is written with
/// multi-row statements; any other batch (an update, a refused record) goes record by record.
pub async fn upsert_subscribers(
    tx: &mut DbTx,
    recs: &[SubscriberRecord],
    absents: &[Absent],
) -> Result<Vec<Upserted>, (usize, StoreError)> {
    batch_or_each!(
        tx,
        recs,
        absents,
        insert_new_subscribers(tx, recs).await,
        upsert_subscriber_keeping
    )
}

/// Insert `recs` when all of them are valid and new; `false` (nothing written) otherwise.
async fn insert_new_subscribers(
    tx: &mut DbTx,
    recs: &[SubscriberRecord],
) -> Result<bool, StoreError> {
    if recs.is_empty() || recs.iter().any(|r| r.check().is_err()) {
        return Ok(recs.is_empty());
    }
    if has_duplicates(recs.iter().map(|r| r.ext_id.as_str())) {
        return Ok(false);
    }
    let written = on_tx!(tx, conn => {
        if !ids_by!(conn, "subscribers", "ext_id", recs.iter().map(|r| r.ext_id.as_str()).collect())
            .is_empty()
        {
            false
        } else {
            let updated_at = now();
            let rows: Vec<Vec<(&'static str, Val)>> =
                recs.iter().map(|r| r.vals(updated_at)).collect();
            insert_rows!(conn, "subscribers", &rows);
            true
        }
    });
    Ok(written)
}

/// [`upsert_contract`] for consecutive records, like [`upsert_subscribers`]: the fast path
/// needs valid new contracts with free numbers whose subscribers are stored.
pub async fn upsert_contracts(
    tx: &mut DbTx,
    recs: &[ContractRecord],
    absents: &[Absent],
) -> Result<Vec<Upserted>, (usize, StoreError)> {
    batch_or_each!(
        tx,
        recs,
        absents,
        insert_new_contracts(tx, recs).await,
        upsert_contract_keeping
    )
}

async fn insert_new_contracts(tx: &mut DbTx, recs: &[ContractRecord]) -> Result<bool, StoreError> {
    if recs.is_empty() || recs.iter().any(|r| r.check().is_err()) {
        return Ok(recs.is_empty());
    }
    if has_duplicates(recs.iter().map(|r| r.ext_id.as_str()))
        || has_duplicates(recs.iter().map(|r| r.number.as_str()))
    {
        return Ok(false);
    }
    let parents = distinct(recs.iter().map(|r| r.subscriber_ext_id.as_str()));
    let written = on_tx!(tx, conn => {
        let subscriber_ids = ids_by!(conn, "subscribers", "ext_id", parents.clone());
        if subscriber_ids.len() < parents.len()
            || !ids_by!(conn, "contracts", "ext_id", recs.iter().map(|r| r.ext_id.as_str()).collect())
                .is_empty()
            || !ids_by!(conn, "contracts", "number", recs.iter().map(|r| r.number.as_str()).collect())
                .is_empty()
        {
            false
        } else {
            let updated_at = now();
            let rows: Vec<Vec<(&'static str, Val)>> = recs
                .iter()
                .map(|r| r.vals(subscriber_ids[&r.subscriber_ext_id], updated_at))
                .collect();
            insert_rows!(conn, "contracts", &rows);
            true
        }
    });
    Ok(written)
}

/// [`upsert_pppoe_account`] for consecutive records, like [`upsert_subscribers`]: the fast
/// path needs valid new accounts with free logins whose contracts are stored.
pub async fn upsert_pppoe_accounts(
    tx: &mut DbTx,
    recs: &[PppoeAccountRecord],
    absents: &[Absent],
) -> Result<Vec<Upserted>, (usize, StoreError)> {
    batch_or_each!(
        tx,
        recs,
        absents,
        insert_new_pppoe_accounts(tx, recs).await,
        upsert_pppoe_account_keeping
    )
}

async fn insert_new_pppoe_accounts(
    tx: &mut DbTx,
    recs: &[PppoeAccountRecord],
) -> Result<bool, StoreError> {
    if recs.is_empty()
        || recs.iter().any(|r| {
            not_blank("ext_id", &r.ext_id).is_err() || not_blank("login", &r.login).is_err()
        })
    {
        return Ok(recs.is_empty());
    }
    if has_duplicates(recs.iter().map(|r| r.ext_id.as_str()))
        || has_duplicates(recs.iter().map(|r| r.login.as_str()))
    {
        return Ok(false);
    }
    let parents = distinct(recs.iter().map(|r| r.contract_ext_id.as_str()));
    let written = on_tx!(tx, conn => {
        let contract_ids = ids_by!(conn, "contracts", "ext_id", parents.clone());
        if contract_ids.len() < parents.len()
            || !ids_by!(conn, "pppoe_accounts", "ext_id", recs.iter().map(|r| r.ext_id.as_str()).collect())
                .is_empty()
            || !ids_by!(conn, "pppoe_accounts", "login", recs.iter().map(|r| r.login.as_str()).collect())
                .is_empty()
        {
            false
        } else {
            let updated_at = now();
            let rows: Vec<Vec<(&'static str, Val)>> = recs
                .iter()
                .map(|r| {
                    vec![
                        ("ext_id", Val::from(&r.ext_id)),
                        ("contract_id", Val::from(contract_ids[&r.contract_ext_id])),
                        ("login", Val::from(&r.login)),
                        ("password", Val::from(&r.password)),
                        ("updated_at", Val::from(updated_at)),
                    ]
                })
                .collect();
            insert_rows!(conn, "pppoe_accounts", &rows);
            true
        }
    });
    Ok(written)
}

/// [`upsert_ip_assignment`] for consecutive records, like [`upsert_subscribers`]: the fast
/// path needs valid new assignments whose contracts are stored.
pub async fn upsert_ip_assignments(
    tx: &mut DbTx,
    recs: &[IpAssignmentRecord],
    absents: &[Absent],
) -> Result<Vec<Upserted>, (usize, StoreError)> {
    batch_or_each!(
        tx,
        recs,
        absents,
        insert_new_ip_assignments(tx, recs).await,
        upsert_ip_assignment_keeping
    )
}

async fn insert_new_ip_assignments(
    tx: &mut DbTx,
    recs: &[IpAssignmentRecord],
) -> Result<bool, StoreError> {
    if recs.is_empty() || recs.iter().any(|r| not_blank("ext_id", &r.ext_id).is_err()) {
        return Ok(recs.is_empty());
    }
    if has_duplicates(recs.iter().map(|r| r.ext_id.as_str())) {
        return Ok(false);
    }
    let parents = distinct(recs.iter().map(|r| r.contract_ext_id.as_str()));
    let written = on_tx!(tx, conn => {
        let contract_ids = ids_by!(conn, "contracts", "ext_id", parents.clone());
        if contract_ids.len() < parents.len()
            || !ids_by!(conn, "ip_assignments", "ext_id", recs.iter().map(|r| r.ext_id.as_str()).collect())
                .is_empty()
        {
            false
        } else {
            let updated_at = now();
            let rows: Vec<Vec<(&'static str, Val)>> = recs
                .iter()
                .map(|r| {
                    let mut vals = vec![
                        ("ext_id", Val::from(&r.ext_id)),
                        ("contract_id", Val::from(contract_ids[&r.contract_ext_id])),
                        ("address", Val::from(ip_text(&r.address).as_str())),
                        ("kind", Val::from(r.kind.as_str())),
                        ("activated_on", Val::from(r.activated_on)),
                    ];
                    vals.extend(address_vals(&INST, r.installation.as_ref()));
                    vals.push(("updated_at", Val::from(updated_at)));
                    vals
                })
                .collect();
            insert_rows!(conn, "ip_assignments", &rows);
            true
        }
    });
    Ok(written)
}
