//! Operators' view of the live map: which sessions match a filter (NAS, login, subscriber's
//! logins, address prefix, staleness) and a per-NAS summary (session counts, newest update,
//! stale sessions). Plain functions over [`LiveSession`]s, shared by the ops API and the CLI.

use std::collections::BTreeMap;

use ipnet::IpNet;
use serde::Serialize;
use time::OffsetDateTime;

use super::LiveSession;

/// True when the session has gone without an update for more than half of its expiry
/// window (2 × interim + grace), i.e. its NAS missed at least one Interim-Update. Such a
/// session is still mapped; it is closed when the window runs out.
pub fn is_stale(s: &LiveSession, now: OffsetDateTime) -> bool {
    let window = s.expires_at - s.updated_at;
    now - s.updated_at > window / 2
}

/// What to keep. Every given criterion must hold.
#[derive(Debug, Clone, Default)]
pub struct SessionFilter {
    /// The NAS key (NAS-IP-Address / NAS-Identifier) or the configured NAS entry name.
    pub nas: Option<String>,
    /// The PPPoE login, ignoring ASCII case.
    pub login: Option<String>,
    /// Any of these logins (a subscriber's PPPoE accounts).
    pub logins: Option<Vec<String>>,
    /// The IPv4 address inside, or an IPv6 prefix overlapping, this prefix.
    pub prefix: Option<IpNet>,
    /// Only stale sessions (see [`is_stale`]).
    pub stale: bool,
}

impl SessionFilter {
    pub fn matches(&self, s: &LiveSession, now: OffsetDateTime) -> bool {
        let login = s.user_name.as_deref();
        self.nas
            .as_deref()
            .is_none_or(|n| s.nas == n || s.nas_client == n)
            && self
                .login
                .as_deref()
                .is_none_or(|want| login.is_some_and(|l| l.eq_ignore_ascii_case(want)))
            && self.logins.as_ref().is_none_or(|all| {
                login.is_some_and(|l| all.iter().any(|want| l.eq_ignore_ascii_case(want)))
            })
            && self.prefix.is_none_or(|net| holds_within(s, net))
            && (!self.stale || is_stale(s, now))
    }

    /// The matching sessions, ordered by NAS and session id.
    pub fn apply(&self, all: Vec<LiveSession>, now: OffsetDateTime) -> Vec<LiveSession> {
        let mut kept: Vec<LiveSession> = all.into_iter().filter(|s| self.matches(s, now)).collect();
        kept.sort_by(|a, b| (&a.nas, &a.session_id).cmp(&(&b.nas, &b.session_id)));
        kept
    }
}

fn holds_within(s: &LiveSession, net: IpNet) -> bool {
    match net {
        IpNet::V4(v4) => s.framed_ip.is_some_and(|ip| v4.contains(&ip)),
        IpNet::V6(v6) => s
            .ipv6_prefixes
            .iter()
            .any(|p| v6.contains(p) || p.contains(&v6)),
    }
}

/// Live sessions of one NAS client entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NasSessions {
    pub sessions: u64,
    pub stale: u64,
    /// Newest event time applied to any of its sessions: the NAS's last sign of life as
    /// every ebok instance sharing the store saw it.
    #[serde(with = "time::serde::rfc3339::option")]
    pub newest_update: Option<OffsetDateTime>,
}

/// Sessions per NAS client entry name.
pub fn per_nas(all: &[LiveSession], now: OffsetDateTime) -> BTreeMap<String, NasSessions> {
    let mut out: BTreeMap<String, NasSessions> = BTreeMap::new();
    for s in all {
        let e = out.entry(s.nas_client.clone()).or_insert(NasSessions {
            sessions: 0,
            stale: 0,
            newest_update: None,
        });
        e.sessions += 1;
        e.stale += u64::from(is_stale(s, now));
        e.newest_update = e.newest_update.max(Some(s.updated_at));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::Duration;

    fn s(nas: &str, id: &str, login: &str, ip: &str, v6: &[&str], age_s: i64) -> LiveSession {
        let now = OffsetDateTime::now_utc();
        let updated = now - Duration::seconds(age_s);
        LiveSession {
            nas: format!("10.0.0.{}", if nas == "bras-1" { 1 } else { 2 }),
            nas_client: nas.into(),
            session_id: id.into(),
            user_name: Some(login.into()),
            framed_ip: ip.parse().ok(),
            ipv6_prefixes: v6.iter().map(|p| p.parse().unwrap()).collect(),
            calling_station_id: None,
            nas_port: None,
            nas_port_id: None,
            started_at: updated - Duration::hours(1),
            updated_at: updated,
            // 2 × 300 s interim + 60 s grace
            expires_at: updated + Duration::seconds(660),
            input_octets: 0,
            output_octets: 0,
            input_packets: 0,
            output_packets: 0,
            session_time: None,
        }
    }

    fn all() -> Vec<LiveSession> {
        vec![
            s(
                "bras-2",
                "b",
                "Jan@isp",
                "83.1.2.3",
                &["2001:db8:1::/48"],
                10,
            ),
            s("bras-1", "a", "anna@isp", "83.1.9.1", &[], 400),
            s("bras-1", "c", "firma@isp", "", &["2001:db8:2:5::/64"], 100),
        ]
    }

    fn ids(f: &SessionFilter) -> Vec<String> {
        f.apply(all(), OffsetDateTime::now_utc())
            .into_iter()
            .map(|s| s.session_id)
            .collect()
    }

    #[test]
    fn filters_combine_and_order_is_stable() {
        assert_eq!(ids(&SessionFilter::default()), ["a", "c", "b"]);
        let by_nas = |n: &str| SessionFilter {
            nas: Some(n.into()),
            ..Default::default()
        };
        assert_eq!(ids(&by_nas("bras-1")), ["a", "c"]);
        assert_eq!(ids(&by_nas("10.0.0.2")), ["b"]);
        let login = SessionFilter {
            login: Some("jan@ISP".into()),
            ..Default::default()
        };
        assert_eq!(ids(&login), ["b"]);
        let logins = SessionFilter {
            logins: Some(vec!["anna@isp".into(), "firma@isp".into()]),
            nas: Some("bras-1".into()),
            ..Default::default()
        };
        assert_eq!(ids(&logins), ["a", "c"]);
        let none = SessionFilter {
            logins: Some(vec![]),
            ..Default::default()
        };
        assert!(ids(&none).is_empty());
    }

    #[test]
    fn prefix_matches_ipv4_inside_and_ipv6_overlapping_either_way() {
        let p = |net: &str| SessionFilter {
            prefix: Some(net.parse().unwrap()),
            ..Default::default()
        };
        assert_eq!(ids(&p("83.1.0.0/16")), ["a", "b"]);
        assert_eq!(ids(&p("83.1.2.3/32")), ["b"]);
        // A /64 inside the session's /48, and a /32 holding the session's /64.
        assert_eq!(ids(&p("2001:db8:1:7::/64")), ["b"]);
        assert_eq!(ids(&p("2001:db8::/32")), ["c", "b"]);
        assert!(ids(&p("2001:db9::/32")).is_empty());
    }

    #[test]
    fn stale_after_half_the_expiry_window() {
        let stale = SessionFilter {
            stale: true,
            ..Default::default()
        };
        // 660 s window: 400 s without an update is stale, 100 s is not.
        assert_eq!(ids(&stale), ["a"]);
        let summary = per_nas(&all(), OffsetDateTime::now_utc());
        assert_eq!(summary["bras-1"].sessions, 2);
        assert_eq!(summary["bras-1"].stale, 1);
        assert_eq!(summary["bras-2"].stale, 0);
        let newest = summary["bras-1"].newest_update.unwrap();
        assert!(OffsetDateTime::now_utc() - newest < Duration::seconds(105));
    }
}
