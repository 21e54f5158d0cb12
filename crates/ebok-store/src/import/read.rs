//! The reading side of an import, on a blocking thread: CSV (BOM, delimiter detection,
//! header check, rows grouped into invoices) or JSON Lines, turned into records and handed
//! to the writer through a small bounded channel, so memory stays flat in the file size.

use std::collections::HashSet;
use std::fs::File;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::csv_row::from_row;
use super::kinds::{FieldError, Kind};
use super::{FileFormat, ImportError};
use crate::repo::Absent;

/// Records in flight between the reader and the writer.
const CHANNEL: usize = 256;
const READ_BUFFER: usize = 64 * 1024;
const BOM: &[u8] = b"\xEF\xBB\xBF";

/// One record, where it came from, and how far into the file the reader was.
pub(super) struct Item<R> {
    pub rec: R,
    /// The optional columns (JSON keys) it came without: their stored values stay.
    pub absent: Absent,
    /// The line the record starts on.
    pub line: u64,
    /// CSV invoices: the line of each entry of `rec.lines`, in order. Empty otherwise.
    pub row_lines: Vec<u64>,
    /// Bytes read when the record was complete.
    pub bytes: u64,
}

pub(super) type Received<R> = Result<Item<R>, ImportError>;

/// Start reading `file` on a blocking thread. The thread stops at the first error (sent as
/// the last message) or when the receiver is dropped.
pub(super) fn spawn<K: Kind>(
    path: PathBuf,
    format: FileFormat,
    file: File,
) -> (mpsc::Receiver<Received<K::Rec>>, JoinHandle<()>) {
    let (tx, rx) = mpsc::channel(CHANNEL);
    let handle = tokio::task::spawn_blocking(move || {
        let mut out = Emitter::<K> {
            path: &path,
            tx: &tx,
            pending: None,
            seen: HashSet::new(),
        };
        let reader = BufReader::with_capacity(READ_BUFFER, file);
        let result = match format {
            FileFormat::Csv => read_csv::<K>(&path, reader, &mut out),
            FileFormat::JsonLines => read_jsonl::<K>(&path, reader, &mut out),
        };
        let result = result.and_then(|()| out.finish());
        if let Err(e) = result {
            let _ = tx.blocking_send(Err(e));
        }
    });
    (rx, handle)
}

/// Hands records to the writer: groups consecutive CSV invoice rows, refuses an ext_id seen
/// before in the same file. Its methods give `Ok(false)` when the writer has gone (it
/// failed and reports its own error): the reader then stops quietly.
struct Emitter<'a, K: Kind> {
    path: &'a Path,
    tx: &'a mpsc::Sender<Received<K::Rec>>,
    pending: Option<Item<K::Rec>>,
    /// 64-bit hashes of the ext_ids sent so far rather than the ids themselves (a false
    /// alarm needs a hash collision: about 1 in 10^7 for a million records).
    seen: HashSet<u64>,
}

impl<K: Kind> Emitter<'_, K> {
    /// A record read from a CSV row: merged into the pending one or queued behind it.
    fn row(
        &mut self,
        rec: K::Rec,
        absent: &Absent,
        line: u64,
        bytes: u64,
    ) -> Result<bool, ImportError> {
        if !K::GROUPS_ROWS {
            return self.record(rec, absent.clone(), line, bytes);
        }
        let next = match self.pending.as_mut() {
            Some(p) => match K::absorb(&mut p.rec, rec) {
                Ok(None) => {
                    p.row_lines.push(line);
                    p.bytes = bytes;
                    return Ok(true);
                }
                Ok(Some(next)) => next,
                Err(FieldError { column, reason }) => {
                    return Err(ImportError::row(
                        self.path,
                        line,
                        Some(column.into()),
                        reason,
                    ))
                }
            },
            None => rec,
        };
        let item = Item {
            rec: next,
            absent: absent.clone(),
            line,
            row_lines: vec![line],
            bytes,
        };
        match self.pending.replace(item) {
            Some(done) => self.send(done),
            None => Ok(true),
        }
    }

    /// A whole record.
    fn record(
        &mut self,
        rec: K::Rec,
        absent: Absent,
        line: u64,
        bytes: u64,
    ) -> Result<bool, ImportError> {
        self.send(Item {
            rec,
            absent,
            line,
            row_lines: Vec::new(),
            bytes,
        })
    }

    fn send(&mut self, item: Item<K::Rec>) -> Result<bool, ImportError> {
        let ext_id = K::ext_id(&item.rec);
        let mut h = DefaultHasher::new();
        ext_id.hash(&mut h);
        if !self.seen.insert(h.finish()) {
            let mut reason = format!(
                "{} {ext_id:?} appears more than once in this file",
                K::ENTITY
            );
            if K::GROUPS_ROWS {
                reason.push_str(" (the rows of one invoice must be consecutive)");
            }
            return Err(ImportError::row(
                self.path,
                item.line,
                Some("ext_id".into()),
                reason,
            ));
        }
        Ok(self.tx.blocking_send(Ok(item)).is_ok())
    }

    /// Send the record still being grouped.
    fn finish(&mut self) -> Result<(), ImportError> {
        if let Some(item) = self.pending.take() {
            self.send(item)?;
        }
        Ok(())
    }
}

/// Skip a UTF-8 byte order mark; its length.
fn skip_bom(reader: &mut BufReader<File>) -> std::io::Result<u64> {
    let has_bom = reader.fill_buf()?.starts_with(BOM);
    if has_bom {
        reader.consume(BOM.len());
        return Ok(BOM.len() as u64);
    }
    Ok(0)
}

/// `;` or `,`, whichever occurs more often outside quotes in the first line (`,` on a tie).
pub(super) fn detect_delimiter(head: &[u8]) -> u8 {
    let (mut semicolons, mut commas, mut quoted) = (0usize, 0usize, false);
    for &b in head {
        match b {
            b'"' => quoted = !quoted,
            b'\n' | b'\r' if !quoted => break,
            b';' if !quoted => semicolons += 1,
            b',' if !quoted => commas += 1,
            _ => {}
        }
    }
    if semicolons > commas {
        b';'
    } else {
        b','
    }
}

fn read_error(path: &Path, source: std::io::Error) -> ImportError {
    ImportError::Read {
        file: path.to_owned(),
        source,
    }
}

/// The header name of field `index`, or its 1-based number.
fn column_name(headers: &csv::StringRecord, index: Option<usize>) -> Option<String> {
    let i = index?;
    Some(
        headers
            .get(i)
            .map(str::to_owned)
            .unwrap_or_else(|| format!("#{}", i + 1)),
    )
}

/// A csv error as an import error.
fn csv_error(path: &Path, headers: &csv::StringRecord, e: csv::Error) -> ImportError {
    let line_of = |pos: Option<&csv::Position>| pos.map_or(0, |p| p.line());
    match e.into_kind() {
        csv::ErrorKind::Io(e) => read_error(path, e),
        csv::ErrorKind::Utf8 { pos, err } => ImportError::row(
            path,
            line_of(pos.as_ref()),
            column_name(headers, Some(err.field())),
            "not valid UTF-8 (save the file as UTF-8)",
        ),
        csv::ErrorKind::UnequalLengths {
            pos,
            expected_len,
            len,
        } => ImportError::row(
            path,
            line_of(pos.as_ref()),
            None,
            format!(
                "{len} fields but the header has {expected_len} (check the delimiter and \
                 the quoting)"
            ),
        ),
        other => ImportError::row(path, 0, None, format!("{other:?}")),
    }
}

/// Every header name is a known column, none twice, every required one present.
fn check_header(
    path: &Path,
    headers: &csv::StringRecord,
    columns: &[(&'static str, bool)],
) -> Result<(), ImportError> {
    let bad = |column: &str, reason: String| ImportError::row(path, 1, Some(column.into()), reason);
    if headers.iter().all(str::is_empty) {
        return Err(ImportError::row(
            path,
            1,
            None,
            "no header row (the first line must name the columns)",
        ));
    }
    for (i, h) in headers.iter().enumerate() {
        if !columns.iter().any(|(c, _)| *c == h) {
            let known: Vec<&str> = columns.iter().map(|(c, _)| *c).collect();
            return Err(bad(
                h,
                format!("unknown column (known: {})", known.join(", ")),
            ));
        }
        if headers.iter().take(i).any(|x| x == h) {
            return Err(bad(h, "column appears twice".into()));
        }
    }
    for (c, required) in columns {
        if *required && !headers.iter().any(|h| h == *c) {
            return Err(bad(c, "missing column".into()));
        }
    }
    Ok(())
}

fn read_csv<K: Kind>(
    path: &Path,
    mut reader: BufReader<File>,
    out: &mut Emitter<'_, K>,
) -> Result<(), ImportError> {
    let bom = skip_bom(&mut reader).map_err(|e| read_error(path, e))?;
    let head = reader.fill_buf().map_err(|e| read_error(path, e))?;
    if head.is_empty() {
        return Err(ImportError::row(
            path,
            1,
            None,
            "empty file (the first line must name the columns)",
        ));
    }
    let delimiter = detect_delimiter(head);
    let mut csv = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .has_headers(true)
        .trim(csv::Trim::All)
        .from_reader(reader);
    let empty = csv::StringRecord::new();
    let headers = csv
        .headers()
        .map_err(|e| csv_error(path, &empty, e))?
        .clone();
    check_header(path, &headers, K::COLUMNS)?;
    // Optional columns the file does not have: the stored values stay.
    let absent = Absent::new(
        K::COLUMNS
            .iter()
            .filter(|(c, required)| !required && !headers.iter().any(|h| h == *c))
            .map(|(c, _)| *c)
            .collect(),
    );
    let mut row = csv::StringRecord::new();
    loop {
        match csv.read_record(&mut row) {
            Ok(true) => {}
            Ok(false) => return Ok(()),
            Err(e) => return Err(csv_error(path, &headers, e)),
        }
        let line = row.position().map_or(0, csv::Position::line);
        let parsed: K::Row = from_row(&headers, &row).map_err(|(field, reason)| {
            let column = column_name(&headers, field);
            let reason = with_hint(reason, column.as_deref());
            ImportError::row(path, line, column, reason)
        })?;
        let rec = K::from_row(parsed).map_err(|FieldError { column, reason }| {
            ImportError::row(path, line, Some(column.into()), reason)
        })?;
        let bytes = bom + csv.position().byte();
        if !out.row(rec, &absent, line, bytes)? {
            return Ok(());
        }
    }
}

fn read_jsonl<K: Kind>(
    path: &Path,
    mut reader: BufReader<File>,
    out: &mut Emitter<'_, K>,
) -> Result<(), ImportError> {
    let mut bytes = skip_bom(&mut reader).map_err(|e| read_error(path, e))?;
    let mut buf = String::new();
    let mut line = 0u64;
    loop {
        buf.clear();
        let n = match reader.read_line(&mut buf) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
                return Err(ImportError::row(
                    path,
                    line + 1,
                    None,
                    "not valid UTF-8 (save the file as UTF-8)",
                ))
            }
            Err(e) => return Err(read_error(path, e)),
        };
        if n == 0 {
            return Ok(());
        }
        line += 1;
        bytes += n as u64;
        let text = buf.trim_end_matches(['\n', '\r']);
        if text.trim().is_empty() {
            continue;
        }
        let rec: K::Rec = serde_json::from_str(text).map_err(|e| {
            let (column, reason) = json_error(text, &e);
            let reason = with_hint(reason, column.as_deref());
            ImportError::row(path, line, column, reason)
        })?;
        if !out.record(rec, absent_keys::<K>(text), line, bytes)? {
            return Ok(());
        }
    }
}

/// The optional columns a JSON line's object does not carry (see
/// [`super::absent_columns`]). Called on a line that already parsed as a record.
fn absent_keys<K: Kind>(text: &str) -> Absent {
    let keys: std::collections::HashMap<String, serde::de::IgnoredAny> =
        serde_json::from_str(text).unwrap_or_default();
    super::absent_columns(K::COLUMNS, keys.keys().map(String::as_str))
}

/// A parse error's reason, with the expected form added where the message of the value's
/// parser does not say it (dates, times, amounts given as JSON numbers).
pub(super) fn with_hint(reason: String, column: Option<&str>) -> String {
    let field = column.map_or("", |c| c.rsplit('.').next().unwrap_or(c));
    let hint = if reason.starts_with("invalid type: floating point")
        || reason.starts_with("invalid type: integer") && reason.ends_with("expected a string")
    {
        Some("write amounts and quantities as strings, e.g. \"50.00\"")
    } else if reason.starts_with("missing field")
        || reason.starts_with("malformed JSON")
        || reason.contains("is not")
    {
        None
    } else if field.ends_with("_on") {
        Some("expected a date as YYYY-MM-DD")
    } else if field.ends_with("_at") {
        Some("expected a date and time as in 2026-01-15T09:00:00+01:00")
    } else {
        None
    };
    match hint {
        Some(h) => format!("{reason} ({h})"),
        None => reason,
    }
}

/// The field path and the reason of a serde_json error on one line.
pub(super) fn json_error(text: &str, e: &serde_json::Error) -> (Option<String>, String) {
    let message = e.to_string();
    let message = match message.rfind(" at line ") {
        Some(i) => message[..i].to_owned(),
        None => message,
    };
    let at = e.column().min(text.len());
    let path = json_path_at(text, at);
    let join = |field: &str| {
        if path.is_empty() {
            field.to_owned()
        } else {
            format!("{path}.{field}")
        }
    };
    match e.classify() {
        serde_json::error::Category::Syntax | serde_json::error::Category::Eof => (
            (!path.is_empty()).then_some(path.clone()),
            format!("malformed JSON: {message} at character {}", e.column()),
        ),
        _ => {
            let missing = message
                .strip_prefix("missing field `")
                .and_then(|m| m.strip_suffix('`'));
            match missing {
                Some(field) => (Some(join(field)), format!("missing field {field:?}")),
                None => ((!path.is_empty()).then_some(path.clone()), message),
            }
        }
    }
}

/// The path (`home.city`, `lines[1].gross`) of the value being read after the first `pos`
/// bytes of a JSON text; empty at the top level.
pub(super) fn json_path_at(text: &str, pos: usize) -> String {
    enum Frame {
        Object {
            key: Option<String>,
            expect_key: bool,
        },
        Array {
            index: usize,
        },
    }
    let bytes = &text.as_bytes()[..pos.min(text.len())];
    let mut stack: Vec<Frame> = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'"' => {
                let start = i + 1;
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' {
                    if bytes[i] == b'\\' {
                        i += 1;
                    }
                    i += 1;
                }
                if let Some(Frame::Object { key, expect_key }) = stack.last_mut() {
                    if *expect_key {
                        let end = i.min(bytes.len());
                        *key = Some(String::from_utf8_lossy(&bytes[start..end]).into_owned());
                        *expect_key = false;
                    }
                }
            }
            b'{' => stack.push(Frame::Object {
                key: None,
                expect_key: true,
            }),
            b'[' => stack.push(Frame::Array { index: 0 }),
            b'}' | b']' => {
                stack.pop();
            }
            b',' => match stack.last_mut() {
                Some(Frame::Object { expect_key, .. }) => *expect_key = true,
                Some(Frame::Array { index }) => *index += 1,
                None => {}
            },
            _ => {}
        }
        i += 1;
    }
    let mut path = String::new();
    for frame in &stack {
        match frame {
            Frame::Object { key: Some(k), .. } => {
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(k);
            }
            Frame::Object { key: None, .. } => {}
            Frame::Array { index } => path.push_str(&format!("[{index}]")),
        }
    }
    path
}
