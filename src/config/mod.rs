//! Configuration: one serde struct with defaults, read from a TOML file, overridden by
//! `EBOK_*` environment variables, then by command-line flags. Every error names the file,
//! the key and the reason.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

mod ops;
mod radius;
mod sessions;
mod storage;
mod validate;
mod web;

pub use self::ops::*;
pub use self::radius::*;
pub use self::sessions::*;
pub use self::storage::*;
pub use self::web::*;

/// The commented example configuration shipped in the repository.
pub const EXAMPLE: &str = include_str!("../../systemd/ebok.example.toml");

/// What is wrong with a configuration: where (file and full key path, with the environment
/// variable when the value came from one) and why; the first problem, and every other one
/// found in the same pass in `more`.
#[derive(Debug)]
pub struct ConfigError {
    pub file: String,
    pub key: String,
    pub reason: String,
    /// Further problems: (key, reason).
    pub more: Vec<(String, String)>,
}

impl ConfigError {
    fn new(file: &str, key: impl Into<String>, reason: impl Into<String>) -> Self {
        ConfigError {
            file: file.to_owned(),
            key: key.into(),
            reason: reason.into(),
            more: Vec::new(),
        }
    }

    /// Every problem: (key, reason).
    pub fn all(&self) -> impl Iterator<Item = (&str, &str)> {
        std::iter::once((self.key.as_str(), self.reason.as_str()))
            .chain(self.more.iter().map(|(k, r)| (k.as_str(), r.as_str())))
    }
}

impl std::fmt::Display for ConfigError {
    /// One line per problem: `FILE: KEY: REASON`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, (key, reason)) in self.all().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{}: {key}: {reason}", self.file)?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub radius: RadiusConfig,
    pub capture: CaptureConfig,
    pub nas: Vec<NasConfig>,
    pub sessions: SessionsConfig,
    pub database: DatabaseConfig,
    pub state: StateConfig,
    pub metrics: MetricsConfig,
    pub web: WebConfig,
    pub isp: IspConfig,
    pub mail: crate::mail::MailConfig,
    pub ops: OpsConfig,
    pub retention: RetentionConfig,
    /// `[reminders]`: payment reminders by mail; absent: none.
    pub reminders: Option<RemindersConfig>,
    pub log: LogConfig,
    /// `ebok run --demo`: loopback lines, and a panel without `public_url` on any address.
    #[serde(skip)]
    pub demo: bool,
}

/// Overrides given on the command line (applied last).
#[derive(Debug, Clone, Default)]
pub struct CliOverrides {
    pub radius_listen: Vec<SocketAddr>,
    pub metrics_listen: Option<SocketAddr>,
    pub web_listen: Option<SocketAddr>,
    pub store: Option<StoreKind>,
    pub redis_url: Option<String>,
    pub database_url: Option<String>,
    pub state_dir: Option<PathBuf>,
    pub log_level: Option<String>,
}

/// The name errors use for a configuration that has no file.
pub const NO_FILE: &str = "(defaults)";

impl Config {
    /// What the panel and the ops API are built from.
    pub fn panel(&self) -> crate::web::settings::PanelConfig {
        crate::web::settings::PanelConfig {
            web: self.web.clone(),
            isp: self.isp.clone(),
            ops: self.ops.clone(),
            mail: self.mail.clone(),
            state_dir: self.state.dir.clone(),
            shared: (self.sessions.store == StoreKind::Redis).then(|| {
                crate::web::settings::SharedRedis {
                    target: self.sessions.redis_target(),
                    prefix: self.sessions.redis_prefix.clone(),
                }
            }),
            demo: self.demo,
            reminders: self.reminders,
        }
    }
    /// What serving the panel needs beyond [`Config::validate`]: a `public_url` unless the
    /// panel listens on loopback only or this is the demo (links in mails, and the host
    /// names it answers to, come from it).
    pub fn validate_for_serving(&self, file: &str) -> Result<(), ConfigError> {
        if self.web.public_url.is_empty() && !self.web.listen.ip().is_loopback() && !self.demo {
            return Err(ConfigError::new(
                file,
                "web.public_url",
                format!(
                    "must be set when web.listen ({}) is not a loopback address: mails link \
                     to it, and the panel answers only to its host name",
                    self.web.listen
                ),
            ));
        }
        Ok(())
    }

    /// What is allowed but most likely not meant: (key, why). `config check` prints them,
    /// `run` logs them.
    pub fn warnings(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        if self.isp.name.trim().is_empty() && !self.demo {
            out.push((
                "isp.name",
                "is empty: the page header, mails and invoices show no provider name".to_owned(),
            ));
        }
        if self.isp.nip.trim().is_empty() && !self.demo {
            out.push((
                "isp.nip",
                "is empty: invoices carry no seller's NIP and transfer QR codes no recipient's"
                    .to_owned(),
            ));
        }
        let s = &self.sessions;
        if s.store == StoreKind::Redis
            && (s.redis_cluster.is_some() || s.redis_sentinel.is_some())
            && s.redis_url != SessionsConfig::default().redis_url
        {
            out.push((
                "sessions.redis_url",
                "is not used: redis_cluster or redis_sentinel says where Redis is".to_owned(),
            ));
        }
        if self.web.public_url.is_empty() {
            out.push((
                "web.public_url",
                format!(
                    "is not set: mails link to http://{}/ and the panel answers only to \
                     loopback names; set it to the address subscribers use",
                    self.web.listen
                ),
            ));
        }
        out
    }

    /// Load: defaults, then the file (when given), then `EBOK_*` variables from `env`, then
    /// `cli`; finally validate.
    pub fn load(
        path: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
        cli: &CliOverrides,
    ) -> Result<Config, ConfigError> {
        let file = path
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| NO_FILE.to_owned());
        let mut doc = match path {
            Some(p) => {
                let text = std::fs::read_to_string(p)
                    .map_err(|e| ConfigError::new(&file, "-", format!("cannot read: {e}")))?;
                text.parse::<toml::Table>()
                    .map_err(|e| toml_error(&file, &text, &e))?
            }
            None => toml::Table::new(),
        };
        let from_env = apply_env(&mut doc, env).map_err(|(key, reason)| {
            ConfigError::new(&file, key, format!("{reason} (from the environment)"))
        })?;
        let mut config = deserialize_all(&file, doc, &from_env)?;
        config.apply_cli(cli);
        config.validate(&file)?;
        Ok(config)
    }

    fn apply_cli(&mut self, cli: &CliOverrides) {
        if !cli.radius_listen.is_empty() {
            self.radius.listen = cli.radius_listen.clone();
        }
        if let Some(a) = cli.metrics_listen {
            self.metrics.listen = a;
        }
        if let Some(a) = cli.web_listen {
            self.web.listen = a;
        }
        if let Some(s) = cli.store {
            self.sessions.store = s;
        }
        if let Some(u) = &cli.redis_url {
            // The one server named last wins over a Cluster or Sentinel set in the file.
            self.sessions.redis_url = u.clone();
            self.sessions.redis_cluster = None;
            self.sessions.redis_sentinel = None;
        }
        if let Some(u) = &cli.database_url {
            self.database.url = u.clone();
        }
        if let Some(d) = &cli.state_dir {
            self.state.dir = d.clone();
        }
        if let Some(l) = &cli.log_level {
            self.log.level = l.clone();
        }
    }
}

/// Apply `EBOK_SECTION__KEY=value` variables onto the TOML document. A value is read as a
/// TOML value when it parses as one (numbers, booleans, arrays), else as a string.
/// Put the `EBOK_SECTION__KEY` variables of `env` into `doc`; returns which key each one set
/// (`radius.listen` → `EBOK_RADIUS__LISTEN`), for error messages.
fn apply_env(
    doc: &mut toml::Table,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<std::collections::HashMap<String, String>, (String, String)> {
    let mut set = std::collections::HashMap::new();
    let mut vars: Vec<(String, String)> = env
        .into_iter()
        .filter(|(k, _)| k.starts_with("EBOK_") && k.contains("__"))
        .collect();
    vars.sort();
    for (name, raw) in vars {
        let path: Vec<String> = name["EBOK_".len()..]
            .split("__")
            .map(|s| s.to_ascii_lowercase())
            .collect();
        let key = path.join(".");
        if path.iter().any(|p| p.is_empty()) {
            return Err((key, format!("malformed variable name {name}")));
        }
        let value = format!("v = {raw}")
            .parse::<toml::Table>()
            .ok()
            .and_then(|mut t| t.remove("v"))
            .unwrap_or_else(|| toml::Value::String(raw.clone()));
        let mut table = &mut *doc;
        for section in &path[..path.len() - 1] {
            let entry = table
                .entry(section.clone())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            table = entry
                .as_table_mut()
                .ok_or_else(|| (key.clone(), format!("{section} is not a section")))?;
        }
        table.insert(path[path.len() - 1].clone(), value);
        set.insert(key, name);
    }
    Ok(set)
}

/// Deserialize `doc` into a [`Config`], reporting every key serde refuses, not only the
/// first: each refused key is taken out (its default applies) and the rest read again.
fn deserialize_all(
    file: &str,
    mut doc: toml::Table,
    from_env: &std::collections::HashMap<String, String>,
) -> Result<Config, ConfigError> {
    let mut problems: Vec<(String, String)> = Vec::new();
    loop {
        match serde_path_to_error::deserialize::<_, Config>(toml::Value::Table(doc.clone())) {
            Ok(config) if problems.is_empty() => return Ok(config),
            Ok(_) => break,
            Err(e) => {
                let mut segments: Vec<String> = e
                    .path()
                    .iter()
                    .filter_map(|s| match s {
                        serde_path_to_error::Segment::Map { key } => Some(key.clone()),
                        serde_path_to_error::Segment::Seq { index } => Some(format!("[{index}]")),
                        _ => None,
                    })
                    .collect();
                let message = e.into_inner().message().to_owned();
                // An unknown key is reported at its section: name the key itself.
                if let Some(unknown) =
                    backquoted(&message).filter(|_| message.starts_with("unknown field"))
                {
                    if segments.last() != Some(&unknown) {
                        segments.push(unknown);
                    }
                }
                let key = key_path(&segments);
                let mut reason = plain(&message);
                if let Some(var) = from_env.get(&key) {
                    reason.push_str(&format!(" (from the environment variable {var})"));
                }
                let repeated = problems.iter().any(|(k, _)| *k == key);
                problems.push((key, reason));
                if repeated || problems.len() > 64 || !remove_path(&mut doc, &segments) {
                    break;
                }
            }
        }
    }
    let (key, reason) = problems.remove(0);
    let mut e = ConfigError::new(file, key, reason);
    e.more = problems;
    Err(e)
}

/// `["nas", "[0]", "secret"]` → `nas[0].secret`.
fn key_path(segments: &[String]) -> String {
    let mut out = String::new();
    for s in segments {
        if !s.starts_with('[') && !out.is_empty() {
            out.push('.');
        }
        out.push_str(s);
    }
    if out.is_empty() {
        "-".to_owned()
    } else {
        out
    }
}

/// Take the value at `segments` out of `doc`; false when there is nothing there.
fn remove_path(doc: &mut toml::Table, segments: &[String]) -> bool {
    let Some((last, parents)) = segments.split_last() else {
        return false;
    };
    let mut value: &mut toml::Value = match parents.first() {
        Some(first) => match doc.get_mut(first) {
            Some(v) => v,
            None => return false,
        },
        None => return doc.remove(last).is_some(),
    };
    for s in &parents[1..] {
        let next = match (s.strip_prefix('[').and_then(|i| i.strip_suffix(']')), value) {
            (Some(i), toml::Value::Array(a)) => i.parse::<usize>().ok().and_then(|i| a.get_mut(i)),
            (None, toml::Value::Table(t)) => t.get_mut(s),
            _ => None,
        };
        match next {
            Some(v) => value = v,
            None => return false,
        }
    }
    match (
        last.strip_prefix('[').and_then(|i| i.strip_suffix(']')),
        value,
    ) {
        (Some(i), toml::Value::Array(a)) => match i.parse::<usize>() {
            Ok(i) if i < a.len() => {
                a.remove(i);
                true
            }
            _ => false,
        },
        (None, toml::Value::Table(t)) => t.remove(last).is_some(),
        _ => false,
    }
}

/// The first `backquoted` word of a serde message.
fn backquoted(message: &str) -> Option<String> {
    message.split('`').nth(1).map(str::to_owned)
}

/// A serde message in the words of the configuration: kinds of values instead of Rust type
/// names, "key" instead of "field".
fn plain(message: &str) -> String {
    let kind = |t: &str| -> String {
        let t = t.trim().trim_end_matches('.');
        match t {
            "u8" | "u16" | "u32" | "u64" | "usize" => "a whole number of 0 or more".into(),
            "i8" | "i16" | "i32" | "i64" | "isize" => "a whole number".into(),
            "f32" | "f64" => "a number".into(),
            "a boolean" => "true or false".into(),
            "a string" => "text in quotes".into(),
            "a sequence" => "a list in square brackets".into(),
            "a map" => "a section".into(),
            "socket address" => "an address and port (127.0.0.1:1813 or [::]:1813)".into(),
            t if t.starts_with("struct ") => "a section".into(),
            t => t.replace('`', "").to_owned(),
        }
    };
    let found = |what: &str| -> String {
        let what = what.trim();
        if let Some(v) = what.strip_prefix("string ") {
            format!("the text {v}")
        } else if let Some(v) = what.strip_prefix("integer ") {
            format!("the number {}", v.trim_matches('`'))
        } else if let Some(v) = what.strip_prefix("floating point ") {
            format!("the number {}", v.trim_matches('`'))
        } else if let Some(v) = what.strip_prefix("boolean ") {
            v.trim_matches('`').to_string()
        } else if what == "sequence" {
            "a list".into()
        } else if what == "map" {
            "a section".into()
        } else {
            what.replace('`', "")
        }
    };
    if let Some(rest) = message
        .strip_prefix("invalid type: ")
        .or_else(|| message.strip_prefix("invalid value: "))
    {
        if let Some((what, expected)) = rest.split_once(", expected ") {
            return format!("expected {}, found {}", kind(expected), found(what));
        }
    }
    if message.starts_with("unknown field") {
        let known: Vec<&str> = message
            .split_once("expected ")
            .map(|(_, k)| k.split('`').skip(1).step_by(2).collect())
            .unwrap_or_default();
        return if known.is_empty() {
            "unknown key".into()
        } else {
            format!("unknown key (known here: {})", known.join(", "))
        };
    }
    if message.starts_with("unknown variant") {
        let value = backquoted(message).unwrap_or_default();
        let known: Vec<&str> = message
            .split_once("expected ")
            .map(|(_, k)| k.split('`').skip(1).step_by(2).collect())
            .unwrap_or_default();
        return format!("unknown value {value:?} (expected {})", known.join(" or "));
    }
    if let Some(field) = message.strip_prefix("missing field ") {
        return format!("missing key {}", field.replace('`', ""));
    }
    message.to_owned()
}

/// A TOML syntax error with its line.
fn toml_error(file: &str, text: &str, e: &toml::de::Error) -> ConfigError {
    let line = e
        .span()
        .map(|s| text[..s.start.min(text.len())].lines().count().max(1));
    let key = match line {
        Some(l) => format!("line {l}"),
        None => "-".to_owned(),
    };
    ConfigError::new(file, key, e.message().trim().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_text(text: &str, env: Vec<(&str, &str)>) -> Result<Config, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ebok.toml");
        std::fs::write(&path, text).unwrap();
        Config::load(
            Some(&path),
            env.into_iter().map(|(a, b)| (a.to_owned(), b.to_owned())),
            &CliOverrides::default(),
        )
    }

    #[test]
    fn example_is_valid_and_matches_defaults() {
        let c = load_text(EXAMPLE, vec![]).unwrap();
        let d = Config::default();
        assert_eq!(c.radius.listen, d.radius.listen);
        assert_eq!(c.radius.recv_buffer, d.radius.recv_buffer);
        assert_eq!(c.radius.journal_max_bytes, d.radius.journal_max_bytes);
        assert_eq!(c.sessions.interim_interval, d.sessions.interim_interval);
        assert_eq!(c.database.url, d.database.url);
        assert_eq!(c.metrics.listen, d.metrics.listen);
        assert_eq!(c.nas.len(), 1);
        assert_eq!(c.nas[0].read_secret().unwrap(), b"testing123");
    }

    #[test]
    fn env_overrides_file_and_cli_overrides_env() {
        let c = load_text(
            "[sessions]\nstore = \"embedded\"\n",
            vec![
                ("EBOK_SESSIONS__STORE", "redis"),
                ("EBOK_RADIUS__MAX_IN_FLIGHT", "7"),
                ("EBOK_RADIUS__LISTEN", "[\"127.0.0.1:1999\"]"),
                ("OTHER", "x"),
            ],
        )
        .unwrap();
        assert_eq!(c.sessions.store, StoreKind::Redis);
        assert_eq!(c.radius.max_in_flight, 7);
        assert_eq!(c.radius.listen, vec!["127.0.0.1:1999".parse().unwrap()]);

        let cli = CliOverrides {
            store: Some(StoreKind::Embedded),
            ..Default::default()
        };
        let c = Config::load(
            None,
            vec![("EBOK_SESSIONS__STORE".to_owned(), "redis".to_owned())],
            &cli,
        )
        .unwrap();
        assert_eq!(c.sessions.store, StoreKind::Embedded);
    }

    #[test]
    fn errors_name_file_key_and_reason() {
        let e = load_text(
            "[[nas]]\nname = \"a\"\nprefixes = [\"10.0.0.0/33\"]\nsecret = \"s\"\n",
            vec![],
        )
        .unwrap_err();
        assert!(e.file.ends_with("ebok.toml"), "{e}");
        assert_eq!(e.key, "nas[0].prefixes[0]");
        assert!(e.reason.contains("10.0.0.0/33"), "{e}");

        let e = load_text("[radius]\nlisten = [\"x\"]\n", vec![]).unwrap_err();
        assert_eq!(e.key, "radius.listen[0]", "{e}");
        assert!(e.reason.contains("address"), "{e}");

        let e = load_text("[radius]\nlisten = \n", vec![]).unwrap_err();
        assert_eq!(e.key, "line 2", "{e}");

        let e = load_text("[radius]\nlisen = []\n", vec![]).unwrap_err();
        assert_eq!(e.key, "radius.lisen", "{e}");
        assert!(
            e.reason.starts_with("unknown key (known here: listen, "),
            "{e}"
        );
        let e = load_text("[radius]\nreplay_nice = 20\n", vec![]).unwrap_err();
        assert_eq!(e.key, "radius.replay_nice", "{e}");
        assert!(e.reason.contains("0..=19"), "{e}");
        let e = load_text("[radius]\njournal_max_bytes = 4096\n", vec![]).unwrap_err();
        assert_eq!(e.key, "radius.journal_max_bytes", "{e}");

        let e = load_text("[isp]\nnip = \"526-025-02-75\"\n", vec![]).unwrap_err();
        assert_eq!(e.key, "isp.nip", "{e}");
        let e = load_text(
            "[isp]\nksef_qr_host = \"https://qr.ksef.mf.gov.pl/\"\n",
            vec![],
        )
        .unwrap_err();
        assert_eq!(e.key, "isp.ksef_qr_host", "{e}");
        assert!(e.reason.contains("bare host name"), "{e}");
        let c = load_text("[isp]\nksef_qr_host = \"qr-test.ksef.mf.gov.pl\"\n", vec![]).unwrap();
        assert_eq!(c.isp.ksef_qr_host(), "qr-test.ksef.mf.gov.pl");
        assert_eq!(
            IspConfig::default().ksef_qr_host(),
            "qr.ksef.mf.gov.pl",
            "empty: production"
        );
        let e = load_text("[web]\ntrusted_proxies = [\"10.0.0.0/40\"]\n", vec![]).unwrap_err();
        assert_eq!(e.key, "web.trusted_proxies[0]", "{e}");

        let e =
            load_text("[[nas]]\nname = \"a\"\nprefixes = [\"10.0.0.1\"]\n", vec![]).unwrap_err();
        assert_eq!(e.key, "nas[0].secret");

        let e = load_text(
            "[[nas]]\nname = \"a\"\nprefixes = [\"10.0.0.1\"]\nsecret_file = \"/nonexistent/x\"\n",
            vec![],
        )
        .unwrap_err();
        assert_eq!(e.key, "nas[0].secret_file");
        assert!(e.reason.contains("/nonexistent/x"));

        let e = load_text("[database]\nurl = \"mysql://x\"\n", vec![]).unwrap_err();
        assert_eq!(e.key, "database.url");
    }

    /// Every problem at once, each with its full key, in plain words, naming the
    /// environment variable a value came from.
    #[test]
    fn every_problem_at_once_in_plain_words() {
        let e = load_text(
            "[radius]\nlistn = 1\nmax_in_flight = \"many\"\n[sessions]\nstore = \"mongo\"\n\
             [[nas]]\nname = \"a\"\nprefixes = [\"10.0.0.1\"]\nsecret = \"s\"\nunknown = 1\n",
            vec![("EBOK_WEB__MAX_CONNECTIONS", "-5")],
        )
        .unwrap_err();
        let all: std::collections::BTreeMap<&str, &str> = e.all().collect();
        assert_eq!(
            all.keys().copied().collect::<Vec<_>>(),
            [
                "nas[0].unknown",
                "radius.listn",
                "radius.max_in_flight",
                "sessions.store",
                "web.max_connections"
            ],
            "{e}"
        );
        assert_eq!(
            all["radius.max_in_flight"],
            "expected a whole number of 0 or more, found the text \"many\""
        );
        assert_eq!(
            all["sessions.store"],
            "unknown value \"mongo\" (expected embedded or redis)"
        );
        assert!(
            all["web.max_connections"]
                .ends_with("(from the environment variable EBOK_WEB__MAX_CONNECTIONS)"),
            "{e}"
        );
        assert_eq!(e.to_string().lines().count(), 5, "one line each: {e}");
        // Checks after reading report together too.
        let e = load_text(
            "[radius]\nreplay_nice = 20\n[database]\nurl = \"mysql://x\"\n",
            vec![],
        )
        .unwrap_err();
        let keys: Vec<&str> = e.all().map(|(k, _)| k).collect();
        assert_eq!(keys, ["radius.replay_nice", "database.url"]);
    }

    /// `[reminders]`: absent is off, present with defaults, out-of-range days stop start-up
    /// naming the file and key.
    #[test]
    fn reminders_section() {
        assert_eq!(load_text("", vec![]).unwrap().reminders, None);
        let c = load_text(
            "[reminders]
",
            vec![],
        )
        .unwrap();
        assert_eq!(c.reminders, Some(RemindersConfig::default()));
        assert_eq!(c.panel().reminders, c.reminders);
        let c = load_text(
            "[reminders]
days_before = 30
days_after = 60
",
            vec![],
        )
        .unwrap();
        assert_eq!(
            c.reminders,
            Some(RemindersConfig {
                days_before: 30,
                days_after: 60,
                ..RemindersConfig::default()
            })
        );
        let e = load_text(
            "[reminders]
days_before = 0
",
            vec![("EBOK_REMINDERS__DAYS_AFTER", "61")],
        )
        .unwrap_err();
        let all: Vec<(&str, &str)> = e.all().collect();
        assert_eq!(
            all.iter().map(|(k, _)| *k).collect::<Vec<_>>(),
            ["reminders.days_before", "reminders.days_after"],
            "{e}"
        );
        assert!(
            e.to_string()
                .contains("ebok.toml: reminders.days_before: 0 is outside 1..=30"),
            "{e}"
        );
        assert!(load_text(
            "[reminders]
weekly = true
",
            vec![]
        )
        .is_err());
    }

    #[test]
    fn secret_file_first_line_and_hidden_in_debug() {
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("s");
        std::fs::write(&secret, "s3cret\nignored\n").unwrap();
        let c = load_text(
            &format!(
                "[[nas]]\nname = \"a\"\nprefixes = [\"10.0.0.1\"]\nsecret_file = \"{}\"\n",
                secret.display()
            ),
            vec![],
        )
        .unwrap();
        assert_eq!(c.nas[0].read_secret().unwrap(), b"s3cret");
        let c = load_text(
            "[[nas]]\nname = \"a\"\nprefixes = [\"10.0.0.1\"]\nsecret = \"topsecret\"\n",
            vec![],
        )
        .unwrap();
        assert!(!format!("{c:?}").contains("topsecret"));
        assert_eq!(
            redact_url("postgres://u:pw@h/db"),
            "postgres://u:***@h/db".to_owned()
        );
    }

    /// `[sessions]` names one Redis server, a Cluster or a Sentinel set; the target follows
    /// what is given, and secrets stay out of `Debug`.
    #[test]
    fn redis_target_is_the_deployment_given() {
        use ebok_live::redis_link::RedisTarget;
        let c = load_text("[sessions]\nstore = \"redis\"\n", vec![]).unwrap();
        assert_eq!(
            c.sessions.redis_target(),
            RedisTarget::Single {
                url: "redis://127.0.0.1:6379/".into()
            }
        );
        let c = load_text(
            "[sessions]\nstore = \"redis\"\n\
             redis_cluster = [\"redis://:pw1@10.0.0.1:6379\", \"rediss://10.0.0.2:6379\"]\n",
            vec![],
        )
        .unwrap();
        assert_eq!(
            c.sessions.redis_target(),
            RedisTarget::Cluster {
                nodes: vec![
                    "redis://:pw1@10.0.0.1:6379".into(),
                    "rediss://10.0.0.2:6379".into()
                ]
            }
        );
        assert!(!format!("{c:?}").contains("pw1"));
        assert!(c.warnings().iter().all(|(k, _)| *k != "sessions.redis_url"));
        let c = load_text(
            "[sessions]\nstore = \"redis\"\nredis_url = \"redis://other:6379/\"\n\
             redis_sentinel = { service = \"ebok\", nodes = [\"redis://u:pw2@s1:26379\"] }\n",
            vec![],
        )
        .unwrap();
        assert_eq!(
            c.sessions.redis_target(),
            RedisTarget::Sentinel {
                service: "ebok".into(),
                nodes: vec!["redis://u:pw2@s1:26379".into()]
            }
        );
        assert!(!format!("{c:?}").contains("pw2"));
        assert!(!format!("{:?}", c.panel()).contains("pw2"));
        assert!(c.warnings().iter().any(|(k, _)| *k == "sessions.redis_url"));
        // From the environment, a table's keys one by one.
        let c = load_text(
            "[sessions]\nstore = \"redis\"\n",
            vec![
                ("EBOK_SESSIONS__REDIS_SENTINEL__SERVICE", "ebok"),
                (
                    "EBOK_SESSIONS__REDIS_SENTINEL__NODES",
                    "[\"redis://s1:26379\"]",
                ),
            ],
        )
        .unwrap();
        assert!(matches!(
            c.sessions.redis_target(),
            RedisTarget::Sentinel { .. }
        ));
        // The command line's one server wins over the file's Cluster.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ebok.toml");
        std::fs::write(
            &path,
            "[sessions]\nstore = \"redis\"\nredis_cluster = [\"redis://n:1\"]\n",
        )
        .unwrap();
        let cli = CliOverrides {
            redis_url: Some("redis://cli:6379/".into()),
            ..Default::default()
        };
        let c = Config::load(Some(&path), Vec::new(), &cli).unwrap();
        assert_eq!(
            c.sessions.redis_target(),
            RedisTarget::Single {
                url: "redis://cli:6379/".into()
            }
        );
    }

    /// Every problem of the Redis keys, under its full key path; only checked when the
    /// store is Redis.
    #[test]
    fn redis_deployment_problems_name_their_keys() {
        let keys = |text: &str| -> Vec<String> {
            let e =
                load_text(&format!("[sessions]\nstore = \"redis\"\n{text}"), vec![]).unwrap_err();
            e.all().map(|(k, _)| k.to_owned()).collect()
        };
        assert_eq!(
            keys("redis_cluster = [\"redis://a:1\"]\nredis_sentinel = { service = \"x\", nodes = [\"redis://s:2\"] }\n"),
            ["sessions.redis_sentinel"]
        );
        assert_eq!(keys("redis_cluster = []\n"), ["sessions.redis_cluster"]);
        assert_eq!(
            keys("redis_cluster = [\"redis://a:1\", \"http://b:2\", \"c:3\"]\n"),
            ["sessions.redis_cluster[1]", "sessions.redis_cluster[2]"]
        );
        assert_eq!(
            keys("redis_sentinel = { service = \" \", nodes = [] }\n"),
            [
                "sessions.redis_sentinel.nodes",
                "sessions.redis_sentinel.service"
            ]
        );
        assert_eq!(
            keys("redis_sentinel = { service = \"ebok\", nodes = [\"redis://s:1\", \"s:2\"] }\n"),
            ["sessions.redis_sentinel.nodes[1]"]
        );
        assert_eq!(
            keys("redis_sentinel = { service = \"ebok\", node = [] }\n"),
            ["sessions.redis_sentinel.node"]
        );
        let e = load_text(
            "[sessions]\nstore = \"redis\"\nredis_cluster = [\"x://u:secret@h:1\"]\n",
            vec![],
        )
        .unwrap_err();
        assert!(!e.to_string().contains("secret"), "{e}");
        assert!(
            e.to_string()
                .contains("sessions.redis_cluster[0]: \"x://u:***@h:1\""),
            "{e}"
        );
        assert_eq!(keys("redis_url = \"http://x\"\n"), ["sessions.redis_url"]);
        // Unused while the live map is embedded.
        assert!(load_text("[sessions]\nredis_cluster = []\n", vec![]).is_ok());
    }

    /// `[isp] logo` is checked at start-up, and the problem names the key.
    #[test]
    fn a_logo_that_is_not_a_png_is_refused_naming_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let text = dir.path().join("logo.png");
        std::fs::write(&text, "not an image").unwrap();
        for path in [text, dir.path().join("missing.png")] {
            let mut c = Config::default();
            c.isp.logo = Some(path.clone());
            let e = c.validate("ebok.toml").err().map(|e| e.to_string());
            let e = e.unwrap_or_else(|| panic!("{} accepted", path.display()));
            assert!(e.contains("isp.logo"), "{e}");
        }
    }

    #[test]
    fn capture_ports_must_be_given() {
        // The interface is looked up when capture starts (its test is in ebok-radius).
        let c = load_text("[capture]\ninterface = \"lo\"\n", vec![]).unwrap();
        assert_eq!(c.capture.ports, vec![1813]);
        assert!(!c.capture.promiscuous);
        let e = load_text("[capture]\ninterface = \"lo\"\nports = []\n", vec![]).unwrap_err();
        assert_eq!(e.key, "capture.ports", "{e}");
        let e = load_text("[capture]\ninterface = \"lo\"\nports = [0]\n", vec![]).unwrap_err();
        assert_eq!(e.key, "capture.ports", "{e}");
        // Off by default, whatever the ports say.
        assert!(load_text("[capture]\nports = []\n", vec![]).is_ok());
    }

    #[test]
    fn default_nas_is_loopback_only() {
        let c = Config::default();
        let nas = c.nas_entries();
        assert_eq!(nas.len(), 1);
        assert!(nas[0]
            .prefixes
            .iter()
            .all(|p| parse_prefix(p).unwrap().addr().is_loopback()));
    }

    #[test]
    fn nas_table_most_specific_prefix_wins_and_mapped_v4_matches() {
        let config: Config = toml::from_str(
            r#"
            [[nas]]
            name = "group"
            prefixes = ["10.0.0.0/24"]
            secret = "group-secret"
            interim_interval = 60
            grace = 30
            [[nas]]
            name = "special"
            prefixes = ["10.0.0.7", "2001:db8::/32"]
            secret = "special-secret"
            "#,
        )
        .unwrap();
        let t = config.nas_table().unwrap();
        let c = t.find("10.0.0.7".parse().unwrap()).unwrap();
        assert_eq!(c.name, "special");
        assert_eq!(&*c.secret, b"special-secret");
        assert_eq!(c.expiry, std::time::Duration::from_secs(2 * 300 + 60));
        let g = t.find("::ffff:10.0.0.8".parse().unwrap()).unwrap();
        assert_eq!(g.name, "group");
        assert_eq!(g.expiry, std::time::Duration::from_secs(150));
        assert_eq!(
            t.find("2001:db8::1".parse().unwrap()).unwrap().name,
            "special"
        );
        assert!(t.find("10.0.1.1".parse().unwrap()).is_none());
    }
}
