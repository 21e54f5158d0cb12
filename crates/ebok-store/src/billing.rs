//! Invoices (with lines) and payments imported from the billing system, and what the panel
//! shows of them: lists, one invoice checked against its owner, the balance and a ledger
//! with a running balance.

use serde::Deserialize;
use time::{Date, OffsetDateTime};

use super::money::{Money, Quantity, VatRate};
use super::repo::{
    has_duplicates, ids_by, insert_rows, insert_sql, iso_date, now, paged_by, parent_id,
    select_list, text_enum, upsert_steps, Absent, Cols, Entity, Page, Paged, RowGet, StoreError,
    UniqueField, Upserted, Val,
};
use super::{Db, DbTx};
use crate::{on_pool, on_tx};

text_enum! {
    pub enum InvoiceStatus {
        Issued = "issued",
        Paid = "paid",
        Overdue = "overdue",
        /// Not owed; left out of the balance.
        Cancelled = "cancelled",
    }
}

/// One line of an invoice (as imported and as stored).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct InvoiceLine {
    /// 1, 2, … — unique within the invoice.
    pub position: u32,
    pub name: String,
    /// `szt.`, `usł.`, `mies.` …
    pub unit: String,
    pub quantity: Quantity,
    pub unit_net: Money,
    pub net: Money,
    pub vat_rate: VatRate,
    pub vat: Money,
    pub gross: Money,
}

/// An invoice as the billing system sends it, with all its lines.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct InvoiceRecord {
    pub ext_id: String,
    pub subscriber_ext_id: String,
    pub number: String,
    #[serde(with = "iso_date")]
    pub issued_on: Date,
    #[serde(with = "iso_date")]
    pub sold_on: Date,
    #[serde(with = "iso_date")]
    pub due_on: Date,
    pub net: Money,
    pub vat: Money,
    pub gross: Money,
    pub status: InvoiceStatus,
    /// Number given by KSeF, the national e-invoice system, when the invoice went there
    /// (checked by [`crate::ksef::check_number`]).
    pub ksef_number: Option<String>,
    pub lines: Vec<InvoiceLine>,
    /// The invoice's FA(3) XML file, stored byte for byte (see [`crate::ksef`]); absent
    /// keeps the stored file, `null` removes it.
    #[serde(default)]
    pub ksef_xml: Option<String>,
}

impl InvoiceRecord {
    /// Every line's net + VAT = gross (and no VAT at 0%/zw/np); the totals are the sums of
    /// the lines; positions are unique; at least one line.
    pub fn check(&self) -> Result<(), StoreError> {
        if self.ext_id.trim().is_empty() {
            return Err(StoreError::invalid("ext_id", "must not be empty"));
        }
        if self.number.trim().is_empty() {
            return Err(StoreError::invalid("number", "must not be empty"));
        }
        if self.lines.is_empty() {
            return Err(StoreError::invalid(
                "lines",
                "an invoice needs at least one line",
            ));
        }
        crate::ksef::check_record(self)?;
        let mut positions: Vec<u32> = self.lines.iter().map(|l| l.position).collect();
        positions.sort_unstable();
        if let Some(w) = positions.windows(2).find(|w| w[0] == w[1]) {
            return Err(StoreError::invalid(
                "lines",
                format!("position {} appears twice", w[0]),
            ));
        }
        let mismatch = |what: String, stated: Money, computed: Money| {
            Err(StoreError::InvoiceTotals {
                number: self.number.clone(),
                what,
                stated,
                computed,
            })
        };
        for l in &self.lines {
            if l.net + l.vat != l.gross {
                return mismatch(format!("line {} gross", l.position), l.gross, l.net + l.vat);
            }
            if l.vat_rate.percent() == 0 && !l.vat.is_zero() {
                return mismatch(
                    format!("line {} VAT at {}", l.position, l.vat_rate),
                    l.vat,
                    Money::ZERO,
                );
            }
        }
        let sum = |f: fn(&InvoiceLine) -> Money| self.lines.iter().map(f).sum::<Money>();
        let (net, vat, gross) = (sum(|l| l.net), sum(|l| l.vat), sum(|l| l.gross));
        if self.net != net {
            return mismatch("net total".into(), self.net, net);
        }
        if self.vat != vat {
            return mismatch("VAT total".into(), self.vat, vat);
        }
        if self.gross != gross {
            return mismatch("gross total".into(), self.gross, gross);
        }
        Ok(())
    }
}

/// A stored invoice (its lines come with [`invoice_for`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invoice {
    pub id: i64,
    pub ext_id: String,
    pub subscriber_id: i64,
    pub number: String,
    pub issued_on: Date,
    pub sold_on: Date,
    pub due_on: Date,
    pub net: Money,
    pub vat: Money,
    pub gross: Money,
    pub status: InvoiceStatus,
    pub ksef_number: Option<String>,
    pub updated_at: OffsetDateTime,
}

impl Invoice {
    pub fn to_record(&self, subscriber_ext_id: String, lines: Vec<InvoiceLine>) -> InvoiceRecord {
        InvoiceRecord {
            ext_id: self.ext_id.clone(),
            subscriber_ext_id,
            number: self.number.clone(),
            issued_on: self.issued_on,
            sold_on: self.sold_on,
            due_on: self.due_on,
            net: self.net,
            vat: self.vat,
            gross: self.gross,
            status: self.status,
            ksef_number: self.ksef_number.clone(),
            lines,
            ksef_xml: None,
        }
    }
}

/// Totals for one VAT rate, as an invoice lists them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VatTotal {
    pub rate: VatRate,
    pub net: Money,
    pub vat: Money,
    pub gross: Money,
}

/// Sum the lines per VAT rate, in the order 23, 8, 5, 0, zw, np.
pub fn vat_totals(lines: &[InvoiceLine]) -> Vec<VatTotal> {
    VatRate::ALL
        .iter()
        .filter_map(|&rate| {
            let of_rate: Vec<&InvoiceLine> = lines.iter().filter(|l| l.vat_rate == rate).collect();
            (!of_rate.is_empty()).then(|| VatTotal {
                rate,
                net: of_rate.iter().map(|l| l.net).sum(),
                vat: of_rate.iter().map(|l| l.vat).sum(),
                gross: of_rate.iter().map(|l| l.gross).sum(),
            })
        })
        .collect()
}

const INVOICE_COLS: &[&str] = &[
    "id",
    "ext_id",
    "subscriber_id",
    "number",
    "issued_on",
    "sold_on",
    "due_on",
    "net",
    "vat",
    "gross",
    "status",
    "ksef_number",
    "updated_at",
];

const LINE_COLS: &[&str] = &[
    "position",
    "name",
    "unit",
    "quantity_milli",
    "unit_net",
    "net",
    "vat_rate",
    "vat",
    "gross",
];

fn read_invoice<R: RowGet>(c: &Cols<'_, R>) -> Result<Invoice, sqlx::Error> {
    Ok(Invoice {
        id: c.i64("id")?,
        ext_id: c.text("ext_id")?,
        subscriber_id: c.i64("subscriber_id")?,
        number: c.text("number")?,
        issued_on: c.date("issued_on")?,
        sold_on: c.date("sold_on")?,
        due_on: c.date("due_on")?,
        net: c.money("net")?,
        vat: c.money("vat")?,
        gross: c.money("gross")?,
        status: c.parse("status")?,
        ksef_number: c.opt_text("ksef_number")?,
        updated_at: c.ts("updated_at")?,
    })
}

fn read_line<R: RowGet>(c: &Cols<'_, R>) -> Result<InvoiceLine, sqlx::Error> {
    Ok(InvoiceLine {
        position: c.u32("position")?,
        name: c.text("name")?,
        unit: c.text("unit")?,
        quantity: Quantity::from_milli(c.i64("quantity_milli")?),
        unit_net: c.money("unit_net")?,
        net: c.money("net")?,
        vat_rate: c.parse("vat_rate")?,
        vat: c.money("vat")?,
        gross: c.money("gross")?,
    })
}

fn line_vals(invoice_id: i64, l: &InvoiceLine) -> Vec<(&'static str, Val)> {
    vec![
        ("invoice_id", Val::from(invoice_id)),
        ("position", Val::from(i64::from(l.position))),
        ("name", Val::from(&l.name)),
        ("unit", Val::from(&l.unit)),
        ("quantity_milli", Val::from(l.quantity.milli())),
        ("unit_net", Val::from(l.unit_net)),
        ("net", Val::from(l.net)),
        ("vat_rate", Val::from(l.vat_rate.as_str())),
        ("vat", Val::from(l.vat)),
        ("gross", Val::from(l.gross)),
    ]
}

fn lines_sql() -> String {
    format!(
        "SELECT {} FROM invoice_lines l WHERE l.invoice_id = $1 ORDER BY l.position",
        select_list("l", "", LINE_COLS)
    )
}

/// Insert or update an invoice by `ext_id` together with its lines (which replace the stored
/// ones). The totals must equal the sums of the lines ([`StoreError::InvoiceTotals`]); the
/// subscriber is named by its `ext_id`.
pub async fn upsert_invoice(tx: &mut DbTx, rec: &InvoiceRecord) -> Result<Upserted, StoreError> {
    upsert_invoice_with(tx, rec, false).await
}

/// [`upsert_invoice`]; `keep_xml`: a record without `ksef_xml` keeps the stored file
/// instead of removing it.
async fn upsert_invoice_with(
    tx: &mut DbTx,
    rec: &InvoiceRecord,
    keep_xml: bool,
) -> Result<Upserted, StoreError> {
    rec.check()?;
    let xml = crate::ksef::check_record(rec)?;
    let mut canonical = rec.clone();
    canonical.lines.sort_by_key(|l| l.position);
    // The XML is compared by its hash below, not as a field of the record.
    canonical.ksef_xml = None;
    let select = format!(
        "SELECT {}, p.ext_id AS parent_ext_id FROM invoices i \
         JOIN subscribers p ON p.id = i.subscriber_id WHERE i.ext_id = $1",
        select_list("i", "", INVOICE_COLS)
    );
    let select_lines = lines_sql();
    let uniques = [
        (UniqueField::InvoiceNumber, rec.number.as_str()),
        (UniqueField::ExtId(Entity::Invoice), rec.ext_id.as_str()),
    ];
    let outcome = on_tx!(tx, conn => {
        let subscriber_id = parent_id!(conn, Entity::Subscriber, &rec.subscriber_ext_id);
        let vals = vec![
            ("ext_id", Val::from(&rec.ext_id)),
            ("subscriber_id", Val::from(subscriber_id)),
            ("number", Val::from(&rec.number)),
            ("issued_on", Val::from(rec.issued_on)),
            ("sold_on", Val::from(rec.sold_on)),
            ("due_on", Val::from(rec.due_on)),
            ("net", Val::from(rec.net)),
            ("vat", Val::from(rec.vat)),
            ("gross", Val::from(rec.gross)),
            ("status", Val::from(rec.status.as_str())),
            ("ksef_number", Val::from(&rec.ksef_number)),
            ("updated_at", Val::from(now())),
        ];
        let (outcome, id) = upsert_steps!(conn, "invoices", &canonical, vals, &uniques, {
            match sqlx::query(&select).bind(&rec.ext_id).fetch_optional(&mut **conn).await? {
                None => None,
                Some(r) => {
                    let c = Cols::new(&r);
                    let stored = read_invoice(&c)?;
                    let lines = sqlx::query(&select_lines)
                        .bind(stored.id)
                        .fetch_all(&mut **conn)
                        .await?
                        .iter()
                        .map(|r| read_line(&Cols::new(r)))
                        .collect::<Result<Vec<_>, _>>()?;
                    Some((stored.id, stored.to_record(c.text("parent_ext_id")?, lines)))
                }
            }
        });
        if outcome != Upserted::Unchanged {
            sqlx::query("DELETE FROM invoice_lines WHERE invoice_id = $1")
                .bind(id)
                .execute(&mut **conn)
                .await?;
            for line in &canonical.lines {
                let vals = line_vals(id, line);
                let sql = insert_sql("invoice_lines", &vals);
                super::repo::bind_vals(sqlx::query(&sql), &vals)
                    .execute(&mut **conn)
                    .await?;
            }
        }
        (outcome, id)
    });
    let (outcome, id) = outcome;
    let xml_changed = match (&rec.ksef_xml, &xml) {
        (Some(text), Some(facts)) => {
            crate::ksef::put_xml(tx, id, Some((text.as_bytes(), facts))).await?
        }
        (None, _) if keep_xml => false,
        (None, _) => crate::ksef::put_xml(tx, id, None).await?,
        (Some(_), None) => false,
    };
    Ok(if xml_changed && outcome == Upserted::Unchanged {
        Upserted::Updated
    } else {
        outcome
    })
}

/// [`upsert_invoice`] for consecutive records of one file, with the same outcome and the
/// same first error (by index into `recs`). A batch of valid new invoices whose subscribers
/// are stored and whose numbers are free is written with a few multi-row statements; any
/// other batch (an update, a refused record) goes record by record.
pub async fn upsert_invoices(
    tx: &mut DbTx,
    recs: &[InvoiceRecord],
    absents: &[Absent],
) -> Result<Vec<Upserted>, (usize, StoreError)> {
    match insert_new_invoices(tx, recs).await {
        Ok(true) => return Ok(vec![Upserted::Inserted; recs.len()]),
        Ok(false) => {}
        Err(e) => return Err((0, e)),
    }
    let mut out = Vec::with_capacity(recs.len());
    for (i, rec) in recs.iter().enumerate() {
        let absent = absents.get(i).unwrap_or(Absent::NONE);
        out.push(
            upsert_invoice_keeping(tx, rec, absent)
                .await
                .map_err(|e| (i, e))?,
        );
    }
    Ok(out)
}

/// [`upsert_invoice`], the KSeF number and XML file kept as stored when `absent` names
/// `ksef_number` or `ksef_xml`.
pub async fn upsert_invoice_keeping(
    tx: &mut DbTx,
    rec: &InvoiceRecord,
    absent: &Absent,
) -> Result<Upserted, StoreError> {
    let keep_xml = absent.has("ksef_xml");
    if !absent.has("ksef_number") {
        return upsert_invoice_with(tx, rec, keep_xml).await;
    }
    let stored: Option<Option<String>> = on_tx!(tx, conn => sqlx::query_scalar(
        "SELECT ksef_number FROM invoices WHERE ext_id = $1",
    )
    .bind(&rec.ext_id)
    .fetch_optional(&mut **conn)
    .await?);
    let mut rec = rec.clone();
    if let Some(number) = stored {
        rec.ksef_number = number;
    }
    upsert_invoice_with(tx, &rec, keep_xml).await
}

/// Insert `recs` when all of them are valid, new, free of unique conflicts and their
/// subscribers are stored; `false` (nothing written) otherwise.
async fn insert_new_invoices(tx: &mut DbTx, recs: &[InvoiceRecord]) -> Result<bool, StoreError> {
    if recs.is_empty() || recs.iter().any(|r| r.check().is_err()) {
        return Ok(recs.is_empty());
    }
    if has_duplicates(recs.iter().map(|r| r.ext_id.as_str()))
        || has_duplicates(recs.iter().map(|r| r.number.as_str()))
    {
        return Ok(false);
    }
    let mut parents: Vec<&str> = recs.iter().map(|r| r.subscriber_ext_id.as_str()).collect();
    parents.sort_unstable();
    parents.dedup();
    let written = on_tx!(tx, conn => {
        let subscriber_ids = ids_by!(conn, "subscribers", "ext_id", parents.clone());
        if subscriber_ids.len() < parents.len()
            || !ids_by!(conn, "invoices", "ext_id", recs.iter().map(|r| r.ext_id.as_str()).collect())
                .is_empty()
            || !ids_by!(conn, "invoices", "number", recs.iter().map(|r| r.number.as_str()).collect())
                .is_empty()
        {
            None
        } else {
            let updated_at = now();
            let rows: Vec<Vec<(&'static str, Val)>> = recs
                .iter()
                .map(|rec| {
                    vec![
                        ("ext_id", Val::from(&rec.ext_id)),
                        ("subscriber_id", Val::from(subscriber_ids[&rec.subscriber_ext_id])),
                        ("number", Val::from(&rec.number)),
                        ("issued_on", Val::from(rec.issued_on)),
                        ("sold_on", Val::from(rec.sold_on)),
                        ("due_on", Val::from(rec.due_on)),
                        ("net", Val::from(rec.net)),
                        ("vat", Val::from(rec.vat)),
                        ("gross", Val::from(rec.gross)),
                        ("status", Val::from(rec.status.as_str())),
                        ("ksef_number", Val::from(&rec.ksef_number)),
                        ("updated_at", Val::from(updated_at)),
                    ]
                })
                .collect();
            let ids = insert_rows!(conn, "invoices", &rows, returning ext_id);
            let mut lines = Vec::new();
            for rec in recs {
                let id = ids.get(&rec.ext_id).copied().ok_or_else(|| {
                    StoreError::Database(sqlx::Error::Protocol(format!(
                        "no id returned for invoice {:?}",
                        rec.ext_id
                    )))
                })?;
                let mut sorted: Vec<&InvoiceLine> = rec.lines.iter().collect();
                sorted.sort_by_key(|l| l.position);
                lines.extend(sorted.into_iter().map(|l| line_vals(id, l)));
            }
            insert_rows!(conn, "invoice_lines", &lines);
            Some(ids)
        }
    });
    let Some(ids) = written else {
        return Ok(false);
    };
    for rec in recs {
        if let (Some(text), Some(id)) = (&rec.ksef_xml, ids.get(&rec.ext_id)) {
            if let Some(facts) = crate::ksef::check_record(rec)? {
                crate::ksef::put_xml(tx, *id, Some((text.as_bytes(), &facts))).await?;
            }
        }
    }
    Ok(true)
}

/// A subscriber's invoices, newest first (by issue date).
pub async fn invoices_of(
    db: &Db,
    subscriber_id: i64,
    page: Page,
) -> Result<Paged<Invoice>, StoreError> {
    let sql = format!(
        "SELECT {} FROM invoices i WHERE i.subscriber_id = $1 \
         ORDER BY i.issued_on DESC, i.id DESC LIMIT $2 OFFSET $3",
        select_list("i", "", INVOICE_COLS)
    );
    let count = "SELECT COUNT(*) AS n FROM invoices WHERE subscriber_id = $1";
    paged_by!(db, count, &sql, subscriber_id, page, read_invoice)
}

/// One invoice with its lines, only if it belongs to `subscriber_id` (another subscriber's
/// invoice id gives `None`, exactly like a missing one).
pub async fn invoice_for(
    db: &Db,
    subscriber_id: i64,
    invoice_id: i64,
) -> Result<Option<(Invoice, Vec<InvoiceLine>)>, StoreError> {
    let sql = format!(
        "SELECT {} FROM invoices i WHERE i.id = $1 AND i.subscriber_id = $2",
        select_list("i", "", INVOICE_COLS)
    );
    let lines = lines_sql();
    Ok(on_pool!(db, pool => {
        match sqlx::query(&sql)
            .bind(invoice_id)
            .bind(subscriber_id)
            .fetch_optional(pool)
            .await?
        {
            None => None,
            Some(r) => {
                let invoice = read_invoice(&Cols::new(&r))?;
                let lines = sqlx::query(&lines)
                    .bind(invoice.id)
                    .fetch_all(pool)
                    .await?
                    .iter()
                    .map(|r| read_line(&Cols::new(r)))
                    .collect::<Result<Vec<_>, _>>()?;
                Some((invoice, lines))
            }
        }
    }))
}

// ---------------------------------------------------------------------------------------------
// Payments
// ---------------------------------------------------------------------------------------------

/// A payment as the billing system sends it.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct PaymentRecord {
    pub ext_id: String,
    pub subscriber_ext_id: String,
    #[serde(with = "iso_date")]
    pub paid_on: Date,
    pub amount: Money,
    pub title: String,
    /// As the billing system words it: `przelew`, `gotówka`, `karta` …
    pub method: String,
}

/// A stored payment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Payment {
    pub id: i64,
    pub ext_id: String,
    pub subscriber_id: i64,
    pub paid_on: Date,
    pub amount: Money,
    pub title: String,
    pub method: String,
    pub updated_at: OffsetDateTime,
}

impl Payment {
    pub fn to_record(&self, subscriber_ext_id: String) -> PaymentRecord {
        PaymentRecord {
            ext_id: self.ext_id.clone(),
            subscriber_ext_id,
            paid_on: self.paid_on,
            amount: self.amount,
            title: self.title.clone(),
            method: self.method.clone(),
        }
    }
}

const PAYMENT_COLS: &[&str] = &[
    "id",
    "ext_id",
    "subscriber_id",
    "paid_on",
    "amount",
    "title",
    "method",
    "updated_at",
];

fn read_payment<R: RowGet>(c: &Cols<'_, R>) -> Result<Payment, sqlx::Error> {
    Ok(Payment {
        id: c.i64("id")?,
        ext_id: c.text("ext_id")?,
        subscriber_id: c.i64("subscriber_id")?,
        paid_on: c.date("paid_on")?,
        amount: c.money("amount")?,
        title: c.text("title")?,
        method: c.text("method")?,
        updated_at: c.ts("updated_at")?,
    })
}

/// Insert or update a payment by `ext_id`; the subscriber is named by its `ext_id`.
pub async fn upsert_payment(tx: &mut DbTx, rec: &PaymentRecord) -> Result<Upserted, StoreError> {
    if rec.ext_id.trim().is_empty() {
        return Err(StoreError::invalid("ext_id", "must not be empty"));
    }
    let select = format!(
        "SELECT {}, p.ext_id AS parent_ext_id FROM payments y \
         JOIN subscribers p ON p.id = y.subscriber_id WHERE y.ext_id = $1",
        select_list("y", "", PAYMENT_COLS)
    );
    let uniques = [(UniqueField::ExtId(Entity::Payment), rec.ext_id.as_str())];
    let (outcome, _) = on_tx!(tx, conn => {
        let subscriber_id = parent_id!(conn, Entity::Subscriber, &rec.subscriber_ext_id);
        let vals = vec![
            ("ext_id", Val::from(&rec.ext_id)),
            ("subscriber_id", Val::from(subscriber_id)),
            ("paid_on", Val::from(rec.paid_on)),
            ("amount", Val::from(rec.amount)),
            ("title", Val::from(&rec.title)),
            ("method", Val::from(&rec.method)),
            ("updated_at", Val::from(now())),
        ];
        upsert_steps!(conn, "payments", rec, vals, &uniques, {
            match sqlx::query(&select).bind(&rec.ext_id).fetch_optional(&mut **conn).await? {
                None => None,
                Some(r) => {
                    let c = Cols::new(&r);
                    let stored = read_payment(&c)?;
                    Some((stored.id, stored.to_record(c.text("parent_ext_id")?)))
                }
            }
        })
    });
    Ok(outcome)
}

/// [`upsert_payment`] for consecutive records of one file, like [`upsert_invoices`].
pub async fn upsert_payments(
    tx: &mut DbTx,
    recs: &[PaymentRecord],
) -> Result<Vec<Upserted>, (usize, StoreError)> {
    match insert_new_payments(tx, recs).await {
        Ok(true) => return Ok(vec![Upserted::Inserted; recs.len()]),
        Ok(false) => {}
        Err(e) => return Err((0, e)),
    }
    let mut out = Vec::with_capacity(recs.len());
    for (i, rec) in recs.iter().enumerate() {
        out.push(upsert_payment(tx, rec).await.map_err(|e| (i, e))?);
    }
    Ok(out)
}

async fn insert_new_payments(tx: &mut DbTx, recs: &[PaymentRecord]) -> Result<bool, StoreError> {
    if recs.is_empty() || recs.iter().any(|r| r.ext_id.trim().is_empty()) {
        return Ok(recs.is_empty());
    }
    if has_duplicates(recs.iter().map(|r| r.ext_id.as_str())) {
        return Ok(false);
    }
    let mut parents: Vec<&str> = recs.iter().map(|r| r.subscriber_ext_id.as_str()).collect();
    parents.sort_unstable();
    parents.dedup();
    let written = on_tx!(tx, conn => {
        let subscriber_ids = ids_by!(conn, "subscribers", "ext_id", parents.clone());
        if subscriber_ids.len() < parents.len()
            || !ids_by!(conn, "payments", "ext_id", recs.iter().map(|r| r.ext_id.as_str()).collect())
                .is_empty()
        {
            false
        } else {
            let updated_at = now();
            let rows: Vec<Vec<(&'static str, Val)>> = recs
                .iter()
                .map(|rec| {
                    vec![
                        ("ext_id", Val::from(&rec.ext_id)),
                        ("subscriber_id", Val::from(subscriber_ids[&rec.subscriber_ext_id])),
                        ("paid_on", Val::from(rec.paid_on)),
                        ("amount", Val::from(rec.amount)),
                        ("title", Val::from(&rec.title)),
                        ("method", Val::from(&rec.method)),
                        ("updated_at", Val::from(updated_at)),
                    ]
                })
                .collect();
            insert_rows!(conn, "payments", &rows);
            true
        }
    });
    Ok(written)
}

/// A subscriber's payments, newest first.
pub async fn payments_of(
    db: &Db,
    subscriber_id: i64,
    page: Page,
) -> Result<Paged<Payment>, StoreError> {
    let sql = format!(
        "SELECT {} FROM payments y WHERE y.subscriber_id = $1 \
         ORDER BY y.paid_on DESC, y.id DESC LIMIT $2 OFFSET $3",
        select_list("y", "", PAYMENT_COLS)
    );
    let count = "SELECT COUNT(*) AS n FROM payments WHERE subscriber_id = $1";
    paged_by!(db, count, &sql, subscriber_id, page, read_payment)
}

// ---------------------------------------------------------------------------------------------
// Balance
// ---------------------------------------------------------------------------------------------

/// Payments minus the gross of all invoices that are not cancelled: negative = owes money,
/// positive = overpaid.
pub async fn balance(db: &Db, subscriber_id: i64) -> Result<Money, StoreError> {
    // SUM of BIGINT is NUMERIC in PostgreSQL: cast back.
    let sql = "SELECT CAST(\
               COALESCE((SELECT SUM(amount) FROM payments WHERE subscriber_id = $1), 0) - \
               COALESCE((SELECT SUM(gross) FROM invoices \
                         WHERE subscriber_id = $1 AND status <> 'cancelled'), 0) \
               AS BIGINT) AS balance";
    let v = on_pool!(db, pool => Cols::new(
        &sqlx::query(sql).bind(subscriber_id).fetch_one(pool).await?
    )
    .i64("balance")?);
    Ok(Money::from_grosze(v))
}

/// What a ledger line is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LedgerItem {
    Invoice {
        id: i64,
        number: String,
        due_on: Date,
    },
    Payment {
        id: i64,
        title: String,
    },
}

/// One line of a subscriber's account history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LedgerEntry {
    /// Issue date of an invoice, date of a payment.
    pub date: Date,
    pub item: LedgerItem,
    /// −gross for an invoice, +amount for a payment.
    pub amount: Money,
    /// The balance after this line.
    pub balance: Money,
}

/// Invoices (not cancelled) and payments in date order (on one day invoices first), each
/// with the running balance; the last entry's balance equals [`balance`].
pub async fn ledger(db: &Db, subscriber_id: i64) -> Result<Vec<LedgerEntry>, StoreError> {
    let inv_sql = format!(
        "SELECT {} FROM invoices i WHERE i.subscriber_id = $1 AND i.status <> 'cancelled'",
        select_list("i", "", INVOICE_COLS)
    );
    let pay_sql = format!(
        "SELECT {} FROM payments y WHERE y.subscriber_id = $1",
        select_list("y", "", PAYMENT_COLS)
    );
    let (invoices, payments) = on_pool!(db, pool => {
        let invoices = sqlx::query(&inv_sql)
            .bind(subscriber_id)
            .fetch_all(pool)
            .await?
            .iter()
            .map(|r| read_invoice(&Cols::new(r)))
            .collect::<Result<Vec<_>, _>>()?;
        let payments = sqlx::query(&pay_sql)
            .bind(subscriber_id)
            .fetch_all(pool)
            .await?
            .iter()
            .map(|r| read_payment(&Cols::new(r)))
            .collect::<Result<Vec<_>, _>>()?;
        (invoices, payments)
    });
    // (date, 0 = invoice / 1 = payment, id) orders the lines.
    let mut lines: Vec<((Date, u8, i64), LedgerItem, Money)> = invoices
        .into_iter()
        .map(|i| {
            (
                (i.issued_on, 0, i.id),
                LedgerItem::Invoice {
                    id: i.id,
                    number: i.number,
                    due_on: i.due_on,
                },
                -i.gross,
            )
        })
        .chain(payments.into_iter().map(|p| {
            (
                (p.paid_on, 1, p.id),
                LedgerItem::Payment {
                    id: p.id,
                    title: p.title,
                },
                p.amount,
            )
        }))
        .collect();
    lines.sort_by_key(|(k, _, _)| *k);
    let mut running = Money::ZERO;
    Ok(lines
        .into_iter()
        .map(|((date, _, _), item, amount)| {
            running += amount;
            LedgerEntry {
                date,
                item,
                amount,
                balance: running,
            }
        })
        .collect())
}

// ---------------------------------------------------------------------------------------------
// What the Płatności and e-Faktury pages need
// ---------------------------------------------------------------------------------------------

/// The ledger of [`ledger`] newest first, one page of it, with the total count.
pub async fn ledger_page(
    db: &Db,
    subscriber_id: i64,
    page: Page,
) -> Result<Paged<LedgerEntry>, StoreError> {
    let all = ledger(db, subscriber_id).await?;
    let total = all.len() as u64;
    let skip = usize::try_from(page.offset()).unwrap_or(usize::MAX);
    let take = usize::try_from(page.limit()).unwrap_or(usize::MAX);
    let items = all.into_iter().rev().skip(skip).take(take).collect();
    Ok(Paged { items, total, page })
}

/// The subscriber's most recent invoice, if any (one row; the dashboard shows it).
pub async fn latest_invoice(db: &Db, subscriber_id: i64) -> Result<Option<Invoice>, StoreError> {
    let sql = format!(
        "SELECT {} FROM invoices i WHERE i.subscriber_id = $1 \
         ORDER BY i.issued_on DESC, i.id DESC LIMIT 1",
        select_list("i", "", INVOICE_COLS)
    );
    Ok(on_pool!(db, pool => sqlx::query(&sql)
        .bind(subscriber_id)
        .fetch_optional(pool)
        .await?
        .map(|r| read_invoice(&Cols::new(&r)))
        .transpose()?))
}

/// The unpaid invoice (issued or overdue) that fell due first, if any.
pub async fn oldest_unpaid_invoice(
    db: &Db,
    subscriber_id: i64,
) -> Result<Option<Invoice>, StoreError> {
    let sql = format!(
        "SELECT {} FROM invoices i WHERE i.subscriber_id = $1 AND i.status IN ($2, $3) \
         ORDER BY i.due_on, i.issued_on, i.id LIMIT 1",
        select_list("i", "", INVOICE_COLS)
    );
    Ok(on_pool!(db, pool => sqlx::query(&sql)
        .bind(subscriber_id)
        .bind(InvoiceStatus::Issued.as_str())
        .bind(InvoiceStatus::Overdue.as_str())
        .fetch_optional(pool)
        .await?
        .map(|r| read_invoice(&Cols::new(&r)))
        .transpose()?))
}

/// One invoice by id whoever owns it (for background work such as mail notices; pages use
/// [`invoice_for`], which checks the owner).
pub async fn invoice_by_id(db: &Db, invoice_id: i64) -> Result<Option<Invoice>, StoreError> {
    let sql = format!(
        "SELECT {} FROM invoices i WHERE i.id = $1",
        select_list("i", "", INVOICE_COLS)
    );
    Ok(on_pool!(db, pool => sqlx::query(&sql)
        .bind(invoice_id)
        .fetch_optional(pool)
        .await?
        .map(|r| read_invoice(&Cols::new(&r)))
        .transpose()?))
}

/// The ids of the stored invoices with these `ext_id`s (unknown ones are left out).
pub async fn invoice_ids_by_ext(db: &Db, ext_ids: &[&str]) -> Result<Vec<i64>, StoreError> {
    let mut out = Vec::with_capacity(ext_ids.len());
    on_pool!(db, pool => {
        for ext in ext_ids {
            if let Some(r) = sqlx::query("SELECT id FROM invoices WHERE ext_id = $1")
                .bind(*ext)
                .fetch_optional(pool)
                .await?
            {
                out.push(Cols::new(&r).i64("id")?);
            }
        }
    });
    Ok(out)
}

/// Longest recipient name in the transfer QR code.
pub const QR_RECIPIENT_MAX: usize = 20;
/// Longest transfer title in the transfer QR code.
pub const QR_TITLE_MAX: usize = 32;

/// Keep a text to what the banks' 2D code allows: letters (Polish ones included), digits,
/// space and `,./-@#&*_`; anything else becomes a space, runs of spaces one, at most `max`
/// characters.
pub fn qr_text(s: &str, max: usize) -> String {
    const POLISH: &str = "ąćęłńóśźżĄĆĘŁŃÓŚŹŻ";
    let mut out = String::new();
    for c in s.chars() {
        let c = if c.is_ascii_alphanumeric() || POLISH.contains(c) || ",./-@#&*_".contains(c) {
            c
        } else {
            ' '
        };
        if c == ' ' && (out.is_empty() || out.ends_with(' ')) {
            continue;
        }
        out.push(c);
    }
    out.chars()
        .take(max)
        .collect::<String>()
        .trim_end()
        .to_owned()
}

/// The one-line payload of the Polish banks' transfer QR code (ZBP recommendation of
/// 2013): `NIP|PL|NRB|amount in grosze (≥ 6 digits)|recipient (≤ 20)|title (≤ 32)|||`.
/// The recipient's NIP is given as 10 digits or left empty; a negative amount counts as 0.
pub fn transfer_qr_payload(
    recipient_nip: Option<&str>,
    account: &super::validate::Nrb,
    amount: Money,
    recipient: &str,
    title: &str,
) -> String {
    let nip: String = recipient_nip
        .unwrap_or("")
        .chars()
        .filter(char::is_ascii_digit)
        .collect();
    let nip = if nip.len() == 10 { nip } else { String::new() };
    format!(
        "{nip}|PL|{}|{:06}|{}|{}|||",
        account.as_str(),
        amount.grosze().max(0),
        qr_text(recipient, QR_RECIPIENT_MAX),
        qr_text(title, QR_TITLE_MAX),
    )
}

/// The highest invoice id (0 without invoices): new invoices get higher ids.
pub async fn max_invoice_id(db: &Db) -> Result<i64, StoreError> {
    let sql = "SELECT COALESCE(MAX(id), 0) AS m FROM invoices";
    Ok(on_pool!(db, pool => Cols::new(&sqlx::query(sql).fetch_one(pool).await?).i64("m")?))
}

/// Ids of invoices with `after < id <= upto`, ascending.
pub async fn invoice_ids_between(db: &Db, after: i64, upto: i64) -> Result<Vec<i64>, StoreError> {
    let sql = "SELECT id FROM invoices WHERE id > $1 AND id <= $2 ORDER BY id";
    Ok(on_pool!(db, pool => sqlx::query(sql)
        .bind(after)
        .bind(upto)
        .fetch_all(pool)
        .await?
        .iter()
        .map(|r| Cols::new(r).i64("id"))
        .collect::<Result<Vec<_>, _>>()?))
}
