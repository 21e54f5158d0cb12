//! A small SMTP server for the mail tests.

use std::sync::atomic::AtomicU8;
use std::sync::Mutex;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

use super::*;

/// What the fake SMTP server does with MAIL FROM.
pub(super) const ACCEPT: u8 = 0;
pub(super) const BUSY: u8 = 1; // 451
pub(super) const REJECT: u8 = 2; // 550

#[derive(Debug, Clone, Default)]
pub(super) struct Received {
    pub(super) auth: Option<(String, String)>,
    pub(super) mail_from: String,
    pub(super) rcpt_to: Vec<String>,
    pub(super) data: Vec<u8>,
}

#[derive(Clone, Default)]
pub(super) struct Seen {
    pub(super) messages: Arc<Mutex<Vec<Received>>>,
    pub(super) mail_commands: Arc<AtomicU64>,
    pub(super) auth_commands: Arc<AtomicU64>,
}

impl Seen {
    pub(super) fn messages(&self) -> Vec<Received> {
        self.messages.lock().unwrap().clone()
    }
}

/// A small SMTP server: greeting, EHLO with AUTH PLAIN LOGIN, AUTH, MAIL, RCPT, DATA with
/// dot-unstuffing, RSET, NOOP, QUIT. `mode` decides the answer to MAIL FROM.
pub(super) fn fake_smtp(listener: TcpListener, mode: Arc<AtomicU8>) -> Seen {
    let seen = Seen::default();
    let s = seen.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let (s, mode) = (s.clone(), mode.clone());
            tokio::spawn(async move {
                let _ = smtp_session(stream, s, mode).await;
            });
        }
    });
    seen
}

pub(super) async fn smtp_session(
    stream: tokio::net::TcpStream,
    seen: Seen,
    mode: Arc<AtomicU8>,
) -> io::Result<()> {
    let (r, mut w) = stream.into_split();
    let mut r = BufReader::new(r);
    let mut line = String::new();
    pub(super) async fn read_line(
        r: &mut BufReader<tokio::net::tcp::OwnedReadHalf>,
        line: &mut String,
    ) -> io::Result<bool> {
        line.clear();
        Ok(r.read_line(line).await? > 0)
    }
    w.write_all(b"220 mx.test ESMTP fake\r\n").await?;
    let mut current = Received::default();
    let mut auth = None;
    while read_line(&mut r, &mut line).await? {
        let cmd = line.trim_end_matches(['\r', '\n']).to_owned();
        let upper = cmd.to_ascii_uppercase();
        if upper.starts_with("EHLO") {
            w.write_all(b"250-mx.test\r\n250-AUTH PLAIN LOGIN\r\n250 8BITMIME\r\n")
                .await?;
        } else if upper.starts_with("HELO") {
            w.write_all(b"250 mx.test\r\n").await?;
        } else if upper.starts_with("AUTH PLAIN") {
            seen.auth_commands.fetch_add(1, Ordering::SeqCst);
            let initial = cmd[10..].trim().to_owned();
            let b64 = if initial.is_empty() {
                w.write_all(b"334 \r\n").await?;
                read_line(&mut r, &mut line).await?;
                line.trim().to_owned()
            } else {
                initial
            };
            let decoded = base64_decode(&b64);
            let parts: Vec<&[u8]> = decoded.split(|&b| b == 0).collect();
            auth = Some((
                String::from_utf8(parts[1].to_vec()).unwrap(),
                String::from_utf8(parts[2].to_vec()).unwrap(),
            ));
            w.write_all(b"235 2.7.0 ok\r\n").await?;
        } else if upper.starts_with("AUTH LOGIN") {
            seen.auth_commands.fetch_add(1, Ordering::SeqCst);
            w.write_all(b"334 VXNlcm5hbWU6\r\n").await?;
            read_line(&mut r, &mut line).await?;
            let user = String::from_utf8(base64_decode(line.trim())).unwrap();
            w.write_all(b"334 UGFzc3dvcmQ6\r\n").await?;
            read_line(&mut r, &mut line).await?;
            let pass = String::from_utf8(base64_decode(line.trim())).unwrap();
            auth = Some((user, pass));
            w.write_all(b"235 2.7.0 ok\r\n").await?;
        } else if upper.starts_with("MAIL FROM:") {
            seen.mail_commands.fetch_add(1, Ordering::SeqCst);
            match mode.load(Ordering::SeqCst) {
                BUSY => w.write_all(b"451 4.3.0 try again later\r\n").await?,
                REJECT => w.write_all(b"550 5.7.1 not from you\r\n").await?,
                _ => {
                    current = Received {
                        auth: auth.clone(),
                        mail_from: angle(&cmd),
                        ..Received::default()
                    };
                    w.write_all(b"250 2.1.0 ok\r\n").await?;
                }
            }
        } else if upper.starts_with("RCPT TO:") {
            current.rcpt_to.push(angle(&cmd));
            w.write_all(b"250 2.1.5 ok\r\n").await?;
        } else if upper == "DATA" {
            w.write_all(b"354 go ahead\r\n").await?;
            let mut data = Vec::new();
            loop {
                let mut raw = Vec::new();
                if r.read_until(b'\n', &mut raw).await? == 0 {
                    return Ok(());
                }
                if raw == b".\r\n" {
                    break;
                }
                // RFC 5321 4.5.2: a leading dot was doubled by the client.
                let raw = if raw.starts_with(b"..") {
                    &raw[1..]
                } else {
                    &raw[..]
                };
                data.extend_from_slice(raw);
            }
            current.data = data;
            seen.messages.lock().unwrap().push(current.clone());
            w.write_all(b"250 2.0.0 queued\r\n").await?;
        } else if upper == "RSET" || upper == "NOOP" {
            w.write_all(b"250 2.0.0 ok\r\n").await?;
        } else if upper == "QUIT" {
            w.write_all(b"221 2.0.0 bye\r\n").await?;
            return Ok(());
        } else {
            w.write_all(b"502 5.5.2 what?\r\n").await?;
        }
    }
    Ok(())
}

pub(super) fn angle(cmd: &str) -> String {
    let start = cmd.find('<').map(|i| i + 1).unwrap_or(0);
    let end = cmd[start..]
        .find('>')
        .map(|i| start + i)
        .unwrap_or(cmd.len());
    cmd[start..end].to_owned()
}

pub(super) fn base64_decode(s: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in s.bytes().filter(|&c| c != b'=') {
        let v = ALPHABET.iter().position(|&a| a == c).expect("base64") as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    out
}
