//! The NAS client table: which shared secret and settings apply to a UDP source address.
//! The most specific prefix wins, so a /32 entry can override a /24 shared by a NAS group.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use ipnet::IpNet;

/// One NAS entry in force.
#[derive(Clone)]
pub struct NasClient {
    pub name: String,
    pub secret: Arc<[u8]>,
    pub vendor: String,
    /// Time without updates after which a session of this NAS is closed as expired.
    pub expiry: Duration,
    pub coa_port: u16,
}

impl std::fmt::Debug for NasClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NasClient")
            .field("name", &self.name)
            .field("vendor", &self.vendor)
            .field("expiry", &self.expiry)
            .finish_non_exhaustive()
    }
}

/// Prefix → NAS entry, longest prefix first.
#[derive(Debug, Clone, Default)]
pub struct NasTable {
    entries: Vec<(IpNet, Arc<NasClient>)>,
}

impl NasTable {
    /// The table of `clients`, each with the source prefixes it answers for.
    pub fn new(clients: impl IntoIterator<Item = (NasClient, Vec<IpNet>)>) -> NasTable {
        let mut entries = Vec::new();
        for (client, prefixes) in clients {
            let client = Arc::new(client);
            for p in prefixes {
                entries.push((p, client.clone()));
            }
        }
        entries.sort_by_key(|e| std::cmp::Reverse(e.0.prefix_len()));
        NasTable { entries }
    }

    /// The entry for a source address. IPv4-mapped IPv6 sources match IPv4 prefixes.
    pub fn find(&self, source: IpAddr) -> Option<&Arc<NasClient>> {
        let source = match source {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(source),
            v4 => v4,
        };
        self.entries
            .iter()
            .find(|(net, _)| net.contains(&source))
            .map(|(_, c)| c)
    }

    /// The entry by its configured name.
    pub(crate) fn by_name(&self, name: &str) -> Option<&Arc<NasClient>> {
        self.entries
            .iter()
            .find(|(_, c)| c.name == name)
            .map(|(_, c)| c)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Each NAS entry once, with its prefixes, in name order.
    pub fn clients(&self) -> Vec<(Arc<NasClient>, Vec<IpNet>)> {
        let mut out: Vec<(Arc<NasClient>, Vec<IpNet>)> = Vec::new();
        for (net, client) in &self.entries {
            match out.iter_mut().find(|(c, _)| Arc::ptr_eq(c, client)) {
                Some((_, nets)) => nets.push(*net),
                None => out.push((client.clone(), vec![*net])),
            }
        }
        out.sort_by(|a, b| a.0.name.cmp(&b.0.name));
        out
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// What this instance last heard from each NAS client entry: for operators' "is that NAS
/// still sending accounting?" (`/api/v1/nas`) and the `ebok_nas_last_seen_timestamp_seconds`
/// gauge. One lock per received batch, not per packet.
#[derive(Debug, Default)]
pub struct NasActivity {
    seen: std::sync::Mutex<std::collections::HashMap<String, NasSeen>>,
}

/// Last event and event count of one NAS client entry since this instance started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct NasSeen {
    #[serde(with = "time::serde::rfc3339")]
    pub last_seen: time::OffsetDateTime,
    pub events: u64,
}

impl NasActivity {
    /// Note events of the named entries received at `now`. The gauge moves at most once a
    /// second per entry.
    pub fn saw<'a>(&self, clients: impl Iterator<Item = &'a str>, now: time::OffsetDateTime) {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        for name in clients {
            let second = match seen.get_mut(name) {
                Some(s) => {
                    let moved = s.last_seen.unix_timestamp() != now.unix_timestamp();
                    s.last_seen = now;
                    s.events += 1;
                    if !moved {
                        continue;
                    }
                    now.unix_timestamp()
                }
                None => {
                    seen.insert(
                        name.to_owned(),
                        NasSeen {
                            last_seen: now,
                            events: 1,
                        },
                    );
                    now.unix_timestamp()
                }
            };
            metrics::gauge!("ebok_nas_last_seen_timestamp_seconds", "nas" => name.to_owned())
                .set(second as f64);
        }
    }

    /// The entry's last event, if any since start.
    pub fn get(&self, name: &str) -> Option<NasSeen> {
        let seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        seen.get(name).copied()
    }
}

/// A prefix, or a bare address as a host prefix.
pub fn parse_prefix(s: &str) -> Result<ipnet::IpNet, String> {
    if let Ok(n) = s.parse::<ipnet::IpNet>() {
        return Ok(n);
    }
    s.parse::<std::net::IpAddr>()
        .map(ipnet::IpNet::from)
        .map_err(|_| format!("'{s}' is not an IP address or prefix"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(name: &str, secret: &str, expiry: u64) -> NasClient {
        NasClient {
            name: name.to_owned(),
            secret: secret.as_bytes().into(),
            vendor: "rfc".to_owned(),
            expiry: Duration::from_secs(expiry),
            coa_port: 3799,
        }
    }

    #[test]
    fn most_specific_prefix_wins_and_mapped_v4_matches() {
        let t = NasTable::new([
            (
                client("group", "group-secret", 150),
                vec!["10.0.0.0/24".parse().unwrap()],
            ),
            (
                client("special", "special-secret", 660),
                vec![
                    "10.0.0.7/32".parse().unwrap(),
                    "2001:db8::/32".parse().unwrap(),
                ],
            ),
        ]);
        let c = t.find("10.0.0.7".parse().unwrap()).unwrap();
        assert_eq!(c.name, "special");
        assert_eq!(&*c.secret, b"special-secret");
        let g = t.find("::ffff:10.0.0.8".parse().unwrap()).unwrap();
        assert_eq!(g.name, "group");
        assert_eq!(
            t.find("2001:db8::1".parse().unwrap()).unwrap().name,
            "special"
        );
        assert!(t.find("10.0.1.1".parse().unwrap()).is_none());
        assert_eq!(t.by_name("group").unwrap().expiry, Duration::from_secs(150));
        assert_eq!(t.clients().len(), 2);
    }
}
