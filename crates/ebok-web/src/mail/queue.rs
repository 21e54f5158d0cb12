//! The on-disk retry queue (`<state.dir>/mail-queue/`): queue files, the retry task and the
//! queue depth gauge.

use super::*;

/// How many times a message rejected with a permanent (5xx) answer is tried before it is moved
/// to `mail-queue/failed/`. More than once because an authentication failure (535) is also a
/// 5xx answer and is usually fixed by the operator, not by the message.
pub(super) const MAX_PERMANENT_ATTEMPTS: u32 = 5;

/// Where queued messages live, under the state directory.
pub(super) const QUEUE_DIR: &str = "mail-queue";
/// Where messages go that the server rejected permanently, under the queue directory.
pub(super) const FAILED_DIR: &str = "failed";
pub(super) const QUEUE_EXT: &str = "mail";

/// The JSON first line of a queue file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct QueueMeta {
    pub(super) from: Option<String>,
    pub(super) to: Vec<String>,
    /// Failed attempts with a permanent (5xx) answer so far.
    pub(super) permanent_failures: u32,
    /// Failed attempts of any kind so far (the first, direct one included).
    pub(super) attempts: u32,
    pub(super) last_error: String,
}

impl QueueMeta {
    pub(super) fn envelope(&self) -> Result<Envelope, String> {
        let from = match &self.from {
            Some(a) => Some(a.parse::<Address>().map_err(|e| e.to_string())?),
            None => None,
        };
        let to = self
            .to
            .iter()
            .map(|a| a.parse::<Address>().map_err(|e| e.to_string()))
            .collect::<Result<Vec<_>, _>>()?;
        Envelope::new(from, to).map_err(|e| e.to_string())
    }
}
impl Mailer {
    /// Start the task that resends queued messages, with exponential backoff between rounds,
    /// deleting each file once delivered. Call once per state directory, from within a tokio
    /// runtime; a second call returns a task that ends at once. Abort the handle at shutdown:
    /// a message interrupted mid-send stays queued (at worst it is sent twice, never lost).
    pub fn spawn_retry(&self) -> tokio::task::JoinHandle<()> {
        if self.inner.retry_running.swap(true, Ordering::SeqCst) {
            tracing::warn!("mail retry task already running; not starting another");
            return tokio::spawn(async {});
        }
        let mailer = self.clone();
        tokio::spawn(async move { mailer.retry_loop().await })
    }

    async fn retry_loop(self) {
        let backoff = self.inner.backoff;
        let mut delay = backoff.initial;
        loop {
            let remaining = self.retry_round().await;
            if remaining == 0 {
                delay = backoff.initial;
                // Idle: wake when a message is queued, and now and then anyway in case files
                // were put back by hand (e.g. from failed/).
                tokio::select! {
                    _ = self.inner.queued.notified() => {}
                    _ = tokio::time::sleep(backoff.max) => {}
                }
            } else {
                tracing::debug!(remaining, ?delay, "mail queue not empty; retrying later");
                tokio::select! {
                    _ = self.inner.recovered.notified() => {}
                    _ = tokio::time::sleep(delay) => {}
                }
                delay = (delay * 2).min(backoff.max);
            }
        }
    }

    /// One pass over the queue, oldest first. Stops at the first transient failure (the server
    /// is down or busy: the rest would fail the same way). Returns the messages left.
    async fn retry_round(&self) -> u64 {
        let files = match list_queue(&self.inner.queue_dir).await {
            Ok(files) => files,
            Err(e) => {
                tracing::error!(error = %e, "cannot read the mail queue");
                return self.queue_depth().max(1);
            }
        };
        for path in files {
            let (mut meta, raw) = match read_queue_file(&path).await {
                Ok(x) => x,
                Err(e) => {
                    tracing::error!(
                        error = %e,
                        file = %path.display(),
                        "unreadable mail queue file; moving it aside"
                    );
                    self.move_to_failed(&path).await;
                    continue;
                }
            };
            let envelope = match meta.envelope() {
                Ok(envelope) => envelope,
                Err(e) => {
                    tracing::error!(
                        error = %e,
                        file = %path.display(),
                        "bad envelope in mail queue file; moving it aside"
                    );
                    self.move_to_failed(&path).await;
                    continue;
                }
            };
            match self.deliver(&envelope, &raw).await {
                Ok(()) => {
                    metrics::counter!("ebok_mail_sent_total").increment(1);
                    tracing::info!(
                        file = %path.display(),
                        attempts = meta.attempts + 1,
                        "queued mail delivered"
                    );
                    if let Err(e) = tokio::fs::remove_file(&path).await {
                        // Delivered but still here: it would be sent again. Loud, not fatal.
                        tracing::error!(
                            error = %e,
                            file = %path.display(),
                            "cannot delete delivered mail from the queue"
                        );
                    }
                }
                Err(e) => {
                    metrics::counter!("ebok_mail_failures_total").increment(1);
                    meta.attempts += 1;
                    meta.last_error = e.to_string();
                    let permanent = matches!(&e, DeliveryError::Smtp(s) if s.is_permanent());
                    if !permanent {
                        tracing::warn!(error = %e, file = %path.display(), "mail retry failed");
                        if let Err(e) = write_queue_file(&path, &meta, &raw).await {
                            tracing::warn!(error = %e, "cannot update mail queue file");
                        }
                        break;
                    }
                    meta.permanent_failures += 1;
                    if meta.permanent_failures >= MAX_PERMANENT_ATTEMPTS {
                        tracing::error!(
                            error = %e,
                            file = %path.display(),
                            "mail rejected permanently; moved to {}",
                            self.inner.failed_dir.display()
                        );
                        if let Err(e) = write_queue_file(&path, &meta, &raw).await {
                            tracing::warn!(error = %e, "cannot update mail queue file");
                        }
                        self.move_to_failed(&path).await;
                    } else {
                        tracing::warn!(
                            error = %e,
                            file = %path.display(),
                            "mail rejected; will retry"
                        );
                        if let Err(e) = write_queue_file(&path, &meta, &raw).await {
                            tracing::warn!(error = %e, "cannot update mail queue file");
                        }
                    }
                }
            }
        }
        self.refresh_depth().await
    }

    async fn move_to_failed(&self, path: &Path) {
        let Some(name) = path.file_name() else { return };
        let target = self.inner.failed_dir.join(name);
        if let Err(e) = tokio::fs::rename(path, &target).await {
            tracing::error!(
                error = %e,
                file = %path.display(),
                "cannot move mail to the failed folder"
            );
        }
    }

    pub(super) async fn enqueue(&self, meta: &QueueMeta, raw: &[u8]) -> Result<PathBuf, MailError> {
        let path = self
            .inner
            .queue_dir
            .join(format!("{}.{QUEUE_EXT}", file_stem()));
        write_queue_file(&path, meta, raw).await?;
        Ok(path)
    }

    pub(super) async fn refresh_depth(&self) -> u64 {
        let depth = match list_queue(&self.inner.queue_dir).await {
            Ok(files) => files.len() as u64,
            Err(_) => return self.queue_depth(),
        };
        self.set_depth(depth);
        depth
    }

    pub(super) fn refresh_depth_sync(&self) -> u64 {
        let depth = std::fs::read_dir(&self.inner.queue_dir)
            .map(|dir| {
                dir.filter_map(Result::ok)
                    .filter(|e| is_queue_file(&e.path()))
                    .count() as u64
            })
            .unwrap_or(0);
        self.set_depth(depth);
        depth
    }

    fn set_depth(&self, depth: u64) {
        self.inner.depth.store(depth, Ordering::Relaxed);
        metrics::gauge!("ebok_mail_queue_depth").set(depth as f64);
    }
}

pub(super) fn is_queue_file(path: &Path) -> bool {
    let hidden = path
        .file_name()
        .and_then(|n| n.to_str())
        .is_none_or(|n| n.starts_with('.'));
    !hidden && path.extension().and_then(|e| e.to_str()) == Some(QUEUE_EXT)
}

pub(super) async fn list_queue(dir: &Path) -> Result<Vec<PathBuf>, MailError> {
    let mut entries = tokio::fs::read_dir(dir).await.map_err(io_error(dir))?;
    let mut files = Vec::new();
    while let Some(entry) = entries.next_entry().await.map_err(io_error(dir))? {
        let path = entry.path();
        if is_queue_file(&path) {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

pub(super) async fn write_queue_file(
    path: &Path,
    meta: &QueueMeta,
    raw: &[u8],
) -> Result<(), MailError> {
    let mut bytes = serde_json::to_vec(meta).expect("queue meta serializes");
    bytes.push(b'\n');
    bytes.extend_from_slice(raw);
    write_atomic(path, &bytes).await
}

pub(super) async fn read_queue_file(path: &Path) -> Result<(QueueMeta, Vec<u8>), MailError> {
    let bytes = tokio::fs::read(path).await.map_err(io_error(path))?;
    let bad = |what: String| MailError::Io {
        path: path.to_owned(),
        source: io::Error::new(io::ErrorKind::InvalidData, what),
    };
    let newline = bytes
        .iter()
        .position(|&b| b == b'\n')
        .ok_or_else(|| bad("no header line".to_owned()))?;
    let meta: QueueMeta = serde_json::from_slice(&bytes[..newline])
        .map_err(|e| bad(format!("bad header line: {e}")))?;
    Ok((meta, bytes[newline + 1..].to_vec()))
}
