//! The UDP accounting listener: our own tokio loop. It only moves bytes: receive, pick the
//! NAS by source address, call the pure checks in [`super::packet`] and [`super::decode`],
//! hand the events to the [`Journal`], reply once they are durable. Concurrency is bounded by a
//! semaphore (one permit per request); when it is exhausted the loop stops reading and the
//! socket buffer queues.
//!
//! The loop drains whatever the socket holds (up to [`RECV_BATCH`] datagrams) without
//! waiting and hands the lot to one task: one task spawn, one NAS-table read and one journal
//! append (one group-commit slot) per batch instead of per packet. Under light load a batch
//! is a single datagram, so nothing waits for company.
//!
//! In journal mode (the default `radius.ack_after`) each socket is served instead by an OS
//! thread of its own ([`serve_on_thread`]): blocking `recvmmsg` of everything waiting, the
//! same checks, one journal append, one `sendmmsg`; batches grow with the load and the async
//! runtime is not woken per batch (measured: 14.1 → 10.6 µs CPU per answer at 1,024
//! outstanding).
//!
//! Passive capture ([`super::capture`]) feeds the same loop through another [`Intake`] and
//! no reply socket: the same checks, dedup, ingest and counters, and nothing is sent.

use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};

use tokio::net::UdpSocket;
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};

use super::decode::decode_checked;
use super::dedup::{DuplicateCache, Seen};
use super::dict::Dictionary;
use super::event::{AccountingEvent, StatusType};
use super::journal::{is_journal_full, Journal, Recorded};
use super::line_address::LineAddresses;
use super::mmsg;
use super::nas::NasActivity;
use super::nas::NasTable;
use super::packet::{self, DropReason};
use super::throttle::Throttle;

/// A UDP socket with SO_RCVBUF raised, registered with tokio.
pub fn bind_udp(addr: SocketAddr, recv_buffer: usize) -> std::io::Result<UdpSocket> {
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::DGRAM,
        Some(socket2::Protocol::UDP),
    )?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    set_recv_buffer(&socket, recv_buffer);
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    UdpSocket::from_std(socket.into())
}

/// Raise SO_RCVBUF (the UDP listener's, the capture socket's), warning when the kernel
/// grants less.
pub(crate) fn set_recv_buffer(socket: &socket2::Socket, recv_buffer: usize) {
    if let Err(e) = socket.set_recv_buffer_size(recv_buffer) {
        tracing::warn!(error = %e, "could not set SO_RCVBUF");
    }
    let got = socket.recv_buffer_size().unwrap_or(0);
    if got < recv_buffer {
        tracing::warn!(
            requested = recv_buffer,
            granted = got,
            "SO_RCVBUF smaller than asked; raise net.core.rmem_max"
        );
    }
}

const CODE_ACCOUNTING_REQUEST: u8 = 4;
const CODE_STATUS_SERVER: u8 = 12;
/// Datagrams received in one go and handled by one task at most.
pub(crate) const RECV_BATCH: usize = 64;
/// Largest RADIUS packet (RFC 2865 §3).
const MAX_PACKET: usize = 4096;

/// Everything a request handler needs.
pub struct RadiusContext {
    /// The NAS table; replaced as a whole on reload.
    pub nas: RwLock<Arc<NasTable>>,
    pub dedup: DuplicateCache,
    /// Where accepted events go.
    pub journal: Arc<dyn Journal>,
    /// Last event per NAS client entry, as received by this instance.
    pub activity: NasActivity,
    pub dict: &'static Dictionary,
    /// Bounds the requests processed at once.
    pub limit: Arc<Semaphore>,
    pub max_in_flight: usize,
    /// Which addresses may identify a subscriber's line.
    pub lines: LineAddresses,
}

impl RadiusContext {
    pub fn nas_table(&self) -> Arc<NasTable> {
        self.nas.read().expect("nas lock").clone()
    }

    /// Swap in a new NAS table (SIGHUP reload); requests in flight keep the old one.
    pub fn replace_nas_table(&self, table: NasTable) {
        *self.nas.write().expect("nas lock") = Arc::new(table);
    }

    /// Wait until no request is in flight.
    pub async fn drain(&self) {
        if let Ok(all) = self.limit.acquire_many(self.max_in_flight as u32).await {
            drop(all);
        }
    }
}

/// Datagrams received in one go: their bytes back to back, and where each one is.
pub(crate) struct Datagrams {
    data: Vec<u8>,
    items: Vec<(usize, usize, SocketAddr)>,
}

impl Datagrams {
    fn new() -> Self {
        Datagrams {
            data: Vec::with_capacity(RECV_BATCH * 256),
            items: Vec::with_capacity(RECV_BATCH),
        }
    }

    /// Add a datagram received elsewhere (passive capture).
    pub(crate) fn push(&mut self, bytes: &[u8], source: SocketAddr) {
        let start = self.data.len();
        self.data.extend_from_slice(bytes);
        self.items.push((start, bytes.len(), source));
    }

    fn iter(&self) -> impl Iterator<Item = (&[u8], SocketAddr)> {
        self.items
            .iter()
            .map(|&(start, n, source)| (&self.data[start..start + n], source))
    }
}

/// Where datagrams come from: the UDP socket, or the capture queue.
pub(crate) trait Intake: Send + 'static {
    /// Wait for the next datagram and add it to `batch`; false when none will come again.
    fn first(&mut self, batch: &mut Datagrams) -> impl std::future::Future<Output = bool> + Send;
    /// Add up to `max` more datagrams to `batch` that are ready now; returns how many.
    fn more(&mut self, batch: &mut Datagrams, max: usize) -> usize;
}

/// The UDP socket as an [`Intake`]: `recvmmsg`, many datagrams per call.
struct UdpIntake {
    socket: Arc<UdpSocket>,
    buffers: mmsg::RecvBuffers,
}

impl UdpIntake {
    /// Up to `max` waiting datagrams into `batch`: how many, or `WouldBlock`.
    fn recv(&mut self, batch: &mut Datagrams, max: usize) -> io::Result<usize> {
        self.buffers
            .recv(&self.socket, max, |bytes, source| batch.push(bytes, source))
    }
}

impl Intake for UdpIntake {
    async fn first(&mut self, batch: &mut Datagrams) -> bool {
        loop {
            if let Err(e) = self.socket.readable().await {
                tracing::warn!(error = %e, "radius: receive failed");
                continue;
            }
            match self.recv(batch, 1) {
                Ok(n) if n > 0 => return true,
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => tracing::warn!(error = %e, "radius: receive failed"),
            }
        }
    }

    fn more(&mut self, batch: &mut Datagrams, max: usize) -> usize {
        match self.recv(batch, max) {
            Ok(n) => n,
            Err(e) => {
                if e.kind() != io::ErrorKind::WouldBlock {
                    tracing::warn!(error = %e, "radius: receive failed");
                }
                0
            }
        }
    }
}

/// Receive until `shutdown` turns true. Requests already received are finished by their
/// tasks; call [`RadiusContext::drain`] to wait for them.
pub async fn serve(
    socket: Arc<UdpSocket>,
    ctx: Arc<RadiusContext>,
    shutdown: watch::Receiver<bool>,
) {
    let intake = UdpIntake {
        socket: socket.clone(),
        buffers: mmsg::RecvBuffers::new(RECV_BATCH, MAX_PACKET),
    };
    serve_batches(intake, Some(socket), ctx, shutdown).await;
}

/// Take datagrams from `intake` in batches (one semaphore permit each) and handle every
/// batch in its own task; answers go to `replies`, or nowhere when passive.
pub(crate) async fn serve_batches(
    mut intake: impl Intake,
    replies: Option<Arc<UdpSocket>>,
    ctx: Arc<RadiusContext>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let mut permit = tokio::select! {
            p = ctx.limit.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => return,
            },
            _ = shutdown.changed() => return,
        };
        let mut batch = Datagrams::new();
        // Wait for the first datagram, then take what else is already there.
        tokio::select! {
            more = intake.first(&mut batch) => if !more { return },
            _ = shutdown.changed() => return,
        }
        // As many more as there are permits for, in one go.
        let extra = ctx.limit.available_permits().min(RECV_BATCH - 1);
        if extra > 0 {
            if let Ok(more) = ctx.limit.clone().try_acquire_many_owned(extra as u32) {
                permit.merge(more);
                let got = intake.more(&mut batch, extra);
                if got < extra {
                    drop(permit.split(extra - got));
                }
            }
        }
        let ctx = ctx.clone();
        let replies = replies.clone();
        tokio::spawn(async move {
            handle_batch(&ctx, replies.as_deref(), &batch, permit).await;
        });
    }
}

/// Log lines about dropped datagrams and corrected events: one per this interval each.
const LOG_EVERY: std::time::Duration = std::time::Duration::from_secs(10);

fn dropped(reason: DropReason, source: SocketAddr) {
    static LOG: Throttle = Throttle::new(LOG_EVERY);
    metrics::counter!("ebok_radius_dropped_total", "reason" => reason.label()).increment(1);
    if let Some(dropped) = LOG.note(1) {
        tracing::warn!(%source, reason = reason.label(), dropped,
            "radius: dropped packet: {reason} (dropped: packets dropped since the last such line)");
    }
}

/// Bound what an event may claim (see [`decode_checked`] and [`LineAddresses`]), counting
/// what was changed.
fn make_plausible(
    ctx: &RadiusContext,
    event: &mut AccountingEvent,
    corrected: super::decode::Corrected,
    source: SocketAddr,
) {
    static LOG: Throttle = Throttle::new(LOG_EVERY);
    let mut refused = Vec::new();
    ctx.lines.filter(event, |r| {
        metrics::counter!("ebok_radius_addresses_refused_total", "reason" => r.label())
            .increment(1);
        refused.push(r.label());
    });
    for attribute in corrected.attributes() {
        metrics::counter!("ebok_radius_times_corrected_total", "attribute" => attribute)
            .increment(1);
    }
    if !refused.is_empty() || corrected.any() {
        if let Some(events) = LOG.note(1) {
            let times: Vec<_> = corrected.attributes().collect();
            // Debug formatting: what a NAS sends reaches the log with control characters
            // escaped.
            tracing::warn!(%source, nas = ?event.nas, session = ?event.session_id,
                addresses_refused = ?refused, times_bounded = ?times, events,
                "radius: event recorded without addresses that cannot identify a line, \
                 or with impossible times bounded");
        }
    }
}

/// What one datagram asks for once checked. Lives only until the caller's `match`: the
/// event is moved straight into the batch, so boxing it would only add an allocation.
#[allow(clippy::large_enum_variant)]
enum Prepared {
    /// Nothing to send (dropped, or a retransmission still being processed).
    Nothing,
    /// Send these bytes now (Status-Server, or the kept reply to a retransmission).
    Reply(Vec<u8>),
    /// A new accounting event: answer with `reply` once it is durable.
    Event {
        event: AccountingEvent,
        expires_at: time::OffsetDateTime,
        id: u8,
        auth: [u8; 16],
        reply: Vec<u8>,
    },
}

/// Packets answered per status type in one batch, counted once per batch.
#[derive(Default)]
struct Counts {
    start: u64,
    stop: u64,
    interim: u64,
    on: u64,
    off: u64,
    replies: u64,
}

impl Counts {
    fn add(&mut self, status: StatusType) {
        *match status {
            StatusType::Start => &mut self.start,
            StatusType::Stop => &mut self.stop,
            StatusType::InterimUpdate => &mut self.interim,
            StatusType::AccountingOn => &mut self.on,
            StatusType::AccountingOff => &mut self.off,
        } += 1;
    }

    fn publish(&self) {
        for (status, n) in [
            (StatusType::Start, self.start),
            (StatusType::Stop, self.stop),
            (StatusType::InterimUpdate, self.interim),
            (StatusType::AccountingOn, self.on),
            (StatusType::AccountingOff, self.off),
        ] {
            if n > 0 {
                metrics::counter!("ebok_radius_packets_total", "type" => status.label())
                    .increment(n);
            }
        }
        if self.replies > 0 {
            metrics::counter!("ebok_radius_replies_total").increment(self.replies);
        }
    }
}

/// Check one datagram, up to the point where its event must be made durable.
fn prepare(
    ctx: &RadiusContext,
    nas_table: &NasTable,
    datagram: &[u8],
    source: SocketAddr,
    arrival: time::OffsetDateTime,
) -> Prepared {
    let packet = match packet::frame(datagram) {
        Ok(p) => p,
        Err(r) => {
            dropped(r, source);
            return Prepared::Nothing;
        }
    };
    let Some(nas) = nas_table.find(source.ip()) else {
        dropped(DropReason::UnknownNas, source);
        return Prepared::Nothing;
    };
    match packet[0] {
        CODE_ACCOUNTING_REQUEST => {}
        CODE_STATUS_SERVER => {
            if let Err(r) = packet::verify_status_server(packet, &nas.secret) {
                dropped(r, source);
                return Prepared::Nothing;
            }
            metrics::counter!("ebok_radius_packets_total", "type" => "status_server").increment(1);
            return Prepared::Reply(packet::accounting_response(packet, &nas.secret, true));
        }
        _ => {
            dropped(DropReason::UnknownCode, source);
            return Prepared::Nothing;
        }
    }
    if let Err(r) = packet::verify_accounting_request(packet, &nas.secret) {
        dropped(r, source);
        return Prepared::Nothing;
    }
    let id = packet::request_identifier(packet);
    let auth = packet::request_authenticator(packet);
    match ctx.dedup.check(source, id, auth) {
        Seen::New => {}
        Seen::InProgress => {
            metrics::counter!("ebok_radius_duplicates_total", "action" => "in_progress")
                .increment(1);
            return Prepared::Nothing;
        }
        Seen::Answered(reply) => {
            metrics::counter!("ebok_radius_duplicates_total", "action" => "resent").increment(1);
            return Prepared::Reply(reply);
        }
    }
    let event = match decode_checked(packet, source.ip(), &nas.name, arrival, ctx.dict) {
        Ok((mut e, corrected)) => {
            make_plausible(ctx, &mut e, corrected, source);
            e
        }
        Err(r) => {
            ctx.dedup.forget(source, id, auth);
            dropped(r, source);
            return Prepared::Nothing;
        }
    };
    Prepared::Event {
        event,
        expires_at: arrival + nas.expiry,
        id,
        auth,
        reply: packet::accounting_response(packet, &nas.secret, false),
    }
}

/// A batch checked up to the journal append of its events.
struct Checked {
    counts: Counts,
    events: Vec<(AccountingEvent, time::OffsetDateTime)>,
    /// (source, identifier, authenticator, reply) of each event, in `events` order.
    pending: Vec<(SocketAddr, u8, [u8; 16], Vec<u8>)>,
    /// Replies that need no journal (Status-Server, resent answers): they go out first.
    replies: Vec<(Vec<u8>, SocketAddr)>,
}

/// Check every datagram of a batch (one clock read and one NAS-table read for all).
fn check_batch<'a>(
    ctx: &RadiusContext,
    datagrams: impl Iterator<Item = (&'a [u8], SocketAddr)>,
) -> Checked {
    let arrival = ctx.journal.now();
    let nas_table = ctx.nas_table();
    let n = datagrams.size_hint().1.unwrap_or(0);
    let mut checked = Checked {
        counts: Counts::default(),
        events: Vec::with_capacity(n),
        pending: Vec::with_capacity(n),
        replies: Vec::new(),
    };
    for (datagram, source) in datagrams {
        match prepare(ctx, &nas_table, datagram, source, arrival) {
            Prepared::Nothing => {}
            Prepared::Reply(reply) => checked.replies.push((reply, source)),
            Prepared::Event {
                event,
                expires_at,
                id,
                auth,
                reply,
            } => {
                checked.counts.add(event.status);
                checked.events.push((event, expires_at));
                checked.pending.push((source, id, auth, reply));
            }
        }
    }
    checked
}

/// The replies to the events that were made durable (kept for retransmissions); the others
/// are forgotten, so the NAS's retry is processed anew.
fn conclude(
    ctx: &RadiusContext,
    pending: Vec<(SocketAddr, u8, [u8; 16], Vec<u8>)>,
    results: Vec<io::Result<Recorded>>,
) -> Vec<(Vec<u8>, SocketAddr)> {
    let mut replies = Vec::with_capacity(pending.len());
    let mut journaled = 0;
    let mut journal_full = 0;
    for ((source, id, auth, reply), result) in pending.into_iter().zip(results) {
        match result {
            Ok(how) => {
                if how == Recorded::Journaled {
                    journaled += 1;
                }
                ctx.dedup.answered(source, id, auth, &reply);
                replies.push((reply, source));
            }
            Err(e) if is_journal_full(&e) => {
                // Refused by `radius.journal_max_bytes`: silent too, the NAS keeps the record.
                ctx.dedup.forget(source, id, auth);
                journal_full += 1;
            }
            Err(e) => {
                // Neither the stores nor the journal took it: stay silent so the NAS retries.
                ctx.dedup.forget(source, id, auth);
                metrics::counter!("ebok_radius_dropped_total", "reason" => "not_durable")
                    .increment(1);
                tracing::error!(%source, error = %e, "radius: event could not be made durable; not answering");
            }
        }
    }
    if journaled > 0 {
        metrics::counter!("ebok_radius_journaled_total").increment(journaled);
    }
    if journal_full > 0 {
        metrics::counter!("ebok_radius_dropped_total", "reason" => "journal_full")
            .increment(journal_full);
        static LOG: Throttle = Throttle::new(LOG_EVERY);
        if let Some(refused) = LOG.note(journal_full) {
            tracing::warn!(
                refused,
                "radius: journal full (radius.journal_max_bytes); events not answered, the NAS retries"
            );
        }
    }
    replies
}

async fn handle_batch(
    ctx: &RadiusContext,
    socket: Option<&UdpSocket>,
    batch: &Datagrams,
    _permit: OwnedSemaphorePermit,
) {
    let mut checked = check_batch(ctx, batch.iter());
    checked.counts.replies += send(socket, &checked.replies).await;
    if !checked.events.is_empty() {
        ctx.activity.saw(
            checked.events.iter().map(|(e, _)| e.nas_client.as_str()),
            ctx.journal.now(),
        );
        let results = ctx.journal.record_batch(checked.events).await;
        let replies = conclude(ctx, checked.pending, results);
        checked.counts.replies += send(socket, &replies).await;
    }
    checked.counts.publish();
}

/// How long the journal-mode receive thread waits for a datagram before it looks at the
/// shutdown flag again.
const THREAD_RECV_TIMEOUT: std::time::Duration = std::time::Duration::from_millis(100);
/// Datagrams one turn of the journal-mode receive thread takes at most.
const THREAD_BATCH: usize = 1024;

/// Journal mode (`radius.ack_after = "journal"`): serve the socket on an OS thread of its
/// own. Each turn takes every datagram waiting (up to `radius.max_in_flight`, at most
/// [`THREAD_BATCH`]), checks them, appends their events to the journal in one write and
/// waits for it to be on disk, then sends all replies in one `sendmmsg`. Datagrams arriving
/// meanwhile queue in the socket buffer and make the next turn's batch, so the batch grows
/// with the load, and no task, timer or wake-up of the async runtime is involved per batch.
/// The returned task finishes when the thread has answered its last batch after `shutdown`.
pub fn serve_on_thread(
    socket: UdpSocket,
    ctx: Arc<RadiusContext>,
    shutdown: watch::Receiver<bool>,
) -> io::Result<tokio::task::JoinHandle<()>> {
    let socket = socket.into_std()?;
    socket.set_nonblocking(false)?;
    socket.set_read_timeout(Some(THREAD_RECV_TIMEOUT))?;
    let name = format!("ebok-radius {}", socket.local_addr()?);
    let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
    std::thread::Builder::new()
        .name("ebok-radius".into())
        .spawn(move || {
            receive_loop(&socket, &ctx, &shutdown);
            tracing::debug!("{name} stopped");
            let _ = done_tx.send(());
        })?;
    Ok(tokio::spawn(async move {
        let _ = done_rx.await;
    }))
}

fn receive_loop(
    socket: &std::net::UdpSocket,
    ctx: &RadiusContext,
    shutdown: &watch::Receiver<bool>,
) {
    let slots = ctx.max_in_flight.clamp(1, THREAD_BATCH);
    let mut buffers = mmsg::RecvBuffers::new(slots, MAX_PACKET);
    while !*shutdown.borrow() {
        let n = match buffers.recv_wait(socket, slots) {
            Ok(n) => n,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                ) =>
            {
                0
            }
            Err(e) => {
                tracing::warn!(error = %e, "radius: receive failed");
                std::thread::sleep(std::time::Duration::from_millis(10));
                0
            }
        };
        if n == 0 {
            continue;
        }
        // As `handle_batch` (the datagrams read in place, not copied into a batch), with
        // the blocking journal append and sends.
        let c = check_batch(ctx, buffers.received(n));
        let mut counts = c.counts;
        counts.replies += mmsg::send_all_wait(socket, &c.replies) as u64;
        if !c.events.is_empty() {
            ctx.activity.saw(
                c.events.iter().map(|(e, _)| e.nas_client.as_str()),
                ctx.journal.now(),
            );
            let answered = conclude(ctx, c.pending, ctx.journal.record_blocking(c.events));
            counts.replies += mmsg::send_all_wait(socket, &answered) as u64;
        }
        counts.publish();
    }
}

/// Send replies, all in one `sendmmsg` when the socket takes them at once. Returns how many
/// were sent; none when passive (no socket).
async fn send(socket: Option<&UdpSocket>, replies: &[(Vec<u8>, SocketAddr)]) -> u64 {
    match socket {
        Some(socket) if !replies.is_empty() => mmsg::send_all(socket, replies).await as u64,
        _ => 0,
    }
}
