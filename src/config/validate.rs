//! The checks serde cannot make: prefixes, secrets, ranges, URLs; every problem reported.

use super::*;

impl Config {
    /// Check what serde cannot: prefixes, secrets, ranges, URLs.
    pub fn validate(&self, file: &str) -> Result<(), ConfigError> {
        let err = |key: String, reason: String| ConfigError::new(file, key, reason);
        // Every problem is reported, not only the first.
        let mut problems: Vec<ConfigError> = Vec::new();
        if self.radius.listen.is_empty() {
            problems.push(err(
                "radius.listen".into(),
                "no address to listen on".into(),
            ));
        }
        if !(0..=19).contains(&self.radius.replay_nice) {
            problems.push(err(
                "radius.replay_nice".into(),
                format!("{} is outside 0..=19", self.radius.replay_nice),
            ));
        }
        if self.radius.max_in_flight == 0 {
            problems.push(err(
                "radius.max_in_flight".into(),
                "must be at least 1".into(),
            ));
        }
        if self.radius.store_timeout_ms == 0 || self.radius.store_timeout_ms > 2500 {
            problems.push(err(
                "radius.store_timeout_ms".into(),
                "must be 1..=2500: a NAS gives up after about 3 s".into(),
            ));
        }
        if self.radius.journal_max_bytes != 0 && self.radius.journal_max_bytes < 1 << 20 {
            problems.push(err(
                "radius.journal_max_bytes".into(),
                "must be 0 (no cap) or at least 1048576 (1 MiB): one batch of a burst must fit"
                    .into(),
            ));
        }
        if !self.capture.interface.is_empty()
            && (self.capture.ports.is_empty() || self.capture.ports.contains(&0))
        {
            problems.push(err(
                "capture.ports".into(),
                "give at least one UDP port, none of them 0".into(),
            ));
        }
        let mut names = std::collections::HashSet::new();
        for (i, nas) in self.nas.iter().enumerate() {
            let key = |k: &str| format!("nas[{i}].{k}");
            if nas.name.trim().is_empty() {
                problems.push(err(key("name"), "must not be empty".into()));
            }
            if !names.insert(nas.name.clone()) {
                problems.push(err(key("name"), format!("'{}' appears twice", nas.name)));
            }
            if nas.prefixes.is_empty() {
                problems.push(err(key("prefixes"), "at least one prefix is needed".into()));
            }
            for (j, p) in nas.prefixes.iter().enumerate() {
                if let Err(e) =
                    parse_prefix(p).map_err(|r| err(format!("nas[{i}].prefixes[{j}]"), r))
                {
                    problems.push(e);
                }
            }
            match (&nas.secret, &nas.secret_file) {
                (Some(_), Some(_)) => {
                    problems.push(err(
                        key("secret"),
                        "give either secret or secret_file, not both".into(),
                    ));
                }
                (None, None) => {
                    problems.push(err(
                        key("secret"),
                        "secret or secret_file is required".into(),
                    ));
                }
                _ => {}
            }
            match nas.read_secret() {
                // Neither or both given: said above.
                _ if nas.secret.is_some() == nas.secret_file.is_some() => {}
                Ok(secret) if secret.is_empty() => {
                    problems.push(err(key("secret"), "must not be empty".into()));
                }
                Ok(_) => {}
                Err(r) => problems.push(err(key("secret_file"), r)),
            }
            if !VENDORS.contains(&nas.vendor.as_str()) {
                problems.push(err(
                    key("vendor"),
                    format!(
                        "unknown vendor '{}', expected one of {VENDORS:?}",
                        nas.vendor
                    ),
                ));
            }
            if nas.interim_interval == Some(0) {
                problems.push(err(key("interim_interval"), "must be at least 1".into()));
            }
        }
        if self.sessions.interim_interval == 0 {
            problems.push(err(
                "sessions.interim_interval".into(),
                "must be at least 1".into(),
            ));
        }
        if self.sessions.expiry_sweep_interval == 0 {
            problems.push(err(
                "sessions.expiry_sweep_interval".into(),
                "must be at least 1".into(),
            ));
        }
        if !(1..=128).contains(&self.sessions.min_ipv6_prefix) {
            problems.push(err(
                "sessions.min_ipv6_prefix".into(),
                format!("{} is outside 1..=128", self.sessions.min_ipv6_prefix),
            ));
        }
        if self.sessions.store == StoreKind::Redis {
            for (key, reason) in self.sessions.redis_problems() {
                problems.push(err(key, reason));
            }
        }
        if !(1..=1024).contains(&self.sessions.log_streams) {
            problems.push(err(
                "sessions.log_streams".into(),
                format!("{} is outside 1..=1024", self.sessions.log_streams),
            ));
        }
        if !(self.database.url.starts_with("sqlite:")
            || self.database.url.starts_with("postgres://")
            || self.database.url.starts_with("postgresql://"))
        {
            problems.push(err(
                "database.url".into(),
                "must start with sqlite: or postgres://".into(),
            ));
        }
        if !self.isp.nip.is_empty() {
            if let Err(e) = self
                .isp
                .nip
                .parse::<crate::store::validate::Nip>()
                .map_err(|e| err("isp.nip".into(), e.to_string()))
            {
                problems.push(e);
            }
        }
        if !self.isp.ksef_qr_host.is_empty() {
            if let Err(reason) = crate::web::billing::ksef::check_qr_host(&self.isp.ksef_qr_host) {
                problems.push(err("isp.ksef_qr_host".into(), reason));
            }
        }
        if let Some(path) = &self.isp.logo {
            if let Err(reason) = crate::web::billing::check_logo(path) {
                problems.push(err("isp.logo".into(), reason));
            }
        }
        for (i, p) in self.web.trusted_proxies.iter().enumerate() {
            if let Err(e) = parse_prefix(p).map_err(|r| err(format!("web.trusted_proxies[{i}]"), r))
            {
                problems.push(e);
            }
        }
        if !self.web.public_url.is_empty() && self.web.public_host().is_none() {
            problems.push(err(
                "web.public_url".into(),
                "must be empty or an https:// (or http://) address with a host name".into(),
            ));
        }
        for (i, alias) in self.web.host_aliases.iter().enumerate() {
            let name = host_name(alias);
            let ok = !name.is_empty()
                && name.len() <= 253
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-.:".contains(&b));
            if !ok {
                problems.push(err(
                    format!("web.host_aliases[{i}]"),
                    format!("{alias:?} is not a host name or address (no scheme, port or path)"),
                ));
            }
        }
        for (key, v) in [
            ("web.header_timeout_secs", self.web.header_timeout_secs),
            ("web.request_timeout_secs", self.web.request_timeout_secs),
            ("web.max_connections", self.web.max_connections as u64),
        ] {
            if v == 0 {
                problems.push(err(key.into(), "must be at least 1".into()));
            }
        }
        if self.web.session_idle_minutes == 0 {
            problems.push(err(
                "web.session_idle_minutes".into(),
                "must be at least 1".into(),
            ));
        }
        if self.web.session_absolute_hours == 0
            || self.web.session_absolute_hours * 60 < self.web.session_idle_minutes
        {
            problems.push(err(
                "web.session_absolute_hours".into(),
                "must be at least 1 and not shorter than session_idle_minutes".into(),
            ));
        }
        if self.web.accounts_per_subscriber == 0 {
            problems.push(err(
                "web.accounts_per_subscriber".into(),
                "must be at least 1".into(),
            ));
        }
        if let Err(e) = self
            .mail
            .check()
            .map_err(|e| err(e.key.to_owned(), e.reason.clone()))
        {
            problems.push(e);
        }
        for (i, t) in self.ops.tokens.iter().enumerate() {
            if t.name.trim().is_empty() {
                problems.push(err(
                    format!("ops.tokens[{i}].name"),
                    "must not be empty".into(),
                ));
            }
            if t.sha256.len() != 64 || !t.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
                problems.push(err(
                    format!("ops.tokens[{i}].sha256"),
                    "must be 64 hex digits (make one with `ebok ops token NAME`)".into(),
                ));
            }
        }
        if self.retention.history_days == 0 || self.retention.interval_hours == 0 {
            problems.push(err(
                "retention".into(),
                "history_days and interval_hours must be at least 1".into(),
            ));
        }
        if let Some(r) = &self.reminders {
            for (key, reason) in r.problems() {
                problems.push(err(format!("reminders.{key}"), reason));
            }
        }
        if tracing_subscriber::EnvFilter::try_new(&self.log.level).is_err() {
            problems.push(err(
                "log.level".into(),
                format!("'{}' is not a log filter", self.log.level),
            ));
        }
        match problems.len() {
            0 => Ok(()),
            _ => {
                let mut first = problems.remove(0);
                first.more = problems.into_iter().map(|p| (p.key, p.reason)).collect();
                Err(first)
            }
        }
    }
}
