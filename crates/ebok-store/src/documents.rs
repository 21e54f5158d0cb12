//! Documents the ISP publishes in the panel: terms (regulamin), price lists (cennik),
//! contracts (umowa), annexes (aneks) and general terms (ogólne warunki), as PDFs kept in
//! the database. A general document is for everyone; one bound to a contract is only for
//! that contract's holder. Withdrawing keeps the row (and its bytes) for the record and
//! takes it out of every list.

use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use super::repo::{now, text_enum, Cols, RowGet, StoreError};
use super::{Db, DbTx};
use crate::{on_pool, on_tx};

/// Largest PDF accepted.
pub const MAX_DOCUMENT_BYTES: usize = 10 * 1024 * 1024;
/// Longest title.
pub const MAX_TITLE_CHARS: usize = 200;

text_enum! {
    pub enum DocumentKind {
        /// Regulamin.
        Terms = "terms",
        /// Cennik.
        PriceList = "price_list",
        /// Umowa.
        Contract = "contract",
        /// Aneks.
        Annex = "annex",
        /// Ogólne warunki.
        GeneralTerms = "general_terms",
    }
}

/// Why bytes are not a PDF we publish.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PdfError {
    #[error("the document is empty")]
    Empty,
    #[error("the document is {size} bytes, more than the {max} allowed")]
    TooLarge { size: usize, max: usize },
    #[error("the document is not a PDF (it must start with %PDF- and end with %%EOF)")]
    NotPdf,
}

/// Check by content that `bytes` are one PDF file of an acceptable size: the `%PDF-` header
/// at the start and the `%%EOF` marker in the last kilobyte (trailing whitespace allowed).
pub fn check_pdf(bytes: &[u8]) -> Result<(), PdfError> {
    if bytes.is_empty() {
        return Err(PdfError::Empty);
    }
    if bytes.len() > MAX_DOCUMENT_BYTES {
        return Err(PdfError::TooLarge {
            size: bytes.len(),
            max: MAX_DOCUMENT_BYTES,
        });
    }
    if !bytes.starts_with(b"%PDF-") {
        return Err(PdfError::NotPdf);
    }
    let tail = &bytes[bytes.len().saturating_sub(1024)..];
    let end = tail
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(0, |i| i + 1);
    if !tail[..end].ends_with(b"%%EOF") {
        return Err(PdfError::NotPdf);
    }
    Ok(())
}

/// A document to publish.
#[derive(Clone, Debug)]
pub struct NewDocument<'a> {
    pub kind: DocumentKind,
    pub title: &'a str,
    /// The contract (by the billing system's id) whose holder alone may see it; `None`:
    /// everyone.
    pub contract_ext_id: Option<&'a str>,
    pub pdf: &'a [u8],
}

/// A stored document without its bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Document {
    pub id: i64,
    pub kind: DocumentKind,
    pub title: String,
    pub contract_id: Option<i64>,
    /// The contract's number (per-contract documents).
    pub contract_number: Option<String>,
    pub size: i64,
    /// SHA-256 of the bytes, lowercase hex.
    pub sha256: String,
    pub published_at: OffsetDateTime,
    pub withdrawn_at: Option<OffsetDateTime>,
}

const SELECT: &str = "SELECT d.id, d.kind, d.title, d.contract_id, c.number AS contract_number, \
                      d.size, d.sha256, d.published_at, d.withdrawn_at \
                      FROM documents d LEFT JOIN contracts c ON c.id = d.contract_id";

fn read_document<R: RowGet>(c: &Cols<'_, R>) -> Result<Document, sqlx::Error> {
    Ok(Document {
        id: c.i64("id")?,
        kind: c.parse("kind")?,
        title: c.text("title")?,
        contract_id: c.opt_i64("contract_id")?,
        contract_number: c.opt_text("contract_number")?,
        size: c.i64("size")?,
        sha256: c.text("sha256")?,
        published_at: c.ts("published_at")?,
        withdrawn_at: c.opt_ts("withdrawn_at")?,
    })
}

/// Store a document (checked with [`check_pdf`]; the title trimmed, 1–200 characters, no
/// control characters; the contract must be known). Gives the new document.
pub async fn publish(tx: &mut DbTx, doc: &NewDocument<'_>) -> Result<Document, StoreError> {
    check_pdf(doc.pdf).map_err(|e| StoreError::invalid("pdf", e.to_string()))?;
    let title = doc.title.trim();
    if title.is_empty() {
        return Err(StoreError::invalid("title", "must not be empty"));
    }
    if title.chars().count() > MAX_TITLE_CHARS {
        return Err(StoreError::invalid(
            "title",
            format!("at most {MAX_TITLE_CHARS} characters"),
        ));
    }
    if title.chars().any(char::is_control) {
        return Err(StoreError::invalid(
            "title",
            "must not hold control characters",
        ));
    }
    let sha = super::auth::hex(&Sha256::digest(doc.pdf));
    let at = now();
    let insert = "INSERT INTO documents \
                  (kind, title, contract_id, pdf, size, sha256, published_at) \
                  VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id";
    let id: i64 = on_tx!(tx, conn => {
        let mut contract_id = None;
        if let Some(ext) = doc.contract_ext_id {
            let found = sqlx::query("SELECT id FROM contracts WHERE ext_id = $1")
                .bind(ext)
                .fetch_optional(&mut **conn)
                .await?;
            let Some(found) = found else {
                return Err(StoreError::UnknownReference {
                    kind: super::repo::Entity::Contract,
                    ext_id: ext.to_owned(),
                });
            };
            contract_id = Some(Cols::new(&found).i64("id")?);
        }
        let row = sqlx::query(insert)
            .bind(doc.kind.as_str())
            .bind(title)
            .bind(contract_id)
            .bind(doc.pdf)
            .bind(doc.pdf.len() as i64)
            .bind(&sha)
            .bind(at.unix_timestamp())
            .fetch_one(&mut **conn)
            .await?;
        Cols::new(&row).i64("id")?
    });
    let sql = format!("{SELECT} WHERE d.id = $1");
    Ok(on_tx!(tx, conn => read_document(&Cols::new(
        &sqlx::query(&sql).bind(id).fetch_one(&mut **conn).await?
    ))?))
}

/// Withdraw a document: it leaves every list and can no longer be downloaded. False when
/// there is no such document or it was withdrawn already.
pub async fn withdraw(tx: &mut DbTx, id: i64) -> Result<bool, StoreError> {
    let sql = "UPDATE documents SET withdrawn_at = $1 WHERE id = $2 AND withdrawn_at IS NULL";
    let done = on_tx!(tx, conn => sqlx::query(sql)
        .bind(now().unix_timestamp())
        .bind(id)
        .execute(&mut **conn)
        .await?
        .rows_affected());
    Ok(done > 0)
}

/// Every document, withdrawn ones too, newest first (for the operators).
pub async fn all_documents(db: &Db) -> Result<Vec<Document>, StoreError> {
    let sql = format!("{SELECT} ORDER BY d.published_at DESC, d.id DESC");
    Ok(on_pool!(db, pool => sqlx::query(&sql)
        .fetch_all(pool)
        .await?
        .iter()
        .map(|r| read_document(&Cols::new(r)))
        .collect::<Result<Vec<_>, _>>()?))
}

/// What a reader may see: the general documents in force and, for a subscriber, those of
/// the subscriber's own contracts; newest first.
pub async fn visible_documents(
    db: &Db,
    subscriber_id: Option<i64>,
) -> Result<Vec<Document>, StoreError> {
    let sql = format!(
        "{SELECT} WHERE d.withdrawn_at IS NULL \
         AND (d.contract_id IS NULL OR c.subscriber_id = $1) \
         ORDER BY d.contract_id IS NOT NULL, d.published_at DESC, d.id DESC"
    );
    // No subscriber: a contract id that cannot exist keeps the one SQL text.
    let sub = subscriber_id.unwrap_or(-1);
    Ok(on_pool!(db, pool => sqlx::query(&sql)
        .bind(sub)
        .fetch_all(pool)
        .await?
        .iter()
        .map(|r| read_document(&Cols::new(r)))
        .collect::<Result<Vec<_>, _>>()?))
}

/// One document in force with its bytes, when the reader may see it (general, or of one of
/// `subscriber_id`'s contracts); `None` otherwise, whether it does not exist, was withdrawn
/// or belongs to someone else.
pub async fn visible_pdf(
    db: &Db,
    id: i64,
    subscriber_id: Option<i64>,
) -> Result<Option<(Document, Vec<u8>)>, StoreError> {
    let sql = format!(
        "{} WHERE d.id = $1 AND d.withdrawn_at IS NULL \
         AND (d.contract_id IS NULL OR c.subscriber_id = $2)",
        SELECT.replacen("d.withdrawn_at", "d.withdrawn_at, d.pdf", 1)
    );
    let sub = subscriber_id.unwrap_or(-1);
    Ok(on_pool!(db, pool => {
        match sqlx::query(&sql).bind(id).bind(sub).fetch_optional(pool).await? {
            None => None,
            Some(r) => {
                let doc = read_document(&Cols::new(&r))?;
                let pdf: Vec<u8> = sqlx::Row::try_get(&r, "pdf")?;
                Some((doc, pdf))
            }
        }
    }))
}

#[cfg(test)]
#[path = "documents_tests.rs"]
pub(crate) mod tests;
