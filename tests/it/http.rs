//! The panel's connections cost a client nothing it can hold: idle and half-sent
//! connections are closed, slow bodies get 408, and connections beyond the cap wait.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::harness::*;

/// Read until the server closes (or `limit` passes): what came, and whether it closed.
async fn read_until_closed(s: &mut TcpStream, limit: Duration) -> (String, bool) {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(deadline, s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return (String::from_utf8_lossy(&out).into(), true),
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
            Err(_) => return (String::from_utf8_lossy(&out).into(), false),
        }
    }
}

#[tokio::test]
async fn idle_and_slow_connections_are_closed_and_capped() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path(), &Backend::Embedded, None);
    c.web.header_timeout_secs = 1;
    c.web.request_timeout_secs = 2;
    c.web.max_connections = 2;
    let ebok = Ebok::start(c).await;
    let web = ebok.running.web_addr;
    let get = format!("GET /faq HTTP/1.1\r\nHost: {web}\r\n\r\n");

    // Keep-alive works within the window...
    let mut s = TcpStream::connect(web).await.unwrap();
    s.write_all(get.as_bytes()).await.unwrap();
    let mut buf = [0u8; 65536];
    let n = s.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    // ... and an idle keep-alive connection is closed after it.
    let started = Instant::now();
    let (_, closed) = read_until_closed(&mut s, Duration::from_secs(5)).await;
    assert!(closed, "idle keep-alive still open");
    assert!(started.elapsed() < Duration::from_secs(4));
    drop(s);

    // A half-sent header.
    let mut s = TcpStream::connect(web).await.unwrap();
    s.write_all(format!("GET /faq HTTP/1.1\r\nHost: {web}\r\n").as_bytes())
        .await
        .unwrap();
    let (_, closed) = read_until_closed(&mut s, Duration::from_secs(5)).await;
    assert!(closed, "half-sent header still open");
    drop(s);

    // A body at a byte a second: 408, closed.
    let mut s = TcpStream::connect(web).await.unwrap();
    s.write_all(
        format!(
            "POST /logowanie HTTP/1.1\r\nHost: {web}\r\nContent-Type: \
             application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\n"
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    let trickle = async {
        for _ in 0..10 {
            if s.write_all(b"a").await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    };
    let _ = tokio::time::timeout(Duration::from_millis(2500), trickle).await;
    let (answer, closed) = read_until_closed(&mut s, Duration::from_secs(5)).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(closed);
    drop(s);

    // Two connections held open: a third is served only once one of them is gone. The
    // server takes connections from the listen queue in the order they came, so it holds
    // both before it can reach the third, however fast the third one connects.
    let hold1 = TcpStream::connect(web).await.unwrap();
    let hold2 = TcpStream::connect(web).await.unwrap();
    let mut third = TcpStream::connect(web).await.unwrap();
    third.write_all(get.as_bytes()).await.unwrap();
    let started = Instant::now();
    let n = tokio::time::timeout(Duration::from_secs(5), third.read(&mut buf))
        .await
        .expect("served once a slot frees")
        .unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    assert!(
        started.elapsed() >= Duration::from_millis(500),
        "served at once beyond the cap"
    );
    drop((hold1, hold2));
    ebok.stop().await;
}
