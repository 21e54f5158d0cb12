//! File import from the billing system (`ebok import <kind> FILE`): CSV or JSON Lines, read
//! as a stream on a blocking thread and upserted by the billing system's ids in one
//! transaction per file. A bad row rolls the whole file back and is reported by file, line,
//! column and reason. The formats are documented in `docs/import.md`.

use std::fmt;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::{Duration, Instant};

use crate::repo::{StoreError, UpsertSummary};
use crate::Db;

mod csv_row;
mod kinds;
mod read;
#[cfg(test)]
mod tests;

use kinds::Kind;

/// What a file holds. Import parents before children: subscribers → contracts →
/// pppoe-accounts / ips; subscribers → invoices / payments.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ImportKind {
    Subscribers,
    Contracts,
    PppoeAccounts,
    Ips,
    Invoices,
    Payments,
    Services,
    News,
    Faq,
}

impl ImportKind {
    /// In an order that satisfies the references between kinds.
    pub const ALL: [ImportKind; 9] = [
        ImportKind::Subscribers,
        ImportKind::Contracts,
        ImportKind::PppoeAccounts,
        ImportKind::Ips,
        ImportKind::Invoices,
        ImportKind::Payments,
        ImportKind::Services,
        ImportKind::News,
        ImportKind::Faq,
    ];

    /// The name on the command line and of the example files.
    pub const fn as_str(self) -> &'static str {
        match self {
            ImportKind::Subscribers => "subscribers",
            ImportKind::Contracts => "contracts",
            ImportKind::PppoeAccounts => "pppoe-accounts",
            ImportKind::Ips => "ips",
            ImportKind::Invoices => "invoices",
            ImportKind::Payments => "payments",
            ImportKind::Services => "services",
            ImportKind::News => "news",
            ImportKind::Faq => "faq",
        }
    }

    /// The CSV header columns of this kind, in the documented order; `true` = required.
    pub fn csv_columns(self) -> &'static [(&'static str, bool)] {
        match self {
            ImportKind::Subscribers => kinds::Subscribers::COLUMNS,
            ImportKind::Contracts => kinds::Contracts::COLUMNS,
            ImportKind::PppoeAccounts => kinds::PppoeAccounts::COLUMNS,
            ImportKind::Ips => kinds::Ips::COLUMNS,
            ImportKind::Invoices => kinds::Invoices::COLUMNS,
            ImportKind::Payments => kinds::Payments::COLUMNS,
            ImportKind::Services => kinds::Services::COLUMNS,
            ImportKind::News => kinds::News::COLUMNS,
            ImportKind::Faq => kinds::Faq::COLUMNS,
        }
    }
}

/// The optional columns of `columns` that a JSON object with `keys` does not carry: a column
/// is carried by a key of its own name, or by the object its name starts with
/// (`correspondence` holds `correspondence_street`, …). Their stored values stay.
pub fn absent_columns<'k>(
    columns: &'static [(&'static str, bool)],
    keys: impl Iterator<Item = &'k str> + Clone,
) -> crate::repo::Absent {
    let carried = |column: &str| {
        keys.clone().any(|k| {
            column == k
                || column
                    .strip_prefix(k)
                    .is_some_and(|rest| rest.starts_with('_'))
        })
    };
    crate::repo::Absent::new(
        columns
            .iter()
            .filter(|(c, required)| !required && !carried(c))
            .map(|(c, _)| *c)
            .collect(),
    )
}

impl fmt::Display for ImportKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A kind name that is not one of [`ImportKind::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown import kind {0:?} (expected subscribers, contracts, pppoe-accounts, ips, invoices, \
     payments, services, news or faq)"
)]
pub struct UnknownKind(pub String);

impl FromStr for ImportKind {
    type Err = UnknownKind;
    fn from_str(s: &str) -> Result<ImportKind, UnknownKind> {
        let t = s.trim();
        ImportKind::ALL
            .into_iter()
            .find(|k| k.as_str().eq_ignore_ascii_case(t))
            .ok_or_else(|| UnknownKind(s.to_owned()))
    }
}

/// The format of a file, from its extension.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FileFormat {
    /// `.csv`: UTF-8, header row, `;` or `,` (detected from the header).
    Csv,
    /// `.jsonl` / `.ndjson`: one JSON object per line.
    JsonLines,
}

impl FileFormat {
    pub(crate) fn of_path(path: &Path) -> Option<FileFormat> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "csv" => Some(FileFormat::Csv),
            "jsonl" | "ndjson" => Some(FileFormat::JsonLines),
            _ => None,
        }
    }
}

/// How far an import is, for a progress bar.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Progress {
    /// Records taken into the transaction so far, written or queued in the batch being
    /// written (an invoice with all its lines counts once).
    pub rows: u64,
    /// Bytes of the file read so far.
    pub bytes: u64,
    /// The file's size.
    pub total_bytes: u64,
    /// Set on the last call, after the commit.
    pub done: bool,
}

/// Why an import failed. Whatever the reason, nothing of the file was imported.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("{}: {source}", file.display())]
    Open {
        file: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: unknown format (expected a .csv, .jsonl or .ndjson file)", file.display())]
    UnknownFormat { file: PathBuf },
    /// A row that cannot be read or stored. `line` counts from 1 as an editor shows it;
    /// `column` is the CSV header name or the JSON field path (`home.city`,
    /// `lines[1].gross`) when known.
    #[error("{}", RowDisplay { file, line: *line, column: column.as_deref(), reason })]
    Row {
        file: PathBuf,
        line: u64,
        column: Option<String>,
        reason: String,
    },
    #[error("{}: read error: {source}", file.display())]
    Read {
        file: PathBuf,
        source: std::io::Error,
    },
    /// Opening or committing the transaction failed.
    #[error("{}: database: {source}", file.display())]
    Database { file: PathBuf, source: sqlx::Error },
}

struct RowDisplay<'a> {
    file: &'a Path,
    line: u64,
    column: Option<&'a str>,
    reason: &'a str,
}

impl fmt::Display for RowDisplay<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}, line {}", self.file.display(), self.line)?;
        if let Some(c) = self.column {
            write!(f, ", column {c}")?;
        }
        write!(f, ": {}", self.reason)
    }
}

impl ImportError {
    pub fn file(&self) -> &Path {
        match self {
            ImportError::Open { file, .. }
            | ImportError::UnknownFormat { file }
            | ImportError::Row { file, .. }
            | ImportError::Read { file, .. }
            | ImportError::Database { file, .. } => file,
        }
    }

    /// The line of a bad row.
    pub fn line(&self) -> Option<u64> {
        match self {
            ImportError::Row { line, .. } => Some(*line),
            _ => None,
        }
    }

    /// The column (CSV) or field path (JSON) of a bad row, when known.
    pub fn column(&self) -> Option<&str> {
        match self {
            ImportError::Row { column, .. } => column.as_deref(),
            _ => None,
        }
    }

    pub(crate) fn row(
        file: &Path,
        line: u64,
        column: Option<String>,
        reason: impl Into<String>,
    ) -> ImportError {
        ImportError::Row {
            file: file.to_owned(),
            line,
            column,
            reason: reason.into(),
        }
    }
}

/// Import one file of `kind` (format by extension) in one transaction: all rows or none.
/// `progress` is called after every record and once more with `done` after the commit.
pub async fn import_file(
    db: &Db,
    kind: ImportKind,
    path: &Path,
    progress: Option<&mut (dyn FnMut(Progress) + Send)>,
) -> Result<UpsertSummary, ImportError> {
    match kind {
        ImportKind::Subscribers => run::<kinds::Subscribers>(db, path, progress).await,
        ImportKind::Contracts => run::<kinds::Contracts>(db, path, progress).await,
        ImportKind::PppoeAccounts => run::<kinds::PppoeAccounts>(db, path, progress).await,
        ImportKind::Ips => run::<kinds::Ips>(db, path, progress).await,
        ImportKind::Invoices => run::<kinds::Invoices>(db, path, progress).await,
        ImportKind::Payments => run::<kinds::Payments>(db, path, progress).await,
        ImportKind::Services => run::<kinds::Services>(db, path, progress).await,
        ImportKind::News => run::<kinds::News>(db, path, progress).await,
        ImportKind::Faq => run::<kinds::Faq>(db, path, progress).await,
    }
}

async fn run<K: Kind>(
    db: &Db,
    path: &Path,
    mut progress: Option<&mut (dyn FnMut(Progress) + Send)>,
) -> Result<UpsertSummary, ImportError> {
    let format = FileFormat::of_path(path).ok_or_else(|| ImportError::UnknownFormat {
        file: path.to_owned(),
    })?;
    let open_error = |source| ImportError::Open {
        file: path.to_owned(),
        source,
    };
    let file = std::fs::File::open(path).map_err(open_error)?;
    let total_bytes = file.metadata().map_err(open_error)?.len();
    let database = |source| ImportError::Database {
        file: path.to_owned(),
        source,
    };
    let mut tx = db.begin().await.map_err(database)?;
    let (mut rx, reader) = read::spawn::<K>(path.to_owned(), format, file);
    let mut summary = UpsertSummary::default();
    let mut report = Progress {
        total_bytes,
        ..Progress::default()
    };
    let mut pending = Pending::<K::Rec>::default();
    let outcome = loop {
        let item = match rx.recv().await {
            None => break flush::<K>(&mut tx, path, format, &mut pending).await,
            Some(Ok(item)) => item,
            // The records before a bad row are written first, so that a refused one of them
            // is the error reported, as when every record is written on its own.
            Some(Err(e)) => {
                break flush::<K>(&mut tx, path, format, &mut pending)
                    .await
                    .and(Err(e))
            }
        };
        let bytes = item.bytes;
        pending.push(item);
        if pending.recs.len() >= K::BATCH {
            if let Err(e) = flush::<K>(&mut tx, path, format, &mut pending).await {
                break Err(e);
            }
            for u in pending.written.drain(..) {
                summary.add(u);
            }
        }
        report.rows += 1;
        report.bytes = bytes;
        if let Some(cb) = progress.as_deref_mut() {
            cb(report);
        }
    };
    for u in pending.written.drain(..) {
        summary.add(u);
    }
    // Closing the channel stops the reader at its next row.
    drop(rx);
    let joined = reader.await;
    if let Err(e) = outcome {
        let _ = tx.rollback().await;
        return Err(e);
    }
    if let Err(e) = joined {
        let _ = tx.rollback().await;
        if e.is_panic() {
            std::panic::resume_unwind(e.into_panic());
        }
        return Err(ImportError::Read {
            file: path.to_owned(),
            source: std::io::Error::other(e),
        });
    }
    tx.commit().await.map_err(database)?;
    report.bytes = total_bytes;
    report.done = true;
    if let Some(cb) = progress {
        cb(report);
    }
    Ok(summary)
}

/// Records read but not yet written, and the outcomes of the last [`flush`].
struct Pending<R> {
    recs: Vec<R>,
    /// What each record came without (kept as stored).
    absents: Vec<crate::repo::Absent>,
    /// (line, row_lines, bytes) of each record, for [`Kind::locate`].
    places: Vec<(u64, Vec<u64>, u64)>,
    written: Vec<crate::repo::Upserted>,
}

impl<R> Default for Pending<R> {
    fn default() -> Self {
        Pending {
            recs: Vec::new(),
            absents: Vec::new(),
            places: Vec::new(),
            written: Vec::new(),
        }
    }
}

impl<R> Pending<R> {
    fn push(&mut self, item: read::Item<R>) {
        self.recs.push(item.rec);
        self.absents.push(item.absent);
        self.places.push((item.line, item.row_lines, item.bytes));
    }
}

/// Write the pending records ([`Kind::upsert_batch`]); a refused one becomes the file's
/// error, named by its line and column.
async fn flush<K: Kind>(
    tx: &mut crate::DbTx,
    path: &Path,
    format: FileFormat,
    pending: &mut Pending<K::Rec>,
) -> Result<(), ImportError> {
    if pending.recs.is_empty() {
        return Ok(());
    }
    match K::upsert_batch(tx, &pending.recs, &pending.absents).await {
        Ok(outcomes) => {
            pending.written.extend(outcomes);
            pending.recs.clear();
            pending.absents.clear();
            pending.places.clear();
            Ok(())
        }
        Err((i, e)) => {
            let rec = pending.recs.swap_remove(i);
            let absent = pending.absents.swap_remove(i);
            let (line, row_lines, bytes) = pending.places.swap_remove(i);
            let item = read::Item {
                rec,
                absent,
                line,
                row_lines,
                bytes,
            };
            let (line, column) = K::locate(&e, &item, format);
            let reason = match e {
                // The column already names the field.
                StoreError::Invalid { reason, .. } if column.is_some() => reason,
                e => e.to_string(),
            };
            Err(ImportError::row(path, line, column, reason))
        }
    }
}

/// A progress callback for [`import_file`] that draws a one-line bar on stderr when stderr
/// is a terminal (at most ten times a second) and does nothing otherwise. The line is ended
/// by the last call (`done`) or, after a failed import, when the callback is dropped.
pub fn progress_bar() -> impl FnMut(Progress) + Send {
    let mut bar = Bar {
        on: std::io::stderr().is_terminal(),
        last: None,
        open: false,
    };
    move |p: Progress| bar.draw(p)
}

struct Bar {
    on: bool,
    last: Option<Instant>,
    /// A bar is on screen without its line end.
    open: bool,
}

impl Bar {
    fn draw(&mut self, p: Progress) {
        if !self.on {
            return;
        }
        let now = Instant::now();
        let recent = self
            .last
            .is_some_and(|t| now.duration_since(t) < Duration::from_millis(100));
        if recent && !p.done {
            return;
        }
        self.last = Some(now);
        let mut line = render_bar(&p, 30);
        if p.done {
            line.push('\n');
        }
        self.open = !p.done;
        let mut err = std::io::stderr().lock();
        let _ = err.write_all(line.as_bytes());
        let _ = err.flush();
    }
}

impl Drop for Bar {
    fn drop(&mut self) {
        if self.open {
            let _ = std::io::stderr().write_all(b"\n");
        }
    }
}

/// `\r[#######       ]  45%  12345 rows  1.2 / 2.6 MB`.
fn render_bar(p: &Progress, width: u64) -> String {
    let (done, total) = if p.total_bytes == 0 {
        (1, 1)
    } else {
        (p.bytes.min(p.total_bytes), p.total_bytes)
    };
    let filled = (u128::from(done) * u128::from(width) / u128::from(total)) as usize;
    let percent = u128::from(done) * 100 / u128::from(total);
    let mb = |b: u64| format!("{}.{}", b / 1_000_000, b % 1_000_000 / 100_000);
    format!(
        "\r[{}{}] {percent:>3}%  {} rows  {} / {} MB",
        "#".repeat(filled),
        " ".repeat(width as usize - filled),
        p.rows,
        mb(p.bytes),
        mb(p.total_bytes)
    )
}
