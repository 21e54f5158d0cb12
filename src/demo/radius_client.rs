//! The live demo session: signed Accounting-Requests (Start, then Interim-Updates) sent
//! through ebok's own RADIUS listener for the demo's subscriber.

use super::*;

/// RADIUS attribute types the demo NAS sends (RFC 2865, 2866, 2869, 3162).
pub(super) mod attr {
    pub const USER_NAME: u8 = 1;
    pub const NAS_IP_ADDRESS: u8 = 4;
    pub const SERVICE_TYPE: u8 = 6;
    pub const FRAMED_PROTOCOL: u8 = 7;
    pub const FRAMED_IP_ADDRESS: u8 = 8;
    pub const CALLING_STATION_ID: u8 = 31;
    pub const NAS_IDENTIFIER: u8 = 32;
    pub const ACCT_STATUS_TYPE: u8 = 40;
    pub const ACCT_DELAY_TIME: u8 = 41;
    pub const ACCT_INPUT_OCTETS: u8 = 42;
    pub const ACCT_OUTPUT_OCTETS: u8 = 43;
    pub const ACCT_SESSION_ID: u8 = 44;
    pub const ACCT_SESSION_TIME: u8 = 46;
    pub const ACCT_INPUT_PACKETS: u8 = 47;
    pub const ACCT_OUTPUT_PACKETS: u8 = 48;
    pub const ACCT_INPUT_GIGAWORDS: u8 = 52;
    pub const ACCT_OUTPUT_GIGAWORDS: u8 = 53;
    pub const EVENT_TIMESTAMP: u8 = 55;
    pub const NAS_PORT_TYPE: u8 = 61;
    pub const ACCT_INTERIM_INTERVAL: u8 = 85;
    pub const FRAMED_IPV6_PREFIX: u8 = 97;
}

/// Tries per request, and how long to wait for each answer.
pub(super) const TRIES: u32 = 3;
pub(super) const REPLY_TIMEOUT: Duration = Duration::from_secs(1);
/// Acct-Interim-Interval announced in the Start (ebok's default `[sessions] interim_interval`;
/// informative only: ebok takes the interval from its NAS configuration).
pub(super) const START_INTERIM: Duration = Duration::from_secs(300);
/// The demo router's MAC: from the range RFC 7042 reserves for documentation.
pub(super) const DEMO_MAC: &str = "00-00-5E-00-53-01";
/// Made-up average traffic of the demo line, octets per second.
pub(super) const DOWNLOAD_RATE: u64 = 250_000;
pub(super) const UPLOAD_RATE: u64 = 40_000;

/// Acct-Session-Id of the demo session for `ip`.
pub fn session_id(ip: Ipv4Addr) -> String {
    format!("demo-{ip}")
}

/// Traffic so far, from the NAS's point of view (input = from the subscriber).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Counters {
    pub(super) session_time: u32,
    pub(super) input_octets: u64,
    pub(super) output_octets: u64,
    pub(super) input_packets: u64,
    pub(super) output_packets: u64,
}

impl Counters {
    pub(super) fn after(elapsed: Duration) -> Counters {
        let secs = elapsed.as_secs();
        let (input_octets, output_octets) = (secs * UPLOAD_RATE, secs * DOWNLOAD_RATE);
        Counters {
            session_time: u32::try_from(secs).unwrap_or(u32::MAX),
            input_octets,
            output_octets,
            input_packets: input_octets / 400,
            output_packets: output_octets / 1200,
        }
    }
}

pub(super) fn u32_attr(t: u8, v: u32) -> (u8, Vec<u8>) {
    (t, v.to_be_bytes().to_vec())
}

/// The attributes of a demo Accounting-Request: Start (no counters) or Interim-Update.
pub(super) fn attributes(
    status: StatusType,
    ip: Ipv4Addr,
    login: &str,
    event_time: u32,
    interim: Duration,
    counters: Option<Counters>,
) -> Vec<(u8, Vec<u8>)> {
    let mut a = vec![
        u32_attr(attr::ACCT_STATUS_TYPE, status.code()),
        (attr::ACCT_SESSION_ID, session_id(ip).into_bytes()),
        (attr::USER_NAME, login.as_bytes().to_vec()),
        u32_attr(attr::SERVICE_TYPE, 2),    // Framed
        u32_attr(attr::FRAMED_PROTOCOL, 1), // PPP
        (attr::FRAMED_IP_ADDRESS, ip.octets().to_vec()),
    ];
    if ip.is_loopback() {
        // A browser on this machine may come from ::1: give the session that too. RFC 3162:
        // reserved octet, prefix length, prefix.
        let mut prefix = vec![0, 128];
        prefix.extend_from_slice(&Ipv6Addr::LOCALHOST.octets());
        a.push((attr::FRAMED_IPV6_PREFIX, prefix));
    }
    a.extend([
        (attr::NAS_IP_ADDRESS, Ipv4Addr::LOCALHOST.octets().to_vec()),
        (attr::NAS_IDENTIFIER, b"ebok-demo".to_vec()),
        u32_attr(attr::NAS_PORT_TYPE, 15), // Ethernet (PPPoE)
        (attr::CALLING_STATION_ID, DEMO_MAC.as_bytes().to_vec()),
        u32_attr(attr::EVENT_TIMESTAMP, event_time),
        u32_attr(attr::ACCT_DELAY_TIME, 0),
        u32_attr(
            attr::ACCT_INTERIM_INTERVAL,
            u32::try_from(interim.as_secs()).unwrap_or(u32::MAX),
        ),
    ]);
    if let Some(c) = counters {
        let low = |v: u64| (v & 0xffff_ffff) as u32;
        let high = |v: u64| (v >> 32) as u32;
        a.extend([
            u32_attr(attr::ACCT_SESSION_TIME, c.session_time),
            u32_attr(attr::ACCT_INPUT_OCTETS, low(c.input_octets)),
            u32_attr(attr::ACCT_INPUT_GIGAWORDS, high(c.input_octets)),
            u32_attr(attr::ACCT_OUTPUT_OCTETS, low(c.output_octets)),
            u32_attr(attr::ACCT_OUTPUT_GIGAWORDS, high(c.output_octets)),
            u32_attr(attr::ACCT_INPUT_PACKETS, low(c.input_packets)),
            u32_attr(attr::ACCT_OUTPUT_PACKETS, low(c.output_packets)),
        ]);
    }
    a
}

pub(super) fn unix_now() -> u32 {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    u32::try_from(secs).unwrap_or(u32::MAX)
}

/// Where to send: a wildcard listen address (`0.0.0.0`, `::`) means this machine's IPv4
/// loopback, the address the NAS table knows the demo NAS by.
pub(super) fn target_of(radius: SocketAddr) -> SocketAddr {
    if radius.ip().is_unspecified() {
        SocketAddr::from((Ipv4Addr::LOCALHOST, radius.port()))
    } else {
        radius
    }
}

/// A socket sending from the loopback when the target is local, so the source address is
/// the demo NAS's 127.0.0.1 (or ::1).
pub(super) async fn socket_for(target: SocketAddr) -> io::Result<UdpSocket> {
    let local: IpAddr = match target.ip() {
        IpAddr::V4(v4) if v4.is_loopback() => Ipv4Addr::LOCALHOST.into(),
        IpAddr::V4(_) => Ipv4Addr::UNSPECIFIED.into(),
        IpAddr::V6(v6) if v6.is_loopback() => Ipv6Addr::LOCALHOST.into(),
        IpAddr::V6(_) => Ipv6Addr::UNSPECIFIED.into(),
    };
    UdpSocket::bind(SocketAddr::new(local, 0)).await
}

/// True when `reply` is the Accounting-Response to `request`, signed with `secret`
/// (RFC 2866 §3: MD5 over the reply with the request's authenticator, then the secret).
pub(super) fn is_response_to(reply: &[u8], request: &[u8], secret: &[u8]) -> bool {
    let Ok(reply) = packet::frame(reply) else {
        return false;
    };
    if reply[0] != CODE_ACCOUNTING_RESPONSE || reply[1] != request[1] {
        return false;
    }
    let mut md5 = Md5::new();
    md5.update(&reply[..4]);
    md5.update(&request[4..HEADER_LEN]);
    md5.update(&reply[HEADER_LEN..]);
    md5.update(secret);
    md5.finalize()[..] == reply[4..HEADER_LEN]
}

/// Send `request` and wait for its Accounting-Response: [`TRIES`] times the same bytes (a
/// retransmission, which ebok's duplicate cache answers without processing twice), each
/// waiting [`REPLY_TIMEOUT`].
pub(super) async fn exchange(
    socket: &UdpSocket,
    target: SocketAddr,
    request: &[u8],
    secret: &[u8],
) -> io::Result<()> {
    let mut buf = vec![0u8; packet::MAX_LEN + 1];
    for _ in 0..TRIES {
        socket.send_to(request, target).await?;
        let deadline = tokio::time::Instant::now() + REPLY_TIMEOUT;
        loop {
            match tokio::time::timeout_at(deadline, socket.recv_from(&mut buf)).await {
                Err(_) => break,
                Ok(Ok((len, _))) => {
                    if is_response_to(&buf[..len], request, secret) {
                        return Ok(());
                    }
                }
                // An ICMP port unreachable, where the platform reports one: nobody listens
                // yet; wait out this try.
                Ok(Err(e))
                    if matches!(
                        e.kind(),
                        io::ErrorKind::ConnectionRefused | io::ErrorKind::ConnectionReset
                    ) =>
                {
                    tokio::time::sleep_until(deadline).await;
                    break;
                }
                Ok(Err(e)) => return Err(e),
            }
        }
    }
    Err(io::Error::new(
        io::ErrorKind::TimedOut,
        format!(
            "no Accounting-Response from {target} after {TRIES} tries: is ebok listening \
             there, is the sender's address a configured NAS and the secret its secret?"
        ),
    ))
}

/// Start the demo session: a signed Accounting-Request Start for `login` on `ip`
/// (Acct-Session-Id `demo-<ip>`, NAS-IP-Address 127.0.0.1, for a loopback `ip` also
/// Framed-IPv6-Prefix `::1/128`) sent to ebok's own RADIUS listener at `radius`, from the
/// loopback. `secret` is the one the NAS table gives 127.0.0.1. Errors when no valid
/// Accounting-Response comes after three tries of one second.
pub async fn send_live_session(
    radius: SocketAddr,
    secret: &[u8],
    ip: Ipv4Addr,
    login: &str,
) -> io::Result<()> {
    let target = target_of(radius);
    let socket = socket_for(target).await?;
    let attrs = attributes(
        StatusType::Start,
        ip,
        login,
        unix_now(),
        START_INTERIM,
        None,
    );
    let request = packet::build_accounting_request(rand::random(), secret, &attrs, true);
    exchange(&socket, target, &request, secret).await
}

/// Keep the demo session alive: an Interim-Update for the session [`send_live_session`]
/// started, every `every` (use at most the NAS's interim interval, so the session never
/// reaches its 2 × interim + grace expiry), with counters growing as if the line carried
/// traffic, until `shutdown` turns true or its sender is dropped. A lost update is logged
/// and the next one tried; no Stop is sent at shutdown (the session expires on its own).
///
/// To spawn it, own the borrowed arguments:
/// `tokio::spawn(async move { demo::keep_alive(addr, &secret, ip, &login, every, rx).await })`.
pub async fn keep_alive(
    radius: SocketAddr,
    secret: &[u8],
    ip: Ipv4Addr,
    login: &str,
    every: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    let target = target_of(radius);
    let socket = match socket_for(target).await {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "demo: no socket for Interim-Updates; the demo session will expire");
            return;
        }
    };
    let started = tokio::time::Instant::now();
    let mut ticks = tokio::time::interval_at(started + every, every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut identifier: u8 = rand::random();
    loop {
        if *shutdown.borrow_and_update() {
            return;
        }
        tokio::select! {
            _ = ticks.tick() => {}
            changed = shutdown.changed() => {
                if changed.is_err() {
                    return;
                }
                continue;
            }
        }
        identifier = identifier.wrapping_add(1);
        let attrs = attributes(
            StatusType::InterimUpdate,
            ip,
            login,
            unix_now(),
            every,
            Some(Counters::after(started.elapsed())),
        );
        let request = packet::build_accounting_request(identifier, secret, &attrs, true);
        tokio::select! {
            sent = exchange(&socket, target, &request, secret) => {
                if let Err(e) = sent {
                    tracing::warn!(error = %e, session = %session_id(ip), "demo: Interim-Update not answered");
                }
            }
            changed = shutdown.changed() => {
                if changed.is_err() || *shutdown.borrow() {
                    return;
                }
            }
        }
    }
}
