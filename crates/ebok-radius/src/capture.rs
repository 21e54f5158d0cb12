//! Passive capture: for a NAS that already sends accounting to another server, read its
//! Accounting-Requests off an interface (a mirror port or the server's own link) and feed
//! them into the same checks and ingest as the UDP listener, without ever answering.
//!
//! A dedicated thread does the blocking AF_PACKET reads (pnet), parses frames
//! ([`frame`]) and reassembles fragments ([`reassembly`]); only whole UDP payloads to the
//! configured ports cross into tokio, through a bounded queue with `blocking_send`. When the
//! pipeline falls behind, the thread waits and the kernel's socket buffer queues, as with the
//! UDP listener. The UDP source address is the NAS address that picks the secret.

pub mod frame;
pub mod reassembly;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use pnet_datalink::{Channel, DataLinkReceiver, NetworkInterface};
use tokio::sync::{mpsc, watch};

use self::frame::Frame;
use self::reassembly::{Added, FragmentDrop, Reassembly};
use super::listener::{self, Datagrams, Intake, RadiusContext};

/// `[capture]`: passive capture of accounting a NAS sends to another server.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CaptureConfig {
    /// Interface to read from (a mirror port, or the link to the other server); empty: off.
    pub interface: String,
    /// UDP destination ports whose datagrams are Accounting-Requests.
    pub ports: Vec<u16>,
    /// Receive frames addressed to other hosts too (needed on a mirror/SPAN port).
    pub promiscuous: bool,
}

impl Default for CaptureConfig {
    fn default() -> Self {
        CaptureConfig {
            interface: String::new(),
            ports: vec![1813],
            promiscuous: false,
        }
    }
}

/// Datagrams reassembled at once at most (each at most [`reassembly::MAX_PAYLOAD`] octets).
pub(crate) const MAX_REASSEMBLING: usize = 1024;
/// A fragmented datagram not complete after this long is dropped.
pub(crate) const REASSEMBLY_TIMEOUT: Duration = Duration::from_secs(30);
/// Accounting payloads waiting for the pipeline before the capture thread blocks.
const QUEUE: usize = 8192;
/// How often the capture thread looks at the stop flag and expires fragments when idle.
const POLL: Duration = Duration::from_millis(200);
/// Large enough for any frame the interface may hand over (GRO can merge beyond the MTU).
const READ_BUFFER: usize = 65_536 + 64;

/// Why capture could not start.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    #[error("no network interface named '{name}' (present: {present})")]
    NoInterface { name: String, present: String },
    #[error("cannot open a packet socket on {interface}: {error}{hint}")]
    Open {
        interface: String,
        error: std::io::Error,
        hint: &'static str,
    },
}

/// Capture in force: its interface, ports and mode.
#[derive(Debug, Clone)]
pub struct CaptureHandle {
    pub interface: String,
    pub ports: Vec<u16>,
    pub promiscuous: bool,
}

/// One accounting datagram found on the wire.
struct Captured {
    source: SocketAddr,
    payload: Vec<u8>,
}

/// Find an interface by name, or say which ones exist.
pub fn find_interface(name: &str) -> Result<NetworkInterface, CaptureError> {
    let all = pnet_datalink::interfaces();
    if let Some(i) = all.iter().find(|i| i.name == name) {
        return Ok(i.clone());
    }
    let mut present: Vec<String> = all.into_iter().map(|i| i.name).collect();
    present.sort();
    present.dedup();
    Err(CaptureError::NoInterface {
        name: name.to_owned(),
        present: present.join(", "),
    })
}

/// A packet socket on `interface` with a `recv_buffer`-byte receive buffer. pnet binds a
/// socket we give it but cannot size its buffer, and the kernel default (`rmem_default`,
/// ~200 kB) holds only milliseconds of a busy link.
fn open(
    interface: &NetworkInterface,
    promiscuous: bool,
    recv_buffer: usize,
) -> std::io::Result<Box<dyn DataLinkReceiver>> {
    use socket2::{Domain, Protocol, Socket, Type};
    // AF_PACKET, SOCK_RAW, htons(ETH_P_ALL): whole frames of every protocol. socket2 names
    // these constants only with its "all" feature, which would rebuild half the tree.
    let socket = Socket::new(
        Domain::from(17),
        Type::from(3),
        Some(Protocol::from(i32::from(0x0003u16.to_be()))),
    )?;
    listener::set_recv_buffer(&socket, recv_buffer);
    let config = pnet_datalink::Config {
        read_buffer_size: READ_BUFFER,
        write_buffer_size: 0,
        read_timeout: Some(POLL),
        promiscuous,
        socket_fd: Some(std::os::fd::IntoRawFd::into_raw_fd(socket)),
        ..Default::default()
    };
    // pnet owns the descriptor from here on, and closes it on error too.
    match pnet_datalink::channel(interface, config)? {
        Channel::Ethernet(_, rx) => Ok(rx),
        _ => Err(std::io::Error::other("not an Ethernet channel")),
    }
}

/// Open the interface and start the capture thread and the task that feeds the pipeline.
/// The task ends when `shutdown` turns true; the thread follows within [`POLL`].
pub fn start(
    config: &CaptureConfig,
    recv_buffer: usize,
    ctx: Arc<RadiusContext>,
    shutdown: watch::Receiver<bool>,
) -> Result<(CaptureHandle, tokio::task::JoinHandle<()>), CaptureError> {
    let interface = find_interface(&config.interface)?;
    let rx =
        open(&interface, config.promiscuous, recv_buffer).map_err(|error| CaptureError::Open {
            interface: config.interface.clone(),
            hint: if error.kind() == std::io::ErrorKind::PermissionDenied {
                " (ebok needs the CAP_NET_RAW capability)"
            } else {
                ""
            },
            error,
        })?;
    let (tx, queue) = mpsc::channel(QUEUE);
    let stop = Arc::new(AtomicBool::new(false));
    let decoder = Decoder::new(config.ports.clone());
    let thread_stop = stop.clone();
    let thread = std::thread::Builder::new()
        .name(format!("capture-{}", config.interface))
        .spawn(move || read_loop(rx, decoder, tx, &thread_stop))
        .map_err(|error| CaptureError::Open {
            interface: config.interface.clone(),
            error,
            hint: "",
        })?;
    let task = tokio::spawn(async move {
        listener::serve_batches(QueueIntake(queue), None, ctx, shutdown).await;
        stop.store(true, Ordering::Relaxed);
        let _ = tokio::task::spawn_blocking(move || thread.join()).await;
    });
    tracing::info!(
        interface = %config.interface,
        ports = ?config.ports,
        promiscuous = config.promiscuous,
        "capture: reading accounting passively"
    );
    Ok((
        CaptureHandle {
            interface: config.interface.clone(),
            ports: config.ports.clone(),
            promiscuous: config.promiscuous,
        },
        task,
    ))
}

/// The capture queue as the listener's [`Intake`].
struct QueueIntake(mpsc::Receiver<Captured>);

impl Intake for QueueIntake {
    async fn first(&mut self, batch: &mut Datagrams) -> bool {
        match self.0.recv().await {
            Some(c) => {
                batch.push(&c.payload, c.source);
                true
            }
            None => false,
        }
    }

    fn more(&mut self, batch: &mut Datagrams, max: usize) -> usize {
        let mut n = 0;
        while n < max {
            let Ok(c) = self.0.try_recv() else {
                break;
            };
            batch.push(&c.payload, c.source);
            n += 1;
        }
        n
    }
}

/// The capture thread: read, decode, queue; until stopped or the queue is gone.
fn read_loop(
    mut rx: Box<dyn DataLinkReceiver>,
    mut decoder: Decoder,
    queue: mpsc::Sender<Captured>,
    stop: &AtomicBool,
) {
    let frames = metrics::counter!("ebok_capture_frames_total");
    let reassembled = metrics::counter!("ebok_capture_reassembled_total");
    let mut last_expiry = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        if now.duration_since(last_expiry) >= Duration::from_secs(1) {
            let timed_out = decoder.reassembly.expire(now);
            count_drop(FragmentDrop::Timeout.label(), timed_out as u64);
            last_expiry = now;
        }
        let bytes = match rx.next() {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => continue,
            Err(e) => {
                count_drop("read_error", 1);
                tracing::warn!(error = %e, "capture: read failed");
                std::thread::sleep(POLL);
                continue;
            }
        };
        frames.increment(1);
        let decoded = decoder.frame(bytes, now);
        for reason in decoded.drops.iter().flatten() {
            count_drop(reason, 1);
        }
        let Some(datagram) = decoded.datagram else {
            continue;
        };
        if decoded.reassembled {
            reassembled.increment(1);
        }
        if queue.blocking_send(datagram).is_err() {
            return;
        }
    }
}

fn count_drop(reason: &'static str, n: u64) {
    if n > 0 {
        metrics::counter!("ebok_capture_dropped_total", "reason" => reason).increment(n);
    }
}

/// What one frame gave: at most one accounting datagram, and the drops it caused (a frame
/// can complete nothing and still evict another datagram's fragments).
#[derive(Default)]
struct Decoded {
    datagram: Option<Captured>,
    reassembled: bool,
    drops: [Option<&'static str>; 2],
}

/// Frames → accounting datagrams for the configured ports, reassembling on the way.
struct Decoder {
    ports: Vec<u16>,
    reassembly: Reassembly,
}

impl Decoder {
    fn new(ports: Vec<u16>) -> Self {
        Decoder {
            ports,
            reassembly: Reassembly::new(MAX_REASSEMBLING, REASSEMBLY_TIMEOUT),
        }
    }

    fn frame(&mut self, bytes: &[u8], now: Instant) -> Decoded {
        let mut out = Decoded::default();
        let fragment = match frame::parse_ethernet(bytes) {
            Err(e) => {
                out.drops[0] = Some(e.label());
                return out;
            }
            Ok(Frame::Other) => return out,
            Ok(Frame::Udp(udp)) => {
                out.datagram = self.wanted(&udp);
                return out;
            }
            Ok(Frame::Fragment(f)) => f,
        };
        let (added, evicted) = match fragment.first_udp_port() {
            Some(port) if !self.ports.contains(&port) => self.reassembly.ignore(&fragment, now),
            _ => self.reassembly.add(&fragment, now),
        };
        out.drops[1] = evicted.map(|d| d.label());
        match added {
            Added::Pending | Added::Discarded => {}
            Added::Dropped(reason) => out.drops[0] = Some(reason.label()),
            Added::Complete(payload) => match frame::parse_reassembled(&fragment.key, &payload) {
                Ok(Frame::Udp(udp)) => {
                    out.datagram = self.wanted(&udp);
                    out.reassembled = out.datagram.is_some();
                }
                Ok(_) => {}
                Err(e) => out.drops[0] = Some(e.label()),
            },
        }
        out
    }

    fn wanted(&self, udp: &frame::Udp<'_>) -> Option<Captured> {
        self.ports
            .contains(&udp.destination.port())
            .then(|| Captured {
                source: udp.source,
                payload: udp.payload.to_vec(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::frame::build::{ethernet, ipv4, ipv6, udp, v6_fragment_header};
    use super::*;
    use std::net::Ipv6Addr;

    const NAS: [u8; 4] = [192, 0, 2, 1];
    const SRV: [u8; 4] = [192, 0, 2, 9];

    /// Capture's start looks the interface up; a missing one is named with those present.
    #[test]
    fn a_missing_interface_is_named_with_those_present() {
        assert_eq!(find_interface("lo").unwrap().name, "lo");
        let e = find_interface("ebok-none0").unwrap_err().to_string();
        assert!(e.contains("ebok-none0") && e.contains("lo"), "{e}");
    }

    /// `datagram` split into IPv4 fragments of `size` octets (a multiple of 8), in order.
    fn v4_fragments(datagram: &[u8], size: usize, id: u16) -> Vec<Vec<u8>> {
        datagram
            .chunks(size)
            .enumerate()
            .map(|(i, chunk)| {
                let more = (i + 1) * size < datagram.len();
                let ip = ipv4(NAS, SRV, id, more, (i * size / 8) as u16, &[], chunk);
                ethernet(&[(0x8100, 10)], 0x0800, &ip)
            })
            .collect()
    }

    fn run(decoder: &mut Decoder, frames: &[Vec<u8>]) -> Vec<(SocketAddr, Vec<u8>, bool)> {
        let now = Instant::now();
        frames
            .iter()
            .filter_map(|f| {
                let d = decoder.frame(f, now);
                d.datagram.map(|c| (c.source, c.payload, d.reassembled))
            })
            .collect()
    }

    #[test]
    fn only_udp_to_the_configured_ports_passes() {
        let mut d = Decoder::new(vec![1813, 1646]);
        let frames: Vec<Vec<u8>> = [1813, 53, 1646]
            .iter()
            .map(|&port| {
                ethernet(
                    &[],
                    0x0800,
                    &ipv4(NAS, SRV, 1, false, 0, &[], &udp(4000, port, b"acct")),
                )
            })
            .collect();
        let got = run(&mut d, &frames);
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].0, "192.0.2.1:4000".parse().unwrap());
        assert_eq!(got[0].1, b"acct");
        assert!(!got[0].2);
    }

    #[test]
    fn ipv4_fragments_reassemble_in_any_order_and_other_ports_are_skipped() {
        let payload: Vec<u8> = (0..3000).map(|i| (i % 253) as u8).collect();
        let datagram = udp(4000, 1813, &payload);
        let mut frames = v4_fragments(&datagram, 1232, 77);
        assert_eq!(frames.len(), 3);
        frames.swap(0, 2);
        let mut d = Decoder::new(vec![1813]);
        let got = run(&mut d, &frames);
        assert_eq!(
            got,
            vec![("192.0.2.1:4000".parse().unwrap(), payload.clone(), true)]
        );
        assert!(d.reassembly.is_empty());

        // A fragmented DNS answer: its first fragment marks it ignored, the rest is dropped
        // quietly and nothing stays collecting.
        let dns = udp(53, 33000, &payload);
        let got = run(&mut d, &v4_fragments(&dns, 1232, 78));
        assert!(got.is_empty());
        assert_eq!(d.reassembly.expire(Instant::now() + REASSEMBLY_TIMEOUT), 0);
    }

    #[test]
    fn ipv6_fragments_reassemble() {
        let src = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
        let dst = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 9);
        let payload: Vec<u8> = (0..2000).map(|i| (i % 249) as u8).collect();
        let datagram = udp(4000, 1813, &payload);
        let (a, b) = datagram.split_at(1232);
        let mut first = v6_fragment_header(17, 0, true, 0xfeed);
        first.extend_from_slice(a);
        let mut second = v6_fragment_header(17, (1232 / 8) as u16, false, 0xfeed);
        second.extend_from_slice(b);
        let frames = [
            ethernet(&[], 0x86dd, &ipv6(src, dst, 44, &second)),
            ethernet(&[], 0x86dd, &ipv6(src, dst, 44, &first)),
        ];
        let mut d = Decoder::new(vec![1813]);
        let got = run(&mut d, &frames);
        assert_eq!(
            got,
            vec![(SocketAddr::new(src.into(), 4000), payload, true)]
        );
    }

    #[test]
    fn drops_are_reported_with_their_reason() {
        let mut d = Decoder::new(vec![1813]);
        let now = Instant::now();
        assert_eq!(d.frame(&[0; 10], now).drops, [Some("truncated"), None]);
        let datagram = udp(4000, 1813, &[7; 64]);
        let frags = v4_fragments(&datagram, 32, 5);
        assert!(d.frame(&frags[0], now).datagram.is_none());
        // The same offset again with other octets: the datagram is dropped.
        let forged = ethernet(
            &[(0x8100, 10)],
            0x0800,
            &ipv4(NAS, SRV, 5, true, 0, &[], &[9; 32]),
        );
        assert_eq!(
            d.frame(&forged, now).drops,
            [Some("fragment_conflict"), None]
        );
        assert!(run(&mut d, &frags[1..]).is_empty());
    }
}
