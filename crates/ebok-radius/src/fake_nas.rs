//! A NAS for tests: answers Disconnect and CoA requests on 127.0.0.1 after checking them as a
//! NAS does (RFC 5176 §2.3, RFC 3579 §3.2). Built for this crate's tests and, through the
//! `fake-nas` feature, for the tests of the crates above; never in the release binary.

use crate::coa::*;
use crate::packet::HEADER_LEN;
use hmac::Mac;
use md5::{Digest, Md5};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use time::OffsetDateTime;
use tokio::net::UdpSocket;

pub const SECRET: &[u8] = b"coa-secret";

/// Attributes of a packet as (type, value).
fn attrs(p: &[u8]) -> Vec<(u8, Vec<u8>)> {
    let mut out = Vec::new();
    let mut o = HEADER_LEN;
    while o < p.len() {
        let l = usize::from(p[o + 1]);
        out.push((p[o], p[o + 2..o + l].to_vec()));
        o += l;
    }
    out
}

/// The NAS's own check, written out from RFC 5176 §2.3 and RFC 3579 §3.2.
pub fn nas_verifies(p: &[u8], secret: &[u8]) -> bool {
    let mut zeroed = p.to_vec();
    zeroed[4..20].copy_from_slice(&[0u8; 16]);
    let mut md5 = Md5::new();
    md5.update(&zeroed);
    md5.update(secret);
    let auth: [u8; 16] = md5.finalize().into();
    if auth != p[4..20] {
        return false;
    }
    // Message-Authenticator: over the packet with zero Authenticator and zero MA value.
    let ma_pos = (HEADER_LEN..p.len())
        .scan(HEADER_LEN, |o, _| {
            let here = *o;
            if here >= p.len() {
                return None;
            }
            *o += usize::from(p[here + 1]);
            Some(here)
        })
        .find(|&o| p[o] == MESSAGE_AUTHENTICATOR)
        .expect("Message-Authenticator present");
    zeroed[ma_pos + 2..ma_pos + 18].copy_from_slice(&[0u8; 16]);
    let mut mac = HmacMd5::new_from_slice(secret).unwrap();
    mac.update(&zeroed);
    let want: [u8; 16] = mac.finalize().into_bytes().into();
    want == p[ma_pos + 2..ma_pos + 18]
}

/// A reply as the NAS signs it: Response Authenticator over the reply with the
/// request's authenticator, then the secret.
pub fn nas_reply(req: &[u8], code: u8, cause: Option<u32>, secret: &[u8]) -> Vec<u8> {
    let mut p = vec![code, req[1], 0, 0];
    p.extend_from_slice(&req[4..20]);
    if let Some(c) = cause {
        p.extend_from_slice(&[ERROR_CAUSE, 6]);
        p.extend_from_slice(&c.to_be_bytes());
    }
    let len = p.len() as u16;
    p[2..4].copy_from_slice(&len.to_be_bytes());
    let mut md5 = Md5::new();
    md5.update(&p);
    md5.update(secret);
    let auth: [u8; 16] = md5.finalize().into();
    p[4..20].copy_from_slice(&auth);
    p
}

/// A NAS on 127.0.0.1: checks each request, drops the first `drop` of them, then
/// answers with `code`/`cause` signed with `secret`. Counts requests seen.
pub async fn fake_nas(
    code: u8,
    cause: Option<u32>,
    drop: usize,
    secret: &'static [u8],
) -> (u16, Arc<AtomicUsize>) {
    let request = match code {
        CODE_COA_ACK | CODE_COA_NAK => CODE_COA_REQUEST,
        _ => CODE_DISCONNECT_REQUEST,
    };
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let port = sock.local_addr().unwrap().port();
    let seen = Arc::new(AtomicUsize::new(0));
    let count = seen.clone();
    tokio::spawn(async move {
        let mut buf = [0u8; 4096];
        loop {
            let (n, from) = sock.recv_from(&mut buf).await.unwrap();
            let req = &buf[..n];
            assert_eq!(req[0], request);
            assert!(nas_verifies(req, SECRET), "authenticators check out");
            let a = attrs(req);
            let get = |t: u8| a.iter().find(|(x, _)| *x == t).map(|(_, v)| v.clone());
            assert_eq!(get(USER_NAME).unwrap(), b"jan@isp");
            assert_eq!(get(ACCT_SESSION_ID).unwrap(), b"81a0002f");
            assert_eq!(get(NAS_IP_ADDRESS).unwrap(), vec![127, 0, 0, 1]);
            let ts = u32::from_be_bytes(get(EVENT_TIMESTAMP).unwrap().try_into().unwrap());
            let now = OffsetDateTime::now_utc().unix_timestamp() as u32;
            assert!(now.abs_diff(ts) < 5);
            if request == CODE_COA_REQUEST {
                // The change asked for: Filter-Id and a MikroTik rate limit (VSA 14988/8).
                assert_eq!(get(11).unwrap(), b"gold");
                let mut vsa = 14988u32.to_be_bytes().to_vec();
                vsa.extend_from_slice(&[8, 9]);
                vsa.extend_from_slice(b"10M/20M");
                assert_eq!(get(26).unwrap(), vsa);
            }
            if count.fetch_add(1, Ordering::SeqCst) < drop {
                continue;
            }
            let reply = nas_reply(req, code, cause, secret);
            sock.send_to(&reply, from).await.unwrap();
        }
    });
    (port, seen)
}
