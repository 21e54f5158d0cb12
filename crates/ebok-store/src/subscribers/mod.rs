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

mod batch;
mod contract;
mod ip;
mod lookup;
mod pppoe;
mod subscriber;

pub(crate) use self::batch::*;
pub use self::contract::*;
pub use self::ip::*;
pub use self::lookup::*;
pub use self::pppoe::*;
pub use self::subscriber::*;

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
