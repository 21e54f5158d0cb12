//! RFC 5176 Dynamic Authorization client: asks the NAS that carries a PPPoE session to end
//! it (Disconnect-Request: the panel's "restart my connection", `ebok sessions disconnect`,
//! the ops API) or to change it (CoA-Request with new attributes, e.g. a rate limit).
//! [`SessionControl`] is the seam callers use; [`CoaClient`] is the UDP implementation.
//! Packet building and reply checks are plain functions on bytes; only
//! [`CoaClient::send`] does I/O.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use hmac::{Hmac, Mac};
use md5::{Digest, Md5};
use subtle::ConstantTimeEq;
use tokio::net::UdpSocket;

use super::nas::NasTable;
use super::packet::{frame, HEADER_LEN, MAX_LEN};

pub(crate) const CODE_DISCONNECT_REQUEST: u8 = 40;
pub const CODE_DISCONNECT_ACK: u8 = 41;
pub(crate) const CODE_DISCONNECT_NAK: u8 = 42;
pub(crate) const CODE_COA_REQUEST: u8 = 43;
pub(crate) const CODE_COA_ACK: u8 = 44;
pub const CODE_COA_NAK: u8 = 45;

pub(crate) const USER_NAME: u8 = 1;
pub(crate) const NAS_IP_ADDRESS: u8 = 4;
pub(crate) const ACCT_SESSION_ID: u8 = 44;
pub(crate) const EVENT_TIMESTAMP: u8 = 55;
pub(crate) const MESSAGE_AUTHENTICATOR: u8 = 80;
const NAS_IPV6_ADDRESS: u8 = 95;
pub(crate) const ERROR_CAUSE: u8 = 101;

pub(crate) type HmacMd5 = Hmac<Md5>;

/// Which RFC 5176 request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Disconnect-Request: end the session.
    Disconnect,
    /// CoA-Request: change the session's authorisation with the attributes sent.
    Change,
}

impl Action {
    fn codes(self) -> (u8, u8, u8) {
        match self {
            Action::Disconnect => (
                CODE_DISCONNECT_REQUEST,
                CODE_DISCONNECT_ACK,
                CODE_DISCONNECT_NAK,
            ),
            Action::Change => (CODE_COA_REQUEST, CODE_COA_ACK, CODE_COA_NAK),
        }
    }

    /// `Disconnect` or `CoA`, for messages.
    pub fn name(self) -> &'static str {
        match self {
            Action::Disconnect => "Disconnect",
            Action::Change => "CoA",
        }
    }
}

/// What the NAS answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ControlOutcome {
    /// Disconnect-ACK / CoA-ACK: done.
    Ack,
    /// Disconnect-NAK / CoA-NAK, with its Error-Cause (RFC 5176 §3.5) when it sent one.
    Nak { error_cause: Option<u32> },
}

/// The RFC 5176 §3.5 name of an Error-Cause value.
pub fn error_cause_name(cause: u32) -> &'static str {
    match cause {
        201 => "Residual Session Context Removed",
        202 => "Invalid EAP Packet (Ignored)",
        401 => "Unsupported Attribute",
        402 => "Missing Attribute",
        403 => "NAS Identification Mismatch",
        404 => "Invalid Request",
        405 => "Unsupported Service",
        406 => "Unsupported Extension",
        407 => "Invalid Attribute Value",
        501 => "Administratively Prohibited",
        502 => "Request Not Routable (Proxy)",
        503 => "Session Context Not Found",
        504 => "Session Context Not Removable",
        505 => "Other Proxy Processing Error",
        506 => "Resources Unavailable",
        507 => "Request Initiated",
        508 => "Multiple Session Selection Unsupported",
        _ => "unknown",
    }
}

/// Why no answer could be had.
#[derive(Debug, thiserror::Error)]
pub enum CoaError {
    #[error("the session's NAS key {0:?} is not an address to send to")]
    NoAddress(String),
    #[error("no NAS entry covers {0}")]
    UnknownNas(IpAddr),
    #[error("no valid answer from the NAS after {0} tries")]
    Timeout(u32),
    #[error("network: {0}")]
    Io(#[from] std::io::Error),
    #[error("an attribute or the packet is too long for RADIUS")]
    TooLong,
}

/// The live session a request is for: what its NAS needs to find it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The NAS key of the session (its address as text: where the request goes).
    pub nas: String,
    /// The name of the NAS entry that took the session (when the key is no known source).
    pub nas_client: String,
    pub session_id: String,
    pub user_name: Option<String>,
}

/// Ends or changes live sessions on their NAS.
#[async_trait]
pub trait SessionControl: Send + Sync + 'static {
    /// Disconnect-Request for the session.
    async fn disconnect(&self, session: &Target) -> Result<ControlOutcome, CoaError>;
    /// CoA-Request for the session carrying `attributes` (each one complete wire attribute:
    /// type, length, value — see [`crate::dict::Dictionary::encode_attribute`]).
    async fn change(
        &self,
        session: &Target,
        attributes: &[Vec<u8>],
    ) -> Result<ControlOutcome, CoaError>;
}

/// What a Disconnect- or CoA-Request names.
#[derive(Debug, Clone)]
pub(crate) struct ControlRequest<'a> {
    pub action: Action,
    pub user_name: Option<&'a str>,
    pub session_id: &'a str,
    pub nas_ip: Option<IpAddr>,
    /// Unix seconds (RFC 5176 §3.3: replay protection on the NAS).
    pub event_timestamp: u32,
    /// Further attributes, already encoded (CoA: what to change).
    pub attributes: &'a [Vec<u8>],
}

fn push_attr(out: &mut Vec<u8>, typ: u8, value: &[u8]) -> Result<(), CoaError> {
    if value.len() > 253 {
        return Err(CoaError::TooLong);
    }
    out.push(typ);
    out.push(value.len() as u8 + 2);
    out.extend_from_slice(value);
    Ok(())
}

/// A signed request: Message-Authenticator first (HMAC-MD5 over the packet with a zero
/// Authenticator field), then the Request Authenticator, MD5 over the packet with a zero
/// Authenticator field followed by the secret (RFC 5176 §2.3, §3.4).
pub(crate) fn build_request(
    identifier: u8,
    secret: &[u8],
    req: &ControlRequest<'_>,
) -> Result<Vec<u8>, CoaError> {
    let mut p = vec![req.action.codes().0, identifier, 0, 0];
    p.extend_from_slice(&[0u8; 16]);
    push_attr(&mut p, MESSAGE_AUTHENTICATOR, &[0u8; 16])?;
    match req.nas_ip {
        Some(IpAddr::V4(v4)) => push_attr(&mut p, NAS_IP_ADDRESS, &v4.octets())?,
        Some(IpAddr::V6(v6)) => push_attr(&mut p, NAS_IPV6_ADDRESS, &v6.octets())?,
        None => {}
    }
    if let Some(u) = req.user_name {
        push_attr(&mut p, USER_NAME, u.as_bytes())?;
    }
    push_attr(&mut p, ACCT_SESSION_ID, req.session_id.as_bytes())?;
    push_attr(&mut p, EVENT_TIMESTAMP, &req.event_timestamp.to_be_bytes())?;
    for a in req.attributes {
        if a.len() < 2 || usize::from(a[1]) != a.len() {
            return Err(CoaError::TooLong);
        }
        p.extend_from_slice(a);
    }
    if p.len() > MAX_LEN {
        return Err(CoaError::TooLong);
    }
    let len = p.len() as u16;
    p[2..4].copy_from_slice(&len.to_be_bytes());
    let ma_offset = HEADER_LEN + 2;
    let mac = hmac_md5(&p, ma_offset, &[0u8; 16], secret);
    p[ma_offset..ma_offset + 16].copy_from_slice(&mac);
    let auth = md5_with(&p, &[0u8; 16], secret);
    p[4..HEADER_LEN].copy_from_slice(&auth);
    Ok(p)
}

/// Why a datagram is not the answer to our request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum BadReply {
    #[error("malformed packet")]
    Malformed,
    #[error("not an ACK or NAK of the request sent")]
    WrongCode,
    #[error("identifier does not match the request")]
    WrongIdentifier,
    #[error("Response Authenticator does not match")]
    BadAuthenticator,
    #[error("Message-Authenticator does not match")]
    BadMessageAuthenticator,
}

/// Check a reply to the `action` request with `identifier` and `request_auth`: the
/// Response Authenticator (MD5 over the reply with the request's authenticator in place,
/// then the secret), the Message-Authenticator when present, and read the Error-Cause of a
/// NAK.
pub(crate) fn parse_reply(
    datagram: &[u8],
    action: Action,
    identifier: u8,
    request_auth: &[u8; 16],
    secret: &[u8],
) -> Result<ControlOutcome, BadReply> {
    let p = frame(datagram).map_err(|_| BadReply::Malformed)?;
    let (_, ack, nak) = action.codes();
    if p[0] != ack && p[0] != nak {
        return Err(BadReply::WrongCode);
    }
    if p[1] != identifier {
        return Err(BadReply::WrongIdentifier);
    }
    let expected = md5_with(p, request_auth, secret);
    if !bool::from(expected.ct_eq(&p[4..HEADER_LEN])) {
        return Err(BadReply::BadAuthenticator);
    }
    let mut error_cause = None;
    let mut offset = HEADER_LEN;
    while offset < p.len() {
        let (typ, len) = (p[offset], usize::from(p[offset + 1]));
        let value = &p[offset + 2..offset + len];
        match typ {
            MESSAGE_AUTHENTICATOR => {
                if value.len() != 16 {
                    return Err(BadReply::BadMessageAuthenticator);
                }
                let mac = hmac_md5(p, offset + 2, request_auth, secret);
                if !bool::from(mac.ct_eq(value)) {
                    return Err(BadReply::BadMessageAuthenticator);
                }
            }
            ERROR_CAUSE if value.len() == 4 => {
                error_cause = Some(u32::from_be_bytes([value[0], value[1], value[2], value[3]]));
            }
            _ => {}
        }
        offset += len;
    }
    Ok(if p[0] == ack {
        ControlOutcome::Ack
    } else {
        ControlOutcome::Nak { error_cause }
    })
}

/// MD5(Code + Identifier + Length + `auth` + Attributes + secret) of a framed packet.
fn md5_with(p: &[u8], auth: &[u8; 16], secret: &[u8]) -> [u8; 16] {
    let mut md5 = Md5::new();
    md5.update(&p[..4]);
    md5.update(auth);
    md5.update(&p[HEADER_LEN..]);
    md5.update(secret);
    md5.finalize().into()
}

/// HMAC-MD5 over the packet with `auth` in the Authenticator field and the
/// Message-Authenticator value at `ma_offset` zeroed.
fn hmac_md5(p: &[u8], ma_offset: usize, auth: &[u8; 16], secret: &[u8]) -> [u8; 16] {
    let mut mac = HmacMd5::new_from_slice(secret).expect("HMAC accepts keys of any length");
    mac.update(&p[..4]);
    mac.update(auth);
    mac.update(&p[HEADER_LEN..ma_offset]);
    mac.update(&[0u8; 16]);
    mac.update(&p[ma_offset + 16..]);
    mac.finalize().into_bytes().into()
}

/// The NAS table in force (the server's table is replaced on reload).
pub(crate) type NasSource = Arc<dyn Fn() -> Arc<NasTable> + Send + Sync>;

/// Sends Disconnect- and CoA-Requests over UDP to the session's NAS (its address is the
/// session's NAS key, its secret and CoA port come from the NAS table), retransmitting the
/// same packet.
pub struct CoaClient {
    nas: NasSource,
    tries: u32,
    wait: Duration,
}

impl CoaClient {
    /// Three tries, one second apart.
    pub fn new(nas: NasSource) -> CoaClient {
        CoaClient {
            nas,
            tries: 3,
            wait: Duration::from_secs(1),
        }
    }

    pub fn with_retries(mut self, tries: u32, wait: Duration) -> CoaClient {
        self.tries = tries.max(1);
        self.wait = wait;
        self
    }

    /// Send one request for `session` and wait for its signed ACK or NAK.
    pub async fn send(
        &self,
        action: Action,
        session: &Target,
        attributes: &[Vec<u8>],
    ) -> Result<ControlOutcome, CoaError> {
        let ip: IpAddr = session
            .nas
            .parse()
            .map_err(|_| CoaError::NoAddress(session.nas.clone()))?;
        let table = (self.nas)();
        let client = table
            .find(ip)
            .or_else(|| table.by_name(&session.nas_client))
            .ok_or(CoaError::UnknownNas(ip))?
            .clone();
        let identifier: u8 = rand::random();
        let event_timestamp = time::OffsetDateTime::now_utc().unix_timestamp().max(0) as u32;
        let packet = build_request(
            identifier,
            &client.secret,
            &ControlRequest {
                action,
                user_name: session.user_name.as_deref(),
                session_id: &session.session_id,
                nas_ip: Some(ip),
                event_timestamp,
                attributes,
            },
        )?;
        let mut request_auth = [0u8; 16];
        request_auth.copy_from_slice(&packet[4..HEADER_LEN]);
        let local: SocketAddr = match ip {
            IpAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
            IpAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
        };
        let socket = UdpSocket::bind(local).await?;
        // Connected: datagrams from anywhere else are not delivered to us.
        socket.connect((ip, client.coa_port)).await?;
        let mut buf = vec![0u8; 4096];
        for _ in 0..self.tries {
            socket.send(&packet).await?;
            let deadline = tokio::time::Instant::now() + self.wait;
            loop {
                let n = match tokio::time::timeout_at(deadline, socket.recv(&mut buf)).await {
                    Err(_) => break,
                    // ICMP unreachable shows up as an error on a connected socket: the next
                    // try may still reach a NAS that was restarting.
                    Ok(Err(e)) => {
                        tracing::debug!(error = %e, nas = %ip, "CoA receive");
                        tokio::time::sleep_until(deadline).await;
                        break;
                    }
                    Ok(Ok(n)) => n,
                };
                match parse_reply(&buf[..n], action, identifier, &request_auth, &client.secret) {
                    Ok(outcome) => {
                        let result = match outcome {
                            ControlOutcome::Ack => "ack",
                            ControlOutcome::Nak { .. } => "nak",
                        };
                        metrics::counter!("ebok_coa_requests_total", "action" => action.name(), "result" => result).increment(1);
                        return Ok(outcome);
                    }
                    Err(e) => tracing::warn!(error = %e, nas = %ip, "ignored CoA reply"),
                }
            }
        }
        metrics::counter!("ebok_coa_requests_total", "action" => action.name(), "result" => "timeout").increment(1);
        Err(CoaError::Timeout(self.tries))
    }
}

#[async_trait]
impl SessionControl for CoaClient {
    async fn disconnect(&self, session: &Target) -> Result<ControlOutcome, CoaError> {
        self.send(Action::Disconnect, session, &[]).await
    }

    async fn change(
        &self,
        session: &Target,
        attributes: &[Vec<u8>],
    ) -> Result<ControlOutcome, CoaError> {
        self.send(Action::Change, session, attributes).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake_nas::{fake_nas, nas_reply, nas_verifies, SECRET};
    use crate::nas::NasClient;
    use std::sync::atomic::Ordering;

    fn session(nas: &str) -> Target {
        Target {
            nas: nas.into(),
            nas_client: "test-nas".into(),
            session_id: "81a0002f".into(),
            user_name: Some("jan@isp".into()),
        }
    }

    fn client(port: u16) -> CoaClient {
        let nas = NasClient {
            name: "test-nas".into(),
            secret: b"coa-secret".as_slice().into(),
            vendor: "rfc".into(),
            expiry: Duration::from_secs(600),
            coa_port: port,
        };
        let table = Arc::new(NasTable::new([(
            nas,
            vec!["127.0.0.1/32".parse().unwrap()],
        )]));
        CoaClient::new(Arc::new(move || table.clone())).with_retries(3, Duration::from_millis(200))
    }

    #[tokio::test]
    async fn ack_after_a_lost_request() {
        let (port, seen) = fake_nas(CODE_DISCONNECT_ACK, None, 1, SECRET).await;
        let out = client(port)
            .disconnect(&session("127.0.0.1"))
            .await
            .unwrap();
        assert_eq!(out, ControlOutcome::Ack);
        assert_eq!(seen.load(Ordering::SeqCst), 2, "one retransmission");
    }

    #[tokio::test]
    async fn nak_carries_the_error_cause() {
        let (port, _) = fake_nas(CODE_DISCONNECT_NAK, Some(503), 0, SECRET).await;
        let out = client(port)
            .disconnect(&session("127.0.0.1"))
            .await
            .unwrap();
        assert_eq!(
            out,
            ControlOutcome::Nak {
                error_cause: Some(503)
            }
        );
    }

    #[tokio::test]
    async fn a_reply_signed_with_another_secret_is_ignored_until_timeout() {
        let (port, seen) = fake_nas(CODE_DISCONNECT_ACK, None, 0, b"wrong").await;
        let err = client(port)
            .disconnect(&session("127.0.0.1"))
            .await
            .unwrap_err();
        assert!(matches!(err, CoaError::Timeout(3)), "{err}");
        assert_eq!(seen.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn a_nas_key_that_is_no_address_or_unknown_is_refused() {
        let c = client(9);
        assert!(matches!(
            c.disconnect(&session("bras-1")).await,
            Err(CoaError::NoAddress(_))
        ));
        let mut s = session("192.0.2.1");
        s.nas_client = "other".into();
        assert!(matches!(
            c.disconnect(&s).await,
            Err(CoaError::UnknownNas(_))
        ));
    }

    fn coa_attributes() -> Vec<Vec<u8>> {
        let dict = crate::dict::Dictionary::builtin();
        vec![
            dict.encode_attribute("Filter-Id", "gold").unwrap(),
            dict.encode_attribute("Mikrotik-Rate-Limit", "10M/20M")
                .unwrap(),
        ]
    }

    #[tokio::test]
    async fn coa_request_carries_the_attributes_and_reads_ack_and_nak() {
        let (port, seen) = fake_nas(CODE_COA_ACK, None, 0, SECRET).await;
        let out = client(port)
            .change(&session("127.0.0.1"), &coa_attributes())
            .await
            .unwrap();
        assert_eq!(out, ControlOutcome::Ack);
        assert_eq!(seen.load(Ordering::SeqCst), 1);
        let (port, _) = fake_nas(CODE_COA_NAK, Some(401), 0, SECRET).await;
        let out = client(port)
            .change(&session("127.0.0.1"), &coa_attributes())
            .await
            .unwrap();
        assert_eq!(
            out,
            ControlOutcome::Nak {
                error_cause: Some(401)
            }
        );
        assert_eq!(error_cause_name(401), "Unsupported Attribute");
    }

    #[tokio::test]
    async fn a_disconnect_ack_does_not_answer_a_coa_request() {
        // A NAS that answers the wrong kind: the client must not take it as the answer.
        let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let port = sock.local_addr().unwrap().port();
        tokio::spawn(async move {
            let mut buf = [0u8; 4096];
            loop {
                let (n, from) = sock.recv_from(&mut buf).await.unwrap();
                let reply = nas_reply(&buf[..n], CODE_DISCONNECT_ACK, None, SECRET);
                sock.send_to(&reply, from).await.unwrap();
            }
        });
        let err = client(port)
            .change(&session("127.0.0.1"), &coa_attributes())
            .await
            .unwrap_err();
        assert!(matches!(err, CoaError::Timeout(3)), "{err}");
    }

    #[test]
    fn reply_checks() {
        let req = build_request(
            7,
            SECRET,
            &ControlRequest {
                action: Action::Disconnect,
                user_name: Some("jan@isp"),
                session_id: "s1",
                nas_ip: Some("10.0.0.1".parse().unwrap()),
                event_timestamp: 1_700_000_000,
                attributes: &[],
            },
        )
        .unwrap();
        assert!(nas_verifies(&req, SECRET));
        assert!(!nas_verifies(&req, b"other"));
        let auth: [u8; 16] = req[4..20].try_into().unwrap();
        let ack = nas_reply(&req, CODE_DISCONNECT_ACK, None, SECRET);
        assert_eq!(
            parse_reply(&ack, Action::Disconnect, 7, &auth, SECRET),
            Ok(ControlOutcome::Ack)
        );
        assert_eq!(
            parse_reply(&ack, Action::Disconnect, 8, &auth, SECRET),
            Err(BadReply::WrongIdentifier)
        );
        let mut tampered = ack.clone();
        tampered[0] = CODE_DISCONNECT_NAK;
        assert_eq!(
            parse_reply(&tampered, Action::Disconnect, 7, &auth, SECRET),
            Err(BadReply::BadAuthenticator)
        );
        assert_eq!(
            parse_reply(&req, Action::Disconnect, 7, &auth, SECRET),
            Err(BadReply::WrongCode)
        );
    }
}
