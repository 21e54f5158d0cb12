//! KSeF, the national e-invoice system: the KSeF number's checks (shape, seller's NIP,
//! date, CRC-8) and each invoice's FA(3) XML as the billing system sent it — stored byte
//! for byte beside the invoice with its SHA-256, which the verification QR code (KOD I)
//! carries. The XML's own checks are in [`fa3`]; [`write`] writes one from a record.

pub mod fa3;
pub mod write;

use sha2::{Digest, Sha256};
use time::{Date, Month};

use crate::billing::InvoiceRecord;
use crate::repo::StoreError;
use crate::validate;
use crate::{on_pool, on_tx, Db, DbTx};

pub use fa3::{check_xml, Fa3Facts, MAX_XML_BYTES};
pub use write::{fa3_xml, Party};

/// Characters of a KSeF number: `NIP(10)-YYYYMMDD-XXXXXXXXXXXX-CC`.
pub const NUMBER_LEN: usize = 35;

/// CRC-8 as KSeF computes the last two characters of its numbers: polynomial 0x07, initial
/// value 0, no reflection, no final xor.
pub fn crc8(data: &[u8]) -> u8 {
    data.iter().fold(0u8, |mut crc, b| {
        crc ^= b;
        for _ in 0..8 {
            crc = if crc & 0x80 != 0 {
                (crc << 1) ^ 0x07
            } else {
                crc << 1
            };
        }
        crc
    })
}

/// `data` (the first 32 characters of a KSeF number) with its checksum appended.
pub fn with_checksum(data: &str) -> String {
    format!("{data}-{:02X}", crc8(data.as_bytes()))
}

/// Why a text is not a KSeF number.
pub fn check_number(number: &str) -> Result<(), String> {
    let b = number.as_bytes();
    if b.len() != NUMBER_LEN || !number.is_ascii() {
        return Err(format!(
            "a KSeF number has {NUMBER_LEN} characters NIP-YYYYMMDD-XXXXXXXXXXXX-CC, not {:?}",
            number
        ));
    }
    if b[10] != b'-' || b[19] != b'-' || b[32] != b'-' {
        return Err(format!(
            "{number:?}: the parts NIP-YYYYMMDD-XXXXXXXXXXXX-CC are separated by dashes"
        ));
    }
    let nip = &number[..10];
    if !nip.bytes().all(|c| c.is_ascii_digit()) {
        return Err(format!("{number:?}: the seller's NIP must be 10 digits"));
    }
    validate::nip(nip).map_err(|e| format!("{number:?}: seller's {e}"))?;
    let day = &number[11..19];
    if !day.bytes().all(|c| c.is_ascii_digit()) || date_of(day).is_none() {
        return Err(format!("{number:?}: {day:?} is not a date YYYYMMDD"));
    }
    let upper_hex = |s: &str| s.bytes().all(|c| matches!(c, b'0'..=b'9' | b'A'..=b'F'));
    if !upper_hex(&number[20..32]) {
        return Err(format!(
            "{number:?}: the technical part must be 12 upper-case hex digits"
        ));
    }
    let stated = &number[33..];
    let computed = format!("{:02X}", crc8(&b[..32]));
    if !upper_hex(stated) || stated != computed {
        return Err(format!(
            "{number:?}: checksum {stated:?} does not match, CRC-8 of the first 32 characters is {computed:?}"
        ));
    }
    Ok(())
}

/// The seller's NIP a valid KSeF number starts with.
pub fn seller_of(number: &str) -> &str {
    number.get(..10).unwrap_or("")
}

fn date_of(yyyymmdd: &str) -> Option<Date> {
    let y: i32 = yyyymmdd.get(..4)?.parse().ok()?;
    let m: u8 = yyyymmdd.get(4..6)?.parse().ok()?;
    let d: u8 = yyyymmdd.get(6..8)?.parse().ok()?;
    Date::from_calendar_date(y, Month::try_from(m).ok()?, d).ok()
}

/// SHA-256 of the XML file's bytes.
pub fn sha256(xml: &[u8]) -> [u8; 32] {
    Sha256::digest(xml).into()
}

/// Base64URL without padding (RFC 4648 §5), as KOD I carries the file's hash.
pub fn base64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(char::from(ALPHABET[(n >> (18 - 6 * i)) as usize & 63]));
        }
    }
    out
}

/// KOD I, the verification link of an invoice: `https://{host}/invoice/{seller NIP}/{issue
/// date DD-MM-RRRR}/{Base64URL of the XML's SHA-256}`.
pub fn verification_url(host: &str, seller_nip: &str, issued_on: Date, sha256: &[u8]) -> String {
    format!(
        "https://{host}/invoice/{seller_nip}/{:02}-{:02}-{:04}/{}",
        issued_on.day(),
        u8::from(issued_on.month()),
        issued_on.year(),
        base64url(sha256)
    )
}

/// An invoice record's KSeF checks: its number ([`check_number`]) and its XML file
/// ([`check_xml`]), whose number (P_2) and issue date (P_1) must be the record's and whose
/// seller must be the one the KSeF number names. The XML's facts when it has one.
pub fn check_record(rec: &InvoiceRecord) -> Result<Option<Fa3Facts>, StoreError> {
    if let Some(number) = &rec.ksef_number {
        check_number(number).map_err(|e| StoreError::invalid("ksef_number", e))?;
    }
    let Some(xml) = &rec.ksef_xml else {
        return Ok(None);
    };
    let facts = check_xml(xml.as_bytes()).map_err(|e| StoreError::invalid("ksef_xml", e))?;
    if facts.number != rec.number {
        return Err(StoreError::invalid(
            "ksef_xml",
            format!(
                "the XML's invoice number P_2 {:?} is not the record's number {:?}",
                facts.number, rec.number
            ),
        ));
    }
    if facts.issued_on != rec.issued_on {
        return Err(StoreError::invalid(
            "ksef_xml",
            format!(
                "the XML's issue date P_1 {} is not the record's issued_on {}",
                facts.issued_on, rec.issued_on
            ),
        ));
    }
    if let Some(number) = &rec.ksef_number {
        if seller_of(number) != facts.seller_nip {
            return Err(StoreError::invalid(
                "ksef_number",
                format!(
                    "{number:?} names the seller {:?}, the XML's seller (Podmiot1) is {:?}",
                    seller_of(number),
                    facts.seller_nip
                ),
            ));
        }
    }
    Ok(Some(facts))
}

/// What the panel needs of a stored XML without reading it: the seller's NIP (Podmiot1)
/// and the file's SHA-256.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredXml {
    pub seller_nip: String,
    pub sha256: Vec<u8>,
    pub size: i64,
}

/// Store `xml` as invoice `invoice_id`'s FA(3) file, replacing the one stored; `None`
/// removes it. `true` when anything changed (the same bytes again change nothing). The
/// caller has checked the XML with [`check_xml`].
pub(crate) async fn put_xml(
    tx: &mut DbTx,
    invoice_id: i64,
    xml: Option<(&[u8], &Fa3Facts)>,
) -> Result<bool, StoreError> {
    let stored: Option<Vec<u8>> = on_tx!(tx, conn => sqlx::query_scalar(
        "SELECT sha256 FROM ksef_invoices WHERE invoice_id = $1",
    )
    .bind(invoice_id)
    .fetch_optional(&mut **conn)
    .await?);
    let Some((bytes, facts)) = xml else {
        if stored.is_some() {
            on_tx!(tx, conn => sqlx::query("DELETE FROM ksef_invoices WHERE invoice_id = $1")
                .bind(invoice_id)
                .execute(&mut **conn)
                .await
                .map(drop)?);
        }
        return Ok(stored.is_some());
    };
    let digest = sha256(bytes).to_vec();
    if stored.as_ref() == Some(&digest) {
        return Ok(false);
    }
    let size = i64::try_from(bytes.len()).unwrap_or(i64::MAX);
    on_tx!(tx, conn => {
        sqlx::query("DELETE FROM ksef_invoices WHERE invoice_id = $1")
            .bind(invoice_id)
            .execute(&mut **conn)
            .await?;
        sqlx::query(
            "INSERT INTO ksef_invoices (invoice_id, seller_nip, sha256, size, xml) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(invoice_id)
        .bind(&facts.seller_nip)
        .bind(&digest)
        .bind(size)
        .bind(bytes)
        .execute(&mut **conn)
        .await?;
    });
    Ok(true)
}

/// The stored XML's facts of invoice `invoice_id`, when it has one, only if the invoice
/// belongs to `subscriber_id`.
pub async fn stored_xml(
    db: &Db,
    subscriber_id: i64,
    invoice_id: i64,
) -> Result<Option<StoredXml>, StoreError> {
    let sql = "SELECT k.seller_nip, k.sha256, k.size FROM ksef_invoices k \
               JOIN invoices i ON i.id = k.invoice_id \
               WHERE k.invoice_id = $1 AND i.subscriber_id = $2";
    let row: Option<(String, Vec<u8>, i64)> = on_pool!(db, pool => sqlx::query_as(sql)
        .bind(invoice_id)
        .bind(subscriber_id)
        .fetch_optional(pool)
        .await?);
    Ok(row.map(|(seller_nip, sha256, size)| StoredXml {
        seller_nip,
        sha256,
        size,
    }))
}

/// The XML file of invoice `invoice_id`, byte for byte, only if the invoice belongs to
/// `subscriber_id` (another subscriber's invoice gives `None`, like a missing one).
pub async fn xml_for(
    db: &Db,
    subscriber_id: i64,
    invoice_id: i64,
) -> Result<Option<Vec<u8>>, StoreError> {
    let sql = "SELECT k.xml FROM ksef_invoices k JOIN invoices i ON i.id = k.invoice_id \
               WHERE k.invoice_id = $1 AND i.subscriber_id = $2";
    Ok(on_pool!(db, pool => sqlx::query_scalar(sql)
        .bind(invoice_id)
        .bind(subscriber_id)
        .fetch_optional(pool)
        .await?))
}

/// Of `invoice_ids`, those with a stored XML file (for the invoice list's links).
pub async fn with_xml(db: &Db, invoice_ids: &[i64]) -> Result<Vec<i64>, StoreError> {
    let mut out = Vec::new();
    for chunk in invoice_ids.chunks(100) {
        let marks: Vec<String> = (1..=chunk.len()).map(|i| format!("${i}")).collect();
        let sql = format!(
            "SELECT invoice_id FROM ksef_invoices WHERE invoice_id IN ({})",
            marks.join(", ")
        );
        let ids: Vec<i64> = on_pool!(db, pool => {
            let mut q = sqlx::query_scalar(&sql);
            for id in chunk {
                q = q.bind(*id);
            }
            q.fetch_all(pool).await?
        });
        out.extend(ids);
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
