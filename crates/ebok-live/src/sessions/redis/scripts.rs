//! The Lua scripts of the Redis live-session store (sources in `lua/`) and the calls of the
//! compare-and-set script: built step by step, run in one pipeline.

use std::sync::LazyLock;

use redis::aio::ConnectionManager;
use redis::Script;

use super::keys::{prefixed, ttl_epoch, ttl_epoch_end, ttl_ms};
use super::{RedisSessions, TTL_MARGIN_MS};
use crate::sessions::rules::{IpKey, Record, Step};
use crate::sessions::StoreError;

impl RedisSessions {
    /// A call of the compare-and-set script, its steps still to be added with
    /// [`RedisSessions::push_step`].
    pub(super) fn cas_invocation(&self) -> ApplyCall {
        let mut inv = ApplyCall::default();
        inv.key(format!("{}n", self.prefix))
            .key(format!("{}6len", self.prefix))
            .key(format!("{}nasreset", self.prefix))
            .arg(format!("{}s:", self.prefix));
        inv
    }

    /// Add one planned step to a compare-and-set script call, with the step's record already
    /// encoded (`new_value`, empty for none).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn push_step(
        &self,
        inv: &mut ApplyCall,
        h: u64,
        expected: Option<&[u8]>,
        reset_check: Option<(&str, Option<&[u8]>)>,
        prior: Option<&Record>,
        step: &Step,
        new_value: Vec<u8>,
    ) {
        let prior_live = matches!(prior, Some(Record::Live(_)));
        let new_live = matches!(step.record, Some(Record::Live(_)));
        let delta: i64 = i64::from(new_live) - i64::from(prior_live);
        let ttl_ms = step
            .record
            .as_ref()
            .map_or(TTL_MARGIN_MS, |r| ttl_ms(ttl_epoch_end(r.deadline())));
        // The keys already holding this session's entries have TTLs to the end of its prior
        // deadline's epoch (plus the margin): while the deadline stays in that epoch, they
        // need no touch.
        let retouch = match (prior, &step.record) {
            (Some(p), Some(r)) => ttl_epoch(p.deadline()) != ttl_epoch(r.deadline()),
            _ => true,
        };
        let claims: &[IpKey] = if new_live { &step.claims } else { &[] };

        inv.key(self.session_key(h));
        inv.arg(&h.to_be_bytes()[..]);
        inv.arg(expected.unwrap_or_default());
        match reset_check {
            None => inv.arg("").arg(""),
            Some((nas, None)) => inv.arg("-").arg(nas),
            Some((nas, Some(v))) => inv.arg(prefixed(b'=', v)).arg(nas),
        };
        inv.arg(new_value)
            .arg(delta)
            .arg(ttl_ms)
            .arg(if retouch { "1" } else { "" })
            .arg(step.releases.len() + claims.len());
        for ip in &step.releases {
            let (k, f) = self.ip_key(ip);
            inv.key(k).arg("r").arg(f);
        }
        for ip in claims {
            let (k, f) = self.ip_key(ip);
            let op = match ip {
                IpKey::V4(_) => "c".to_owned(),
                IpKey::V6(n) => format!("c{}", n.prefix_len()),
            };
            inv.key(k).arg(op).arg(f);
        }
    }
}

/// One call of the [`APPLY`] script being built: its keys and its arguments, each packed in
/// one buffer (a `ScriptInvocation` keeps a `Vec` per argument and copies them all again
/// into the command; a step has 10–15 of them).
#[derive(Default)]
pub(super) struct ApplyCall {
    keys: redis::Cmd,
    nkeys: usize,
    args: redis::Cmd,
}

impl ApplyCall {
    pub(super) fn key<T: redis::ToRedisArgs>(&mut self, key: T) -> &mut Self {
        self.keys.arg(key);
        self.nkeys += 1;
        self
    }

    pub(super) fn arg<T: redis::ToRedisArgs>(&mut self, arg: T) -> &mut Self {
        self.args.arg(arg);
        self
    }

    /// `EVALSHA` of the script with these keys and arguments.
    pub(super) fn command(&self) -> redis::Cmd {
        let mut cmd = redis::cmd("EVALSHA");
        cmd.arg(APPLY.get_hash()).arg(self.nkeys);
        for part in self.keys.args_iter().chain(self.args.args_iter()) {
            if let redis::Arg::Simple(bytes) = part {
                cmd.arg(bytes);
            }
        }
        cmd
    }
}

/// Run script calls in one pipeline; one answer per call. When Redis does not have the
/// script (first use, or after a flush or restart) nothing ran: load it and send again.
pub(super) async fn run_apply(
    conn: &mut ConnectionManager,
    calls: &[ApplyCall],
) -> Result<Vec<Vec<i64>>, StoreError> {
    let mut write = redis::pipe();
    for call in calls {
        write.add_command(call.command());
    }
    Ok(match write.query_async(conn).await {
        Err(e) if e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript) => {
            APPLY.load_async(conn).await?;
            write.query_async(conn).await?
        }
        r => r?,
    })
}

// ---------------------------------------------------------------------------------------------
// Lua scripts. Shared helpers: `cmp8(a, ao, b, bo)` compares 8 bytes bytewise (the locale-aware
// `<` on strings is not safe for binary data); `bucket(h)` is the session bucket of an 8-byte
// hash (its low 14 bits); `touch(k, ms)` makes a key's TTL at least `ms`, never shortens it,
// and when it extends it, extends it an hour further: the keys an event writes then need
// only a PTTL on most later events, not a PEXPIRE each time a deadline moves.
// ---------------------------------------------------------------------------------------------

/// Compare-and-set session keys, each followed by its IP index releases and claims, in
/// order; returns 1 or 0 per step (0: the key or the NAS restart time was not as read, and
/// nothing of that step was written). The NAS restart times are read once per call and the
/// TTLs extended once per key, at the end.
/// KEYS: counter, 6len, nasreset, then per step: its bucket, then its index keys.
/// ARGV: session key prefix, then per step: field, expected value | '' (absent), reset check
///       ('' none, '-' absent, '='..v), nas, new value ('' delete), live-count delta, ttl ms,
///       '1' to touch the keys the step keeps (its deadline left the prior one's TTL epoch)
///       or '', number of index keys, then per index key: op ('r' release, 'c' claim,
///       'c<len>' claim IPv6 prefix), field. Keys the step newly writes are always touched.
pub(super) static APPLY: LazyLock<Script> = LazyLock::new(|| {
    Script::new(concat!(
        "\n",
        include_str!("lua/helpers.lua"),
        "\n",
        include_str!("lua/apply.lua")
    ))
});

/// Scan session buckets, filtering server-side. ARGV: mode, time ord, encoded NAS ('' = any).
/// Returns field, value, field, value…
pub(super) static SCAN: LazyLock<Script> = LazyLock::new(|| {
    Script::new(concat!(
        "\n",
        include_str!("lua/helpers.lua"),
        "\n",
        include_str!("lua/scan.lua")
    ))
});

/// First live session found through the index keys, in order. ARGV: session key prefix, then
/// one field per index key.
pub(super) static LOOKUP: LazyLock<Script> = LazyLock::new(|| {
    Script::new(concat!(
        "\n",
        include_str!("lua/helpers.lua"),
        "\n",
        include_str!("lua/lookup.lua")
    ))
});

/// Raise a NAS restart time (never lower it). KEYS: nasreset. ARGV: nas, ord, ttl ms.
pub(super) static SET_MAX: LazyLock<Script> = LazyLock::new(|| {
    Script::new(concat!(
        "\n",
        include_str!("lua/helpers.lua"),
        "\n",
        include_str!("lua/set_max.lua")
    ))
});

/// Release the sweep lock if this instance still holds it.
pub(super) static UNLOCK: LazyLock<Script> =
    LazyLock::new(|| Script::new(concat!("\n", include_str!("lua/unlock.lua"))));
