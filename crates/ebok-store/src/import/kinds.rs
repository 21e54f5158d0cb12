//! One [`Kind`] per importable thing: its CSV columns, how a flat CSV row becomes the
//! store's record (JSON Lines deserialise straight into the record), which upsert stores it,
//! and where in the file a refused record points.

use std::future::Future;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};
use time::Date;

use super::read::Item;
use super::FileFormat;
use crate::billing::{
    upsert_invoice, upsert_invoices, upsert_payment, upsert_payments, InvoiceLine, InvoiceRecord,
    InvoiceStatus, PaymentRecord,
};
use crate::content::{
    upsert_faq, upsert_news, upsert_service, FaqRecord, NewsRecord, ServiceRecord,
};
use crate::money::{Money, Quantity, VatRate};
use crate::repo::{iso_date, Absent, Entity, StoreError, UniqueField, Upserted};
use crate::subscribers::{
    parse_ip_or_net, upsert_contract, upsert_contracts, upsert_ip_assignment,
    upsert_ip_assignments, upsert_pppoe_account, upsert_pppoe_accounts, upsert_subscriber,
    upsert_subscribers, Address, ContractRecord, ContractStatus, IpAssignmentRecord, IpKind,
    PppoeAccountRecord, SubscriberKind, SubscriberRecord,
};
use crate::validate::{Nip, Nrb, Pesel};
use crate::DbTx;

/// A value of a CSV row that parsed but does not make a record.
pub(super) struct FieldError {
    pub column: &'static str,
    pub reason: String,
}

pub(super) trait Kind: 'static {
    /// The store's record; also what one JSON line deserialises into.
    type Rec: DeserializeOwned + Send + Sync + 'static;
    /// One CSV row, by header names.
    type Row: DeserializeOwned;
    const ENTITY: Entity;
    /// CSV header names in the documented order; `true` = the column must be present.
    const COLUMNS: &'static [(&'static str, bool)];
    /// Consecutive CSV rows with the same ext_id make one record ([`Kind::absorb`]).
    const GROUPS_ROWS: bool = false;

    fn from_row(row: Self::Row) -> Result<Self::Rec, FieldError>;

    fn ext_id(rec: &Self::Rec) -> &str;

    /// Merge `next` into `pending` when it continues it (`Ok(None)`), else hand it back.
    fn absorb(_pending: &mut Self::Rec, next: Self::Rec) -> Result<Option<Self::Rec>, FieldError> {
        Ok(Some(next))
    }

    fn upsert<'a>(
        tx: &'a mut DbTx,
        rec: &'a Self::Rec,
    ) -> impl Future<Output = Result<Upserted, StoreError>> + Send + 'a;

    /// Records written together by [`Kind::upsert_batch`].
    const BATCH: usize = 1;

    /// Write consecutive records with the outcome of [`Kind::upsert`] on each in turn; on
    /// failure the index of the refused record (nothing after it is written).
    /// `absents[i]`: the optional fields record `i` came without, kept as stored (see
    /// [`Absent`]); kinds without optional fields ignore it.
    fn upsert_batch<'a>(
        tx: &'a mut DbTx,
        recs: &'a [Self::Rec],
        _absents: &'a [Absent],
    ) -> impl Future<Output = Result<Vec<Upserted>, (usize, StoreError)>> + Send + 'a {
        async move {
            let mut out = Vec::with_capacity(recs.len());
            for (i, rec) in recs.iter().enumerate() {
                out.push(Self::upsert(tx, rec).await.map_err(|e| (i, e))?);
            }
            Ok(out)
        }
    }

    /// The line and column a refused record points at.
    fn locate(
        e: &StoreError,
        item: &Item<Self::Rec>,
        _format: FileFormat,
    ) -> (u64, Option<String>) {
        (item.line, store_error_column(e).map(str::to_owned))
    }
}

/// The field a store error is about, named as in both formats (top-level fields only).
fn store_error_column(e: &StoreError) -> Option<&'static str> {
    match e {
        StoreError::UnknownReference { kind, .. } => match kind {
            Entity::Subscriber => Some("subscriber_ext_id"),
            Entity::Contract => Some("contract_ext_id"),
            _ => None,
        },
        StoreError::Duplicate { field, .. } => match field {
            UniqueField::ExtId(_) => Some("ext_id"),
            UniqueField::ContractNumber | UniqueField::InvoiceNumber => Some("number"),
            UniqueField::PppoeLogin => Some("login"),
            _ => None,
        },
        StoreError::Invalid { field, .. } => Some(field),
        _ => None,
    }
}

/// An address from three flat columns: all present, or (when optional) all empty.
fn flat_address(
    columns: [&'static str; 3],
    street: Option<String>,
    postcode: Option<String>,
    city: Option<String>,
) -> Result<Option<Address>, FieldError> {
    match (street, postcode, city) {
        (None, None, None) => Ok(None),
        (Some(street), Some(postcode), Some(city)) => Ok(Some(Address {
            street,
            postcode,
            city,
        })),
        (s, p, _) => {
            let missing = if s.is_none() {
                columns[0]
            } else if p.is_none() {
                columns[1]
            } else {
                columns[2]
            };
            Err(FieldError {
                column: missing,
                reason: format!(
                    "an address needs {}, {} and {} together",
                    columns[0], columns[1], columns[2]
                ),
            })
        }
    }
}

fn required_address(street: String, postcode: String, city: String) -> Address {
    Address {
        street,
        postcode,
        city,
    }
}

// ---------------------------------------------------------------------------------------------
// Subscribers, contracts, PPPoE accounts, IPs
// ---------------------------------------------------------------------------------------------

pub(super) struct Subscribers;

const CORRESPONDENCE: [&str; 3] = [
    "correspondence_street",
    "correspondence_postcode",
    "correspondence_city",
];
const INSTALLATION: [&str; 3] = [
    "installation_street",
    "installation_postcode",
    "installation_city",
];

#[derive(Deserialize)]
pub(super) struct SubscriberRow {
    ext_id: String,
    kind: SubscriberKind,
    first_name: Option<String>,
    last_name: Option<String>,
    company_name: Option<String>,
    pesel: Option<Pesel>,
    nip: Option<Nip>,
    home_street: String,
    home_postcode: String,
    home_city: String,
    correspondence_street: Option<String>,
    correspondence_postcode: Option<String>,
    correspondence_city: Option<String>,
    phone: Option<String>,
    email: Option<String>,
    bank_account: Option<Nrb>,
}

impl Kind for Subscribers {
    type Rec = SubscriberRecord;
    type Row = SubscriberRow;
    const ENTITY: Entity = Entity::Subscriber;
    const COLUMNS: &'static [(&'static str, bool)] = &[
        ("ext_id", true),
        ("kind", true),
        ("first_name", false),
        ("last_name", false),
        ("company_name", false),
        ("pesel", false),
        ("nip", false),
        ("home_street", true),
        ("home_postcode", true),
        ("home_city", true),
        ("correspondence_street", false),
        ("correspondence_postcode", false),
        ("correspondence_city", false),
        ("phone", false),
        ("email", false),
        ("bank_account", false),
    ];

    fn from_row(r: SubscriberRow) -> Result<SubscriberRecord, FieldError> {
        Ok(SubscriberRecord {
            ext_id: r.ext_id,
            kind: r.kind,
            first_name: r.first_name,
            last_name: r.last_name,
            company_name: r.company_name,
            pesel: r.pesel,
            nip: r.nip,
            home: required_address(r.home_street, r.home_postcode, r.home_city),
            correspondence: flat_address(
                CORRESPONDENCE,
                r.correspondence_street,
                r.correspondence_postcode,
                r.correspondence_city,
            )?,
            phone: r.phone,
            email: r.email,
            bank_account: r.bank_account,
        })
    }

    fn ext_id(rec: &SubscriberRecord) -> &str {
        &rec.ext_id
    }

    fn upsert<'a>(
        tx: &'a mut DbTx,
        rec: &'a SubscriberRecord,
    ) -> impl Future<Output = Result<Upserted, StoreError>> + Send + 'a {
        upsert_subscriber(tx, rec)
    }

    const BATCH: usize = 500;

    fn upsert_batch<'a>(
        tx: &'a mut DbTx,
        recs: &'a [SubscriberRecord],
        absents: &'a [Absent],
    ) -> impl Future<Output = Result<Vec<Upserted>, (usize, StoreError)>> + Send + 'a {
        upsert_subscribers(tx, recs, absents)
    }
}

pub(super) struct Contracts;

#[derive(Deserialize)]
pub(super) struct ContractRow {
    ext_id: String,
    subscriber_ext_id: String,
    number: String,
    #[serde(with = "iso_date")]
    starts_on: Date,
    #[serde(default, with = "iso_date::option")]
    ends_on: Option<Date>,
    monthly_fee: Money,
    tariff: String,
    download_kbps: u32,
    upload_kbps: u32,
    installation_street: String,
    installation_postcode: String,
    installation_city: String,
    status: ContractStatus,
}

impl Kind for Contracts {
    type Rec = ContractRecord;
    type Row = ContractRow;
    const ENTITY: Entity = Entity::Contract;
    const COLUMNS: &'static [(&'static str, bool)] = &[
        ("ext_id", true),
        ("subscriber_ext_id", true),
        ("number", true),
        ("starts_on", true),
        ("ends_on", false),
        ("monthly_fee", true),
        ("tariff", true),
        ("download_kbps", true),
        ("upload_kbps", true),
        ("installation_street", true),
        ("installation_postcode", true),
        ("installation_city", true),
        ("status", true),
    ];

    fn from_row(r: ContractRow) -> Result<ContractRecord, FieldError> {
        Ok(ContractRecord {
            ext_id: r.ext_id,
            subscriber_ext_id: r.subscriber_ext_id,
            number: r.number,
            starts_on: r.starts_on,
            ends_on: r.ends_on,
            monthly_fee: r.monthly_fee,
            tariff: r.tariff,
            download_kbps: r.download_kbps,
            upload_kbps: r.upload_kbps,
            installation: required_address(
                r.installation_street,
                r.installation_postcode,
                r.installation_city,
            ),
            status: r.status,
        })
    }

    fn ext_id(rec: &ContractRecord) -> &str {
        &rec.ext_id
    }

    fn upsert<'a>(
        tx: &'a mut DbTx,
        rec: &'a ContractRecord,
    ) -> impl Future<Output = Result<Upserted, StoreError>> + Send + 'a {
        upsert_contract(tx, rec)
    }

    const BATCH: usize = 500;

    fn upsert_batch<'a>(
        tx: &'a mut DbTx,
        recs: &'a [ContractRecord],
        absents: &'a [Absent],
    ) -> impl Future<Output = Result<Vec<Upserted>, (usize, StoreError)>> + Send + 'a {
        upsert_contracts(tx, recs, absents)
    }
}

pub(super) struct PppoeAccounts;

impl Kind for PppoeAccounts {
    type Rec = PppoeAccountRecord;
    type Row = PppoeAccountRecord;
    const ENTITY: Entity = Entity::PppoeAccount;
    const COLUMNS: &'static [(&'static str, bool)] = &[
        ("ext_id", true),
        ("contract_ext_id", true),
        ("login", true),
        ("password", false),
    ];

    fn from_row(r: PppoeAccountRecord) -> Result<PppoeAccountRecord, FieldError> {
        Ok(r)
    }

    fn ext_id(rec: &PppoeAccountRecord) -> &str {
        &rec.ext_id
    }

    fn upsert<'a>(
        tx: &'a mut DbTx,
        rec: &'a PppoeAccountRecord,
    ) -> impl Future<Output = Result<Upserted, StoreError>> + Send + 'a {
        upsert_pppoe_account(tx, rec)
    }

    const BATCH: usize = 500;

    fn upsert_batch<'a>(
        tx: &'a mut DbTx,
        recs: &'a [PppoeAccountRecord],
        absents: &'a [Absent],
    ) -> impl Future<Output = Result<Vec<Upserted>, (usize, StoreError)>> + Send + 'a {
        upsert_pppoe_accounts(tx, recs, absents)
    }
}

pub(super) struct Ips;

#[derive(Deserialize)]
pub(super) struct IpRow {
    ext_id: String,
    contract_ext_id: String,
    address: String,
    kind: IpKind,
    #[serde(default, with = "iso_date::option")]
    activated_on: Option<Date>,
    installation_street: Option<String>,
    installation_postcode: Option<String>,
    installation_city: Option<String>,
}

impl Kind for Ips {
    type Rec = IpAssignmentRecord;
    type Row = IpRow;
    const ENTITY: Entity = Entity::IpAssignment;
    const COLUMNS: &'static [(&'static str, bool)] = &[
        ("ext_id", true),
        ("contract_ext_id", true),
        ("address", true),
        ("kind", true),
        ("activated_on", false),
        ("installation_street", false),
        ("installation_postcode", false),
        ("installation_city", false),
    ];

    fn from_row(r: IpRow) -> Result<IpAssignmentRecord, FieldError> {
        let address = parse_ip_or_net(&r.address).map_err(|_| FieldError {
            column: "address",
            reason: format!(
                "{:?} is not an IP address (192.0.2.10) or prefix (2001:db8::/48)",
                r.address
            ),
        })?;
        Ok(IpAssignmentRecord {
            ext_id: r.ext_id,
            contract_ext_id: r.contract_ext_id,
            address,
            kind: r.kind,
            activated_on: r.activated_on,
            installation: flat_address(
                INSTALLATION,
                r.installation_street,
                r.installation_postcode,
                r.installation_city,
            )?,
        })
    }

    fn ext_id(rec: &IpAssignmentRecord) -> &str {
        &rec.ext_id
    }

    fn upsert<'a>(
        tx: &'a mut DbTx,
        rec: &'a IpAssignmentRecord,
    ) -> impl Future<Output = Result<Upserted, StoreError>> + Send + 'a {
        upsert_ip_assignment(tx, rec)
    }

    const BATCH: usize = 500;

    fn upsert_batch<'a>(
        tx: &'a mut DbTx,
        recs: &'a [IpAssignmentRecord],
        absents: &'a [Absent],
    ) -> impl Future<Output = Result<Vec<Upserted>, (usize, StoreError)>> + Send + 'a {
        upsert_ip_assignments(tx, recs, absents)
    }
}

// ---------------------------------------------------------------------------------------------
// Invoices and payments
// ---------------------------------------------------------------------------------------------

pub(super) struct Invoices;

/// One invoice line with its invoice's columns repeated.
#[derive(Deserialize)]
pub(super) struct InvoiceRow {
    ext_id: String,
    subscriber_ext_id: String,
    number: String,
    #[serde(with = "iso_date")]
    issued_on: Date,
    #[serde(with = "iso_date")]
    sold_on: Date,
    #[serde(with = "iso_date")]
    due_on: Date,
    net: Money,
    vat: Money,
    gross: Money,
    status: InvoiceStatus,
    ksef_number: Option<String>,
    /// On the invoice's first row; later rows may leave it empty.
    #[serde(default)]
    ksef_xml: Option<String>,
    line_position: u32,
    line_name: String,
    line_unit: String,
    line_quantity: Quantity,
    line_unit_net: Money,
    line_net: Money,
    line_vat_rate: VatRate,
    line_vat: Money,
    line_gross: Money,
}

impl Kind for Invoices {
    type Rec = InvoiceRecord;
    type Row = InvoiceRow;
    const ENTITY: Entity = Entity::Invoice;
    const COLUMNS: &'static [(&'static str, bool)] = &[
        ("ext_id", true),
        ("subscriber_ext_id", true),
        ("number", true),
        ("issued_on", true),
        ("sold_on", true),
        ("due_on", true),
        ("net", true),
        ("vat", true),
        ("gross", true),
        ("status", true),
        ("ksef_number", false),
        ("ksef_xml", false),
        ("line_position", true),
        ("line_name", true),
        ("line_unit", true),
        ("line_quantity", true),
        ("line_unit_net", true),
        ("line_net", true),
        ("line_vat_rate", true),
        ("line_vat", true),
        ("line_gross", true),
    ];
    const GROUPS_ROWS: bool = true;

    fn from_row(r: InvoiceRow) -> Result<InvoiceRecord, FieldError> {
        Ok(InvoiceRecord {
            ext_id: r.ext_id,
            subscriber_ext_id: r.subscriber_ext_id,
            number: r.number,
            issued_on: r.issued_on,
            sold_on: r.sold_on,
            due_on: r.due_on,
            net: r.net,
            vat: r.vat,
            gross: r.gross,
            status: r.status,
            ksef_number: r.ksef_number,
            ksef_xml: r.ksef_xml.filter(|x| !x.is_empty()),
            lines: vec![InvoiceLine {
                position: r.line_position,
                name: r.line_name,
                unit: r.line_unit,
                quantity: r.line_quantity,
                unit_net: r.line_unit_net,
                net: r.line_net,
                vat_rate: r.line_vat_rate,
                vat: r.line_vat,
                gross: r.line_gross,
            }],
        })
    }

    fn ext_id(rec: &InvoiceRecord) -> &str {
        &rec.ext_id
    }

    /// A row with the same ext_id adds its line; its invoice columns must repeat the first
    /// row's.
    fn absorb(
        pending: &mut InvoiceRecord,
        next: InvoiceRecord,
    ) -> Result<Option<InvoiceRecord>, FieldError> {
        if pending.ext_id != next.ext_id {
            return Ok(Some(next));
        }
        let p = &*pending;
        let differs = [
            (
                "subscriber_ext_id",
                p.subscriber_ext_id != next.subscriber_ext_id,
            ),
            ("number", p.number != next.number),
            ("issued_on", p.issued_on != next.issued_on),
            ("sold_on", p.sold_on != next.sold_on),
            ("due_on", p.due_on != next.due_on),
            ("net", p.net != next.net),
            ("vat", p.vat != next.vat),
            ("gross", p.gross != next.gross),
            ("status", p.status != next.status),
            ("ksef_number", p.ksef_number != next.ksef_number),
            (
                "ksef_xml",
                next.ksef_xml.is_some() && p.ksef_xml != next.ksef_xml,
            ),
        ];
        if let Some((column, _)) = differs.iter().find(|(_, d)| *d) {
            return Err(FieldError {
                column,
                reason: format!(
                    "differs from the first row of invoice {:?} (the invoice columns must \
                     repeat on every row of its lines)",
                    p.ext_id
                ),
            });
        }
        pending.lines.extend(next.lines);
        Ok(None)
    }

    fn upsert<'a>(
        tx: &'a mut DbTx,
        rec: &'a InvoiceRecord,
    ) -> impl Future<Output = Result<Upserted, StoreError>> + Send + 'a {
        upsert_invoice(tx, rec)
    }

    const BATCH: usize = 500;

    fn upsert_batch<'a>(
        tx: &'a mut DbTx,
        recs: &'a [InvoiceRecord],
        absents: &'a [Absent],
    ) -> impl Future<Output = Result<Vec<Upserted>, (usize, StoreError)>> + Send + 'a {
        upsert_invoices(tx, recs, absents)
    }

    /// Totals and positions point at the invoice line (its CSV row, or `lines[i]` in JSON).
    fn locate(
        e: &StoreError,
        item: &Item<InvoiceRecord>,
        format: FileFormat,
    ) -> (u64, Option<String>) {
        let lines = &item.rec.lines;
        let row_of = |i: usize| item.row_lines.get(i).copied().unwrap_or(item.line);
        let line_column = |i: usize, field: &str| match format {
            FileFormat::Csv => format!("line_{field}"),
            FileFormat::JsonLines => format!("lines[{i}].{field}"),
        };
        // The position in texts such as "line 2 gross" or "position 2 appears twice".
        let position_after = |text: &str, prefix: &str| -> Option<u32> {
            text.strip_prefix(prefix)?.split(' ').next()?.parse().ok()
        };
        match e {
            StoreError::InvoiceTotals { what, .. } => {
                if let Some(p) = position_after(what, "line ") {
                    let field = if what.ends_with("gross") {
                        "gross"
                    } else {
                        "vat"
                    };
                    if let Some(i) = lines.iter().position(|l| l.position == p) {
                        return (row_of(i), Some(line_column(i, field)));
                    }
                }
                let column = match what.as_str() {
                    "net total" => Some("net".to_owned()),
                    "VAT total" => Some("vat".to_owned()),
                    "gross total" => Some("gross".to_owned()),
                    _ => None,
                };
                (item.line, column)
            }
            StoreError::Invalid {
                field: "lines",
                reason,
            } => {
                let second = position_after(reason, "position ").and_then(|p| {
                    lines
                        .iter()
                        .enumerate()
                        .filter(|(_, l)| l.position == p)
                        .nth(1)
                        .map(|(i, _)| i)
                });
                match (second, format) {
                    (Some(i), _) => (row_of(i), Some(line_column(i, "position"))),
                    (None, FileFormat::Csv) => (item.line, Some("line_position".into())),
                    (None, FileFormat::JsonLines) => (item.line, Some("lines".into())),
                }
            }
            other => (item.line, store_error_column(other).map(str::to_owned)),
        }
    }
}

pub(super) struct Payments;

impl Kind for Payments {
    type Rec = PaymentRecord;
    type Row = PaymentRecord;
    const ENTITY: Entity = Entity::Payment;
    const COLUMNS: &'static [(&'static str, bool)] = &[
        ("ext_id", true),
        ("subscriber_ext_id", true),
        ("paid_on", true),
        ("amount", true),
        ("title", true),
        ("method", true),
    ];

    fn from_row(r: PaymentRecord) -> Result<PaymentRecord, FieldError> {
        Ok(r)
    }

    fn ext_id(rec: &PaymentRecord) -> &str {
        &rec.ext_id
    }

    fn upsert<'a>(
        tx: &'a mut DbTx,
        rec: &'a PaymentRecord,
    ) -> impl Future<Output = Result<Upserted, StoreError>> + Send + 'a {
        upsert_payment(tx, rec)
    }

    const BATCH: usize = 500;

    fn upsert_batch<'a>(
        tx: &'a mut DbTx,
        recs: &'a [PaymentRecord],
        _absents: &'a [Absent],
    ) -> impl Future<Output = Result<Vec<Upserted>, (usize, StoreError)>> + Send + 'a {
        upsert_payments(tx, recs)
    }
}

// ---------------------------------------------------------------------------------------------
// Services, news, FAQ
// ---------------------------------------------------------------------------------------------

pub(super) struct Services;

/// `true`/`false` as in JSON, and the `1`/`0`, `tak`/`nie`, `yes`/`no` of spreadsheets.
fn flexible_bool<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    let s = String::deserialize(d)?;
    match s.trim().to_lowercase().as_str() {
        "true" | "1" | "tak" | "t" | "yes" | "y" => Ok(true),
        "false" | "0" | "nie" | "n" | "no" => Ok(false),
        _ => Err(serde::de::Error::custom(format!(
            "{s:?} is not a yes/no value (true/false, 1/0, tak/nie)"
        ))),
    }
}

#[derive(Deserialize)]
pub(super) struct ServiceRow {
    ext_id: String,
    name: String,
    description: String,
    price: Money,
    #[serde(deserialize_with = "flexible_bool")]
    active: bool,
}

impl Kind for Services {
    type Rec = ServiceRecord;
    type Row = ServiceRow;
    const ENTITY: Entity = Entity::Service;
    const COLUMNS: &'static [(&'static str, bool)] = &[
        ("ext_id", true),
        ("name", true),
        ("description", true),
        ("price", true),
        ("active", true),
    ];

    fn from_row(r: ServiceRow) -> Result<ServiceRecord, FieldError> {
        Ok(ServiceRecord {
            ext_id: r.ext_id,
            name: r.name,
            description: r.description,
            price: r.price,
            active: r.active,
        })
    }

    fn ext_id(rec: &ServiceRecord) -> &str {
        &rec.ext_id
    }

    fn upsert<'a>(
        tx: &'a mut DbTx,
        rec: &'a ServiceRecord,
    ) -> impl Future<Output = Result<Upserted, StoreError>> + Send + 'a {
        upsert_service(tx, rec)
    }
}

pub(super) struct News;

impl Kind for News {
    type Rec = NewsRecord;
    type Row = NewsRecord;
    const ENTITY: Entity = Entity::News;
    const COLUMNS: &'static [(&'static str, bool)] = &[
        ("ext_id", true),
        ("title", true),
        ("body_md", true),
        ("published_at", true),
    ];

    fn from_row(r: NewsRecord) -> Result<NewsRecord, FieldError> {
        Ok(r)
    }

    fn ext_id(rec: &NewsRecord) -> &str {
        &rec.ext_id
    }

    fn upsert<'a>(
        tx: &'a mut DbTx,
        rec: &'a NewsRecord,
    ) -> impl Future<Output = Result<Upserted, StoreError>> + Send + 'a {
        upsert_news(tx, rec)
    }
}

pub(super) struct Faq;

impl Kind for Faq {
    type Rec = FaqRecord;
    type Row = FaqRecord;
    const ENTITY: Entity = Entity::Faq;
    const COLUMNS: &'static [(&'static str, bool)] = &[
        ("ext_id", true),
        ("question", true),
        ("answer_md", true),
        ("position", true),
    ];

    fn from_row(r: FaqRecord) -> Result<FaqRecord, FieldError> {
        Ok(r)
    }

    fn ext_id(rec: &FaqRecord) -> &str {
        &rec.ext_id
    }

    fn upsert<'a>(
        tx: &'a mut DbTx,
        rec: &'a FaqRecord,
    ) -> impl Future<Output = Result<Upserted, StoreError>> + Send + 'a {
        upsert_faq(tx, rec)
    }
}
