//! Passwords: argon2id hashing off the async threads, and the rules a new password must meet
//! (length, not the identifier or PESEL/NIP, not on the shipped common-password list).
//!
//! Each argon2id hash or verification takes 19 MiB and tens of milliseconds of one core, so
//! how many run at once is bounded: as many as the machine has cores, with a short queue
//! behind them. A caller that finds the queue full, or waits longer than [`MAX_WAIT`], gets
//! [`HashError::Busy`] (the panel answers 503 with `Retry-After`): a burst of logins costs
//! at most a few hundred MiB and leaves the other pages fast.

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::LazyLock;
use std::time::Duration;

use tokio::sync::{Semaphore, SemaphorePermit};

use argon2::{Argon2, PasswordHasher, PasswordVerifier};

/// Shortest password accepted.
pub(crate) const MIN_LEN: usize = 10;
/// Longest password accepted (argon2 hashes anything, but a megabyte of "password" is abuse).
pub const MAX_LEN: usize = 256;

static COMMON: LazyLock<HashSet<String>> = LazyLock::new(|| {
    include_str!("common-passwords.txt")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_lowercase)
        .collect()
});

/// Why a new password is refused; each maps to a catalogue key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Weak {
    Short,
    Long,
    IsLogin,
    IsIdentifier,
    Common,
}

impl Weak {
    pub fn key(self) -> &'static str {
        match self {
            Weak::Short => "field.password_short",
            Weak::Long => "field.password_long",
            Weak::IsLogin => "field.password_is_login",
            Weak::IsIdentifier => "field.password_is_id",
            Weak::Common => "field.password_common",
        }
    }
}

/// Check a new password against the rules. `identifiers` are texts it must not be (PESEL,
/// NIP), compared on their digits.
pub(crate) fn check_new(password: &str, login: &str, identifiers: &[&str]) -> Result<(), Weak> {
    let n = password.chars().count();
    if n < MIN_LEN {
        return Err(Weak::Short);
    }
    if n > MAX_LEN {
        return Err(Weak::Long);
    }
    let lower = password.trim().to_lowercase();
    if !login.trim().is_empty() && lower == login.trim().to_lowercase() {
        return Err(Weak::IsLogin);
    }
    let digits: String = password.chars().filter(char::is_ascii_digit).collect();
    for id in identifiers {
        let id_digits: String = id.chars().filter(char::is_ascii_digit).collect();
        if !id_digits.is_empty()
            && digits == id_digits
            && password
                .chars()
                .all(|c| c.is_ascii_digit() || c == '-' || c == ' ')
        {
            return Err(Weak::IsIdentifier);
        }
    }
    if COMMON.contains(&lower) || is_trivial(&lower) {
        return Err(Weak::Common);
    }
    Ok(())
}

/// One repeated character, or a run of consecutive characters up or down (`abcdefghijk`).
fn is_trivial(p: &str) -> bool {
    let c: Vec<u32> = p.chars().map(u32::from).collect();
    let same = c.windows(2).all(|w| w[0] == w[1]);
    let up = c.windows(2).all(|w| w[1] == w[0] + 1);
    let down = c.windows(2).all(|w| w[0] == w[1] + 1);
    same || up || down
}

#[derive(Debug, thiserror::Error)]
pub enum HashError {
    #[error("argon2: {0}")]
    Argon(String),
    #[error("hashing task failed: {0}")]
    Join(#[from] tokio::task::JoinError),
    /// Too many password checks at once: answer "busy, try again shortly".
    #[error("too many password checks at once")]
    Busy,
}

/// Longest a password check waits for a free core before it is refused as busy (the queue
/// is short, so in practice the queue's length refuses first).
pub(crate) const MAX_WAIT: Duration = Duration::from_secs(5);

fn cores() -> usize {
    std::thread::available_parallelism().map_or(2, usize::from)
}

/// Where argon2 runs: at most `slots` at once, at most `max_waiting` queued.
pub(crate) struct Hashing {
    running: Semaphore,
    #[cfg(test)]
    slots: usize,
    waiting: AtomicUsize,
    max_waiting: usize,
}

/// The process's: one run per core, four waiting per core (a queue much longer than
/// [`MAX_WAIT`] can serve only holds memory and requests that will time out anyway).
static HASHING: LazyLock<Hashing> = LazyLock::new(|| Hashing::new(cores(), 4 * cores()));

impl Hashing {
    pub fn new(slots: usize, max_waiting: usize) -> Self {
        Hashing {
            running: Semaphore::new(slots),
            #[cfg(test)]
            slots,
            waiting: AtomicUsize::new(0),
            max_waiting,
        }
    }

    /// A slot for one argon2 run, or [`HashError::Busy`].
    async fn slot(&self) -> Result<SemaphorePermit<'_>, HashError> {
        if let Ok(permit) = self.running.try_acquire() {
            return Ok(permit);
        }
        if self.waiting.fetch_add(1, Ordering::AcqRel) >= self.max_waiting {
            self.waiting.fetch_sub(1, Ordering::AcqRel);
            return Err(HashError::Busy);
        }
        let permit = tokio::time::timeout(MAX_WAIT, self.running.acquire()).await;
        self.waiting.fetch_sub(1, Ordering::AcqRel);
        match permit {
            Ok(Ok(p)) => Ok(p),
            _ => Err(HashError::Busy),
        }
    }

    /// Argon2 runs going on now.
    #[cfg(test)]
    pub fn running(&self) -> usize {
        self.slots - self.running.available_permits()
    }

    /// [`hash`] here.
    pub async fn hash(&self, password: &str) -> Result<String, HashError> {
        let password = password.to_owned();
        let _slot = self.slot().await?;
        tokio::task::spawn_blocking(move || {
            Argon2::default()
                .hash_password(password.as_bytes())
                .map(|h| h.to_string())
                .map_err(|e| HashError::Argon(e.to_string()))
        })
        .await?
    }

    /// [`verify`] here.
    pub async fn verify(&self, password: &str, stored: Option<&str>) -> Result<bool, HashError> {
        let password = password.to_owned();
        let real = stored.is_some();
        let stored = stored.map(str::to_owned);
        let _slot = self.slot().await?;
        tokio::task::spawn_blocking(move || {
            let stored = stored.unwrap_or_else(|| DUMMY.clone());
            match Argon2::default().verify_password(password.as_bytes(), stored.as_str()) {
                Ok(()) => Ok(real),
                Err(argon2::password_hash::Error::PasswordInvalid) => Ok(false),
                Err(e) => Err(HashError::Argon(e.to_string())),
            }
        })
        .await?
    }
}

/// Hash with argon2id (m=19456 KiB, t=2, p=1: the OWASP minimum), on a blocking thread,
/// in turn with the process's other password checks (see the module documentation).
pub async fn hash(password: &str) -> Result<String, HashError> {
    HASHING.hash(password).await
}

/// A hash of a password nobody has, verified against when the login is unknown so that a
/// wrong login takes as long as a wrong password.
static DUMMY: LazyLock<String> = LazyLock::new(|| {
    Argon2::default()
        .hash_password(b"no account has this password")
        .expect("argon2 hashes")
        .to_string()
});

/// Verify `password` against a stored PHC hash (or, with `None`, against a dummy hash to
/// spend the same time); on a blocking thread, in turn like [`hash`].
pub async fn verify(password: &str, stored: Option<&str>) -> Result<bool, HashError> {
    HASHING.verify(password, stored).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules() {
        assert_eq!(check_new("krótkie", "jan", &[]), Err(Weak::Short));
        assert_eq!(
            check_new("jan.kowalski", "Jan.Kowalski", &[]),
            Err(Weak::IsLogin)
        );
        assert_eq!(
            check_new("44051401359", "jan", &["44051401359"]),
            Err(Weak::IsIdentifier)
        );
        assert_eq!(
            check_new("526-025-02-74", "jan", &["5260250274"]),
            Err(Weak::IsIdentifier)
        );
        assert_eq!(check_new("QwertyUIOP", "jan", &[]), Err(Weak::Common));
        assert_eq!(check_new("zaq1@WSX3edc", "jan", &[]), Err(Weak::Common));
        assert_eq!(check_new("zzzzzzzzzzzz", "jan", &[]), Err(Weak::Common));
        assert_eq!(check_new("abcdefghijklm", "jan", &[]), Err(Weak::Common));
        assert_eq!(check_new(&"x1".repeat(200), "jan", &[]), Err(Weak::Long));
        assert_eq!(
            check_new("Wiosna nad Wisłą 7", "jan", &["44051401359"]),
            Ok(())
        );
    }

    #[tokio::test]
    async fn hash_and_verify() {
        let h = hash("Wiosna nad Wisłą 7").await.unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify("Wiosna nad Wisłą 7", Some(&h)).await.unwrap());
        assert!(!verify("wiosna nad wisłą 7", Some(&h)).await.unwrap());
        assert!(!verify("no account has this password", None).await.unwrap());
    }

    /// A burst far beyond the cores: never more checks at once than cores, the queue
    /// bounded, the rest refused as busy at once, and every check after it works again.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_checks_are_bounded() {
        let hashing = std::sync::Arc::new(Hashing::new(2, 8));
        let h = hashing.hash("Wiosna nad Wisłą 7").await.unwrap();
        let most = std::sync::Arc::new(AtomicUsize::new(0));
        let watch = {
            let (most, hashing) = (most.clone(), hashing.clone());
            tokio::spawn(async move {
                loop {
                    most.fetch_max(hashing.running(), Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            })
        };
        let burst = 40;
        let results = futures_util::future::join_all(
            (0..burst).map(|_| hashing.verify("Wiosna nad Wisłą 7", Some(&h))),
        )
        .await;
        watch.abort();
        let busy = results
            .iter()
            .filter(|r| matches!(r, Err(HashError::Busy)))
            .count();
        let ok = results.iter().filter(|r| matches!(r, Ok(true))).count();
        assert_eq!(busy + ok, burst, "{results:?}");
        assert!(busy > 0, "a burst of {burst} must overflow the queue");
        assert!(ok >= 2, "{ok}");
        assert!(most.load(Ordering::Relaxed) <= 2);
        assert!(hashing
            .verify("Wiosna nad Wisłą 7", Some(&h))
            .await
            .unwrap());
    }
}
