//! Files on disk: atomic writes, names that sort by creation time, the outbox transport.

use super::*;

pub(super) fn unix_millis() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0)
}

/// A file name that sorts by creation time and does not collide.
pub(super) fn file_stem() -> String {
    format!("{:013}-{:08x}", unix_millis(), rand::random::<u32>())
}

/// Write one message as `<stem>.eml` into the outbox folder.
pub(super) async fn write_to_outbox(dir: &Path, raw: &[u8]) -> Result<(), MailError> {
    let path = dir.join(format!("{}.eml", file_stem()));
    write_atomic(&path, raw).await?;
    tracing::info!(file = %path.display(), "mail written to the outbox");
    Ok(())
}

/// Write `bytes` to `path` so that a reader sees either nothing or the whole file: a dot-named
/// temporary file in the same directory, fsync, rename, fsync of the directory.
pub(super) async fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), MailError> {
    use tokio::io::AsyncWriteExt;
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("mail");
    let tmp = dir.join(format!(".{name}.tmp"));
    let result = async {
        let mut file = tokio::fs::File::create(&tmp).await?;
        file.write_all(bytes).await?;
        file.sync_all().await?;
        drop(file);
        tokio::fs::rename(&tmp, path).await?;
        tokio::fs::File::open(dir).await?.sync_all().await
    }
    .await;
    if result.is_err() {
        let _ = tokio::fs::remove_file(&tmp).await;
    }
    result.map_err(io_error(path))
}
