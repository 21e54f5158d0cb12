//! `load`: windowed streams of signed Accounting-Requests (Start, Interim-Updates, Stop per
//! session) over UDP; packets/s, reply latency, server CPU per packet.

use super::*;

/// What every socket task shares.
pub(super) struct Plan {
    pub(super) secret: Vec<u8>,
    pub(super) sessions: u64,
    pub(super) interims: u32,
    pub(super) tag: u32,
    pub(super) base_time: u32,
    pub(super) timeout: Duration,
    pub(super) retries: u32,
    pub(super) message_authenticator: bool,
    pub(super) start: Instant,
    /// No new requests after this.
    pub(super) deadline: Instant,
    /// Give up on outstanding requests after this.
    pub(super) drain_deadline: Instant,
    pub(super) next_session: AtomicU64,
    pub(super) stop: AtomicBool,
}

impl Plan {
    pub(super) fn events_per_session(&self) -> u32 {
        self.interims + 2
    }
}

/// One stream of a socket: the session it is working through and its request in flight.
pub(super) struct Slot {
    pub(super) session: u64,
    pub(super) step: u32,
    pub(super) sub: Option<Subscriber>,
    pub(super) id: u8,
    pub(super) packet: Vec<u8>,
    pub(super) first_sent: Instant,
    pub(super) last_sent: Instant,
    pub(super) tries: u32,
    pub(super) busy: bool,
}

#[derive(Default)]
pub(super) struct SocketStats {
    pub(super) sent: u64,
    pub(super) answered: u64,
    pub(super) answered_in_window: u64,
    pub(super) retransmits: u64,
    pub(super) lost: u64,
    pub(super) bad_replies: u64,
    pub(super) unfinished: u64,
    pub(super) sessions_done: u64,
    pub(super) last_reply: Option<Instant>,
    pub(super) latencies_us: Vec<u32>,
}

pub(super) async fn load(args: LoadArgs) -> anyhow::Result<()> {
    if !args.target.ip().is_loopback() {
        bail!("--target must be a loopback address");
    }
    if args.window == 0 || args.sessions == 0 {
        bail!("--window and --sessions must be positive");
    }
    let secret = args.secret.as_bytes().to_vec();
    wait_ready(
        args.target,
        &secret,
        Duration::from_secs(args.ready_timeout),
    )
    .await?;

    // At most 128 streams per socket, so a freed identifier waits behind ≥128 others before
    // it is reused (servers' duplicate caches key on source port + identifier).
    let n_sockets = args.window.div_ceil(128).max(2).min(args.window);
    let mut sockets = Vec::with_capacity(n_sockets);
    for _ in 0..n_sockets {
        let bind: SocketAddr = if args.target.is_ipv6() {
            "[::1]:0".parse()?
        } else {
            "127.0.0.1:0".parse()?
        };
        let s = UdpSocket::bind(bind).await?;
        s.connect(args.target).await?;
        sockets.push(s);
    }

    let metrics0 = match &args.metrics {
        Some(url) => Some(scrape(url).await?),
        None => None,
    };
    let kernel_drops0 = udp_rcvbuf_errors();
    let host_busy0 = host_busy_ticks();
    let pids: Vec<u32> = args
        .server_pid
        .iter()
        .chain(&args.also_pid)
        .copied()
        .collect();
    let server_cpu0 = args.server_pid.map(|_| cpu_sum(&pids)).transpose()?;
    let also_cpu0 = cpu_sum(&args.also_pid)?;
    let self_cpu0 = proc_cpu_ticks(std::process::id())?;
    let start = Instant::now();
    let deadline = start + Duration::from_secs(args.duration);
    let drain = Duration::from_millis(args.timeout_ms * 2).max(Duration::from_secs(2));
    let plan = Arc::new(Plan {
        secret,
        sessions: args.sessions,
        interims: args.interims,
        tag: run_tag(),
        base_time: unix_now(),
        timeout: Duration::from_millis(args.timeout_ms),
        retries: args.retries,
        message_authenticator: args.message_authenticator,
        start,
        deadline,
        drain_deadline: deadline + drain,
        next_session: AtomicU64::new(0),
        stop: AtomicBool::new(false),
    });

    let mut tasks = tokio::task::JoinSet::new();
    for (k, sock) in sockets.into_iter().enumerate() {
        let streams = args.window / n_sockets + usize::from(k < args.window % n_sockets);
        tasks.spawn(run_socket(sock, plan.clone(), streams));
    }
    // A progress line every 5 s on stderr.
    let progress_plan = plan.clone();
    let progress = tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(5));
        tick.tick().await;
        loop {
            tick.tick().await;
            let started = progress_plan
                .next_session
                .load(Ordering::Relaxed)
                .min(progress_plan.sessions);
            eprintln!(
                "  … {:>4.0} s, {started} sessions started",
                progress_plan.start.elapsed().as_secs_f64()
            );
        }
    });

    let mut all = SocketStats::default();
    while let Some(r) = tasks.join_next().await {
        let s = r?;
        all.sent += s.sent;
        all.answered += s.answered;
        all.answered_in_window += s.answered_in_window;
        all.retransmits += s.retransmits;
        all.lost += s.lost;
        all.bad_replies += s.bad_replies;
        all.unfinished += s.unfinished;
        all.sessions_done += s.sessions_done;
        all.last_reply = all.last_reply.max(s.last_reply);
        all.latencies_us.extend(s.latencies_us);
    }
    progress.abort();
    let end = Instant::now();
    plan.stop.store(true, Ordering::Relaxed);
    let server_cpu1 = args.server_pid.map(|_| cpu_sum(&pids)).transpose()?;
    let also_s = (cpu_sum(&args.also_pid)? - also_cpu0) as f64 / clock_ticks_per_second();
    let self_cpu1 = proc_cpu_ticks(std::process::id())?;
    let kernel_drops = udp_rcvbuf_errors().saturating_sub(kernel_drops0);
    let host_busy = host_busy_ticks().saturating_sub(host_busy0);

    // The measured window: until the deadline, or until the last reply when every session
    // finished earlier.
    let window_end = if plan.next_session.load(Ordering::Relaxed) >= plan.sessions
        && all.last_reply.is_some_and(|t| t < deadline)
    {
        all.last_reply.unwrap_or(deadline)
    } else {
        deadline
    };
    let window_s = (window_end - start).as_secs_f64().max(1e-6);
    let pps = all.answered_in_window as f64 / window_s;
    all.latencies_us.sort_unstable();
    let p50 = percentile(&all.latencies_us, 0.50);
    let p99 = percentile(&all.latencies_us, 0.99);
    let max = all.latencies_us.last().copied().unwrap_or(0);
    let tck = clock_ticks_per_second();
    let self_cpu_s = (self_cpu1 - self_cpu0) as f64 / tck;

    println!("== {} → {} ==", args.name, args.target);
    println!(
        "  window {} requests on {} sockets, {} interim(s)/session, {:.1} s measured ({:.1} s total)",
        args.window,
        n_sockets,
        args.interims,
        window_s,
        (end - start).as_secs_f64()
    );
    println!(
        "  requests sent {} (+{} retransmissions), answered {} ({} in window), sessions completed {}",
        all.sent, all.retransmits, all.answered, all.answered_in_window, all.sessions_done
    );
    println!(
        "  timeouts {}, lost {}, unanswered at end {}, bad replies {}; kernel UDP receive-buffer \
         drops on this host during the run {kernel_drops}",
        all.retransmits, all.lost, all.unfinished, all.bad_replies
    );
    println!("  answered packets/s {pps:.0}");
    println!("  reply latency µs: p50 {p50}  p99 {p99}  max {max}");
    let mut cpu_fields = String::new();
    if let (Some(a), Some(b)) = (server_cpu0, server_cpu1) {
        let server_s = (b - a) as f64 / tck;
        let per_pkt = if all.answered > 0 {
            server_s * 1e6 / all.answered as f64
        } else {
            f64::NAN
        };
        let also = if args.also_pid.is_empty() {
            String::new()
        } else {
            format!(
                " (of which {also_s:.2} s in --also-pid {:?})",
                args.also_pid
            )
        };
        println!(
            "  server CPU {server_s:.2} s{also} ({:.0}% of one core) → {per_pkt:.1} µs per answered packet",
            server_s * 100.0 / (end - start).as_secs_f64()
        );
        cpu_fields = format!(" server_cpu_s={server_s:.2} cpu_us_per_pkt={per_pkt:.1}");
        if !args.also_pid.is_empty() {
            let also_per = also_s * 1e6 / all.answered.max(1) as f64;
            cpu_fields.push_str(&format!(" also_us_per_pkt={also_per:.1}"));
        }
    }
    // Whatever else ran on the machine meanwhile (builds, other tests) competed for the cores.
    let server_ticks = match (server_cpu0, server_cpu1) {
        (Some(a), Some(b)) => b - a,
        _ => 0,
    };
    let other_s = host_busy.saturating_sub(server_ticks + (self_cpu1 - self_cpu0)) as f64 / tck;
    println!("  load generator CPU {self_cpu_s:.2} s; other processes on the host {other_s:.2} s");
    cpu_fields.push_str(&format!(" other_cpu_s={other_s:.2}"));
    if let (Some(url), Some(m0)) = (&args.metrics, &metrics0) {
        let m1 = scrape(url).await?;
        let spooled =
            metric(&m1, "ebok_radius_journaled_total") - metric(m0, "ebok_radius_journaled_total");
        let depth = metric(&m1, "ebok_journal_depth");
        let share = if all.answered > 0 {
            spooled * 100.0 / all.answered as f64
        } else {
            0.0
        };
        println!(
            "  ebok: {spooled:.0} answers ({share:.1}%) were given from the journal before the stores took the event; journal depth at the end {depth:.0}"
        );
        cpu_fields.push_str(&format!(
            " spooled={spooled:.0} spooled_pct={share:.1} spool_depth={depth:.0}"
        ));
        if args.settle > 0 && depth > 0.0 {
            let settle_start = Instant::now();
            let until = settle_start + Duration::from_secs(args.settle);
            let mut left = depth;
            while left > 0.0 && Instant::now() < until {
                tokio::time::sleep(Duration::from_millis(500)).await;
                left = metric(&scrape(url).await?, "ebok_journal_depth");
            }
            let waited = settle_start.elapsed().as_secs_f64();
            let replayed = depth - left;
            print!(
                "  spool replay: {replayed:.0} events in {waited:.1} s ({:.0}/s), {left:.0} left",
                replayed / waited.max(1e-6)
            );
            cpu_fields.push_str(&format!(
                " replay_per_s={:.0} spool_left={left:.0}",
                replayed / waited.max(1e-6)
            ));
            if let Some(a) = server_cpu0 {
                let total_s = (cpu_sum(&pids)? - a) as f64 / tck;
                let per = total_s * 1e6 / all.answered.max(1) as f64;
                let bound = if left > 0.0 {
                    " (lower bound: spool not empty)"
                } else {
                    ""
                };
                print!("; server CPU incl. replay {total_s:.2} s → {per:.1} µs/packet{bound}");
                cpu_fields.push_str(&format!(" cpu_us_per_pkt_incl_replay={per:.1}"));
                if !args.also_pid.is_empty() {
                    let also_total = (cpu_sum(&args.also_pid)? - also_cpu0) as f64 / tck;
                    let also_per = also_total * 1e6 / all.answered.max(1) as f64;
                    print!(", of which --also-pid {also_total:.2} s → {also_per:.1} µs/packet");
                    cpu_fields.push_str(&format!(" also_us_per_pkt_incl_replay={also_per:.1}"));
                }
            }
            println!();
        }
    }
    println!(
        "RESULT name={} pps={pps:.0} answered={} p50_us={p50} p99_us={p99} max_us={max} timeouts={} lost={} unfinished={}{cpu_fields} bench_cpu_s={self_cpu_s:.2} kernel_drops={kernel_drops} window={} duration_s={window_s:.1}",
        args.name, all.answered, all.retransmits, all.lost, all.unfinished, args.window
    );
    Ok(())
}

/// Send a probe Start (and its Stop) until the server answers: the server is up.
pub(super) async fn wait_ready(
    target: SocketAddr,
    secret: &[u8],
    limit: Duration,
) -> anyhow::Result<()> {
    let bind: SocketAddr = if target.is_ipv6() {
        "[::1]:0".parse()?
    } else {
        "127.0.0.1:0".parse()?
    };
    let sock = UdpSocket::bind(bind).await?;
    sock.connect(target).await?;
    let sub = Subscriber::new(run_tag(), 0xffff_fff0);
    let until = Instant::now() + limit;
    let now = unix_now();
    let mut id = 0u8;
    for step in [0u32, 1] {
        let attrs = event_attributes(&sub, 0, step, 0, now);
        loop {
            id = id.wrapping_add(1);
            let packet = build_accounting_request(id, secret, &attrs, false);
            sock.send(&packet).await?;
            let mut buf = [0u8; 4096];
            match tokio::time::timeout(Duration::from_millis(300), sock.recv(&mut buf)).await {
                Ok(Ok(n)) if reply_ok(&buf[..n], &packet, secret) => break,
                _ if Instant::now() >= until => {
                    bail!("{target} did not answer an Accounting-Request within {limit:?}")
                }
                _ => {}
            }
        }
    }
    Ok(())
}

/// An authentic Accounting-Response to `request` (RFC 2866 §3 Response Authenticator).
pub(super) fn reply_ok(reply: &[u8], request: &[u8], secret: &[u8]) -> bool {
    if reply.len() < HEADER_LEN || reply[0] != CODE_ACCOUNTING_RESPONSE || reply[1] != request[1] {
        return false;
    }
    let len = usize::from(u16::from_be_bytes([reply[2], reply[3]]));
    if len < HEADER_LEN || len > reply.len() {
        return false;
    }
    let mut md5 = Md5::new();
    md5.update(&reply[..4]);
    md5.update(&request[4..HEADER_LEN]);
    md5.update(&reply[HEADER_LEN..len]);
    md5.update(secret);
    md5.finalize()[..] == reply[4..HEADER_LEN]
}

pub(super) async fn run_socket(sock: UdpSocket, plan: Arc<Plan>, streams: usize) -> SocketStats {
    let mut stats = SocketStats {
        latencies_us: Vec::with_capacity(1 << 16),
        ..SocketStats::default()
    };
    let now = Instant::now();
    let mut slots: Vec<Slot> = (0..streams)
        .map(|_| Slot {
            session: 0,
            step: 0,
            sub: None,
            id: 0,
            packet: Vec::new(),
            first_sent: now,
            last_sent: now,
            tries: 0,
            busy: false,
        })
        .collect();
    // Identifier → slot; freed identifiers go to the back of the queue.
    let mut by_id: [Option<u16>; 256] = [None; 256];
    let mut free_ids: std::collections::VecDeque<u8> = (0..=255u8).collect();
    let mut buf = vec![0u8; 4096];

    for (k, slot) in slots.iter_mut().enumerate() {
        if !next_request(&plan, slot, k, &mut by_id, &mut free_ids) {
            break;
        }
        // A failed send is retransmitted after the timeout like a lost datagram.
        let _ = send(&sock, slot, &mut stats).await;
    }

    let mut tick = tokio::time::interval(Duration::from_millis(50));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        if slots.iter().all(|s| !s.busy) {
            break;
        }
        tokio::select! {
            r = sock.recv(&mut buf) => {
                let mut next = r.ok();
                // Drain what is already queued before going back to the scheduler.
                while let Some(n) = next {
                    let t = Instant::now();
                    handle_reply(&plan, &sock, &buf[..n], t, &mut slots, &mut by_id, &mut free_ids, &mut stats).await;
                    next = sock.try_recv(&mut buf).ok();
                }
            }
            _ = tick.tick() => {
                let t = Instant::now();
                if t >= plan.drain_deadline {
                    stats.unfinished += slots.iter().filter(|s| s.busy).count() as u64;
                    break;
                }
                for (k, s) in slots.iter_mut().enumerate() {
                    if !s.busy || t.duration_since(s.last_sent) < plan.timeout {
                        continue;
                    }
                    stats.retransmits += 1;
                    if s.tries >= plan.retries {
                        // Lost: the NAS gives up on this event and goes on with the session.
                        stats.lost += 1;
                        by_id[usize::from(s.id)] = None;
                        free_ids.push_back(s.id);
                        s.busy = false;
                        s.step += 1;
                        if next_request(&plan, s, k, &mut by_id, &mut free_ids) {
                            let _ = send(&sock, s, &mut stats).await;
                        }
                    } else {
                        s.tries += 1;
                        s.last_sent = t;
                        let _ = sock.send(&s.packet).await;
                    }
                }
            }
        }
    }
    stats
}

#[allow(clippy::too_many_arguments)]
pub(super) async fn handle_reply(
    plan: &Plan,
    sock: &UdpSocket,
    reply: &[u8],
    t: Instant,
    slots: &mut [Slot],
    by_id: &mut [Option<u16>; 256],
    free_ids: &mut std::collections::VecDeque<u8>,
    stats: &mut SocketStats,
) {
    if reply.len() < HEADER_LEN {
        stats.bad_replies += 1;
        return;
    }
    let id = reply[1];
    let Some(k) = by_id[usize::from(id)] else {
        // A late duplicate answer to a retransmitted request: not an error.
        return;
    };
    let k = usize::from(k);
    let s = &mut slots[k];
    if !reply_ok(reply, &s.packet, &plan.secret) {
        stats.bad_replies += 1;
        return;
    }
    stats.answered += 1;
    if t <= plan.deadline {
        stats.answered_in_window += 1;
    }
    stats.last_reply = Some(t);
    stats.latencies_us.push(
        t.duration_since(s.first_sent)
            .as_micros()
            .min(u128::from(u32::MAX)) as u32,
    );
    by_id[usize::from(id)] = None;
    free_ids.push_back(id);
    s.busy = false;
    s.step += 1;
    if s.step >= plan.events_per_session() {
        stats.sessions_done += 1;
    }
    if next_request(plan, s, k, by_id, free_ids) {
        let _ = send(sock, s, stats).await;
    }
}

/// Prepare the slot's next request (next event of its session, or a new session). False when
/// there is nothing more to send.
pub(super) fn next_request(
    plan: &Plan,
    s: &mut Slot,
    k: usize,
    by_id: &mut [Option<u16>; 256],
    free_ids: &mut std::collections::VecDeque<u8>,
) -> bool {
    if Instant::now() >= plan.deadline || plan.stop.load(Ordering::Relaxed) {
        return false;
    }
    if s.sub.is_none() || s.step >= plan.events_per_session() {
        let i = plan.next_session.fetch_add(1, Ordering::Relaxed);
        if i >= plan.sessions {
            s.sub = None;
            return false;
        }
        s.session = i;
        s.step = 0;
        s.sub = Some(Subscriber::new(plan.tag, i));
    }
    let Some(id) = free_ids.pop_front() else {
        return false;
    };
    let sub = s.sub.as_ref().expect("set above");
    let attrs = event_attributes(sub, s.session, s.step, plan.interims, plan.base_time);
    s.packet = build_accounting_request(id, &plan.secret, &attrs, plan.message_authenticator);
    s.id = id;
    s.tries = 0;
    s.busy = true;
    by_id[usize::from(id)] = Some(k as u16);
    true
}

pub(super) async fn send(
    sock: &UdpSocket,
    s: &mut Slot,
    stats: &mut SocketStats,
) -> std::io::Result<()> {
    let t = Instant::now();
    s.first_sent = t;
    s.last_sent = t;
    stats.sent += 1;
    sock.send(&s.packet).await.map(|_| ())
}
