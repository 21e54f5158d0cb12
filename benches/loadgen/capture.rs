//! `capture`: signed Accounting-Requests at a fixed rate, answers ignored, for the passive
//! capture beside the UDP listener.

use super::*;

/// Offer `rate` requests/s for `seconds`: packets built beforehand (sessions of Start,
/// 3 Interim-Updates and Stop), sent on a schedule that catches up after any stall.
pub(super) fn send_paced(args: CaptureArgs) -> anyhow::Result<()> {
    let allowed = match args.target.ip() {
        IpAddr::V4(v4) => {
            v4.is_loopback()
                || v4.is_private()
                || (v4.octets()[0] == 100 && v4.octets()[1] & 0xc0 == 64)
        }
        IpAddr::V6(v6) => v6.is_loopback() || v6.octets()[0] == 0xfd,
    };
    if !allowed {
        bail!("--target must be a loopback, private or shared address");
    }
    if args.rate == 0 || args.seconds == 0 {
        bail!("--rate and --seconds must be positive");
    }
    let count = args.rate * args.seconds;
    let (tag, base_time) = (run_tag(), unix_now());
    let packets: Vec<Vec<u8>> = (0..count)
        .map(|n| {
            let (i, step) = (n / 5, (n % 5) as u32);
            let attrs = event_attributes(&Subscriber::new(tag, i), i, step, 3, base_time);
            build_accounting_request(n as u8, args.secret.as_bytes(), &attrs, false)
        })
        .collect();
    let bind: SocketAddr = if args.target.is_ipv6() {
        "[::]:0".parse()?
    } else {
        "0.0.0.0:0".parse()?
    };
    let socket = std::net::UdpSocket::bind(bind)?;
    socket.connect(args.target)?;
    let start = Instant::now();
    let mut sent = 0u64;
    let mut errors = 0u64;
    while sent < count {
        let due = (start.elapsed().as_secs_f64() * args.rate as f64) as u64;
        if sent >= due.min(count) {
            std::thread::sleep(Duration::from_micros(100));
            continue;
        }
        while sent < due.min(count) {
            // ICMP errors from the other end (none listening) are not our concern.
            if socket.send(&packets[sent as usize]).is_err() {
                errors += 1;
            }
            sent += 1;
        }
    }
    let took = start.elapsed().as_secs_f64();
    println!(
        "SENT name={} rate={} sent={} errors={} seconds={:.3} achieved={:.0}",
        args.name,
        args.rate,
        sent - errors,
        errors,
        took,
        (sent - errors) as f64 / took
    );
    Ok(())
}
