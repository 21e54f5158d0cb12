//! Passive capture for real: a veth pair whose far end sits in a network namespace playing
//! the NAS (radclient sending to "another server" that ebok never answers for), ebok
//! capturing in-process on the near end; and VLAN-tagged frames (802.1Q, QinQ) put on the
//! wire through a packet socket. The links are removed even when a test fails.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::process::Stdio;

use ebok::config::{Config, NasConfig};
use ebok::radius::capture::frame::build::{ethernet, ipv4, ipv6, udp, v6_fragment_header};
use ebok::radius::packet::build_accounting_request;
use tokio::io::AsyncWriteExt;

use crate::harness::*;

const T0: i64 = 1_764_000_000;
/// The MAC address of the "other server": nobody here owns it, so the kernel drops the
/// frames after the capture socket has seen them (no ICMP, no forwarding).
const OTHER_SERVER_MAC: &str = "02:eb:0c:00:00:01";

/// The `ip` command giving `address` the other server's MAC on `dev`.
fn neighbour_other_server(address: &str, dev: &str) -> String {
    let v6 = if address.contains(':') { "-6 " } else { "" };
    format!("{v6}neigh add {address} lladdr {OTHER_SERVER_MAC} dev {dev} nud permanent")
}

/// Run `ip ARGS`; its stderr on failure.
fn ip(args: &[&str]) -> Result<(), String> {
    let out = std::process::Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("ip {}: {e}", args.join(" ")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// A veth pair, one end possibly in its own namespace; both go away on drop.
struct Veth {
    near: String,
    far: String,
    netns: Option<String>,
}

impl Drop for Veth {
    fn drop(&mut self) {
        // Deleting the namespace deletes the far end, and with it the pair.
        if let Some(ns) = &self.netns {
            let _ = ip(&["netns", "del", ns]);
        }
        let _ = ip(&["link", "del", &self.near]);
    }
}

impl Veth {
    /// A pair with fresh names; with `netns`, the far end is moved into a new namespace.
    fn create(netns: bool) -> Result<Veth, String> {
        let tag = format!("{:06x}", rand::random::<u32>() & 0xff_ffff);
        let veth = Veth {
            near: format!("ebc{tag}a"),
            far: format!("ebc{tag}b"),
            netns: netns.then(|| format!("ebok-capture-{tag}")),
        };
        match &veth.netns {
            Some(ns) => {
                ip(&["netns", "add", ns])?;
                ip(&[
                    "link", "add", &veth.near, "type", "veth", "peer", "name", &veth.far, "netns",
                    ns,
                ])?;
                veth.ns(&["link", "set", "lo", "up"])?;
            }
            None => {
                ip(&[
                    "link", "add", &veth.near, "type", "veth", "peer", "name", &veth.far,
                ])?;
                ip(&["link", "set", &veth.far, "up"])?;
            }
        }
        ip(&["link", "set", &veth.near, "up"])?;
        Ok(veth)
    }

    /// `ip ARGS` inside the namespace.
    fn ns(&self, args: &[&str]) -> Result<(), String> {
        let ns = self.netns.as_deref().expect("a namespace");
        let mut all = vec!["netns", "exec", ns, "ip"];
        all.extend_from_slice(args);
        ip(&all)
    }
}

/// Create the links, or record the test as skipped when the kernel refuses.
fn veth_or_skip(test: &str, netns: bool) -> Option<Veth> {
    match Veth::create(netns) {
        Ok(v) => Some(v),
        Err(why) => {
            ebok_testkit::skip(test, "network namespaces (CAP_NET_ADMIN)", &why);
            None
        }
    }
}

fn nas(prefixes: &[String]) -> NasConfig {
    NasConfig {
        name: "mirrored-bras".to_owned(),
        prefixes: prefixes.to_vec(),
        secret: Some(SECRET.to_owned()),
        secret_file: None,
        vendor: "generic".to_owned(),
        interim_interval: None,
        grace: None,
        coa_port: 3799,
    }
}

fn capture_config(dir: &std::path::Path, interface: &str, prefixes: &[String]) -> Config {
    let mut c = config(dir, &Backend::Embedded, None);
    c.capture.interface = interface.to_owned();
    c.nas = vec![nas(prefixes)];
    c
}

/// radclient inside `netns`, sending once to `target` (which never answers).
async fn radclient_in(netns: &str, target: &str, secret: &str, attrs: &str) {
    let mut cmd = tokio::process::Command::new("ip");
    cmd.args([
        "netns",
        "exec",
        netns,
        "radclient",
        "-q",
        "-r",
        "1",
        "-t",
        "0.2",
    ]);
    if target.starts_with('[') {
        cmd.arg("-6");
    }
    let mut child = cmd
        .args([target, "acct", secret])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("radclient is installed (Debian package freeradius-utils)");
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(attrs.as_bytes()).await.unwrap();
    drop(stdin);
    // No answer comes: the other server does not exist. The request was sent all the same.
    let _ = child.wait().await;
}

async fn wait_mapped(ebok: &Ebok, ip: &str) -> ebok::sessions::LiveSession {
    let what = format!("a live session on {ip}");
    eventually(&what, || async move { ebok.lookup(ip).await.is_some() }).await;
    ebok.lookup(ip).await.unwrap()
}

/// Class attributes enough to make the datagram ~3 kB: it leaves a 1280-octet link in
/// fragments.
fn padding() -> String {
    (0..12u8)
        .map(|i| {
            format!(
                "Class = \"{}\"\n",
                char::from(b'a' + i).to_string().repeat(250)
            )
        })
        .collect()
}

#[tokio::test]
async fn capture_sees_start_interim_stop_fragments_and_drops_wrong_secret_from_a_namespace() {
    let test = "capture_sees_start_interim_stop_fragments_and_drops_wrong_secret_from_a_namespace";
    let Some(veth) = veth_or_skip(test, true) else {
        return;
    };
    let ns = veth.netns.clone().unwrap();
    let r = rand::random::<u16>();
    let net = format!("100.{}.{}", 64 + (r >> 8) % 64, r & 0xff);
    let net6 = format!("fd00:ebc:{r:x}:1");
    let far = veth.far.clone();
    // The NAS: its addresses, the other server's addresses behind a MAC nobody has, and a
    // 1280-octet MTU (IPv6's minimum) so large requests fragment.
    ip(&["link", "set", &veth.near, "mtu", "1280"]).unwrap();
    for command in [
        format!("link set {far} mtu 1280 up"),
        format!("addr add {net}.2/24 dev {far}"),
        neighbour_other_server(&format!("{net}.1"), &far),
        format!("-6 addr add {net6}::2/64 dev {far} nodad"),
        neighbour_other_server(&format!("{net6}::1"), &far),
    ] {
        veth.ns(&command.split(' ').collect::<Vec<_>>()).unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let ebok = Ebok::start(capture_config(
        dir.path(),
        &veth.near,
        &[format!("{net}.0/24"), format!("{net6}::/64")],
    ))
    .await;
    assert_eq!(
        ebok.running.capture.as_ref().map(|c| c.interface.as_str()),
        Some(veth.near.as_str())
    );
    let v4 = format!("{net}.1:1813");
    let v6 = format!("[{net6}::1]:1813");
    let reassembled0 = ebok.metric("ebok_capture_reassembled_total").await;

    // Jan's session, as the NAS reports it.
    let jan = |status: &str, ts: i64, extra: &str| {
        attrs(
            status,
            "cap-1",
            "jan.kowalski",
            Some("10.77.0.7"),
            ts,
            extra,
        )
    };
    radclient_in(&ns, &v4, SECRET, &jan("Start", T0, "")).await;
    let s = wait_mapped(&ebok, "10.77.0.7").await;
    assert_eq!(s.session_id, "cap-1");
    assert_eq!(s.nas_client, "mirrored-bras");

    let interim = jan("Interim-Update", T0 + 300, "Acct-Input-Octets = 4242\n");
    radclient_in(&ns, &v4, SECRET, &interim).await;
    eventually("the Interim-Update applied", || async {
        ebok.lookup("10.77.0.7")
            .await
            .is_some_and(|s| s.input_octets == 4242)
    })
    .await;

    // ~3 kB requests: three IPv4 fragments, three IPv6 fragments.
    radclient_in(
        &ns,
        &v4,
        SECRET,
        &attrs(
            "Start",
            "cap-big4",
            "anna.nowak",
            Some("10.77.0.8"),
            T0,
            &padding(),
        ),
    )
    .await;
    assert_eq!(wait_mapped(&ebok, "10.77.0.8").await.session_id, "cap-big4");
    radclient_in(
        &ns,
        &v6,
        SECRET,
        &attrs(
            "Start",
            "cap-big6",
            "piotr.wisniewski",
            Some("10.77.0.9"),
            T0,
            &padding(),
        ),
    )
    .await;
    let s = wait_mapped(&ebok, "10.77.0.9").await;
    assert_eq!(s.session_id, "cap-big6");
    assert!(ebok.metric("ebok_capture_reassembled_total").await >= reassembled0 + 2.0);

    // A wrong secret: dropped and counted like on the listener.
    let bad0 = ebok
        .metric("ebok_radius_dropped_total{reason=\"bad_authenticator\"}")
        .await;
    radclient_in(
        &ns,
        &v4,
        "not-the-secret",
        &attrs("Start", "cap-bad", "mallory", Some("10.77.0.66"), T0, ""),
    )
    .await;
    eventually("the wrong secret counted", || async {
        ebok.metric("ebok_radius_dropped_total{reason=\"bad_authenticator\"}")
            .await
            >= bad0 + 1.0
    })
    .await;
    assert!(ebok.lookup("10.77.0.66").await.is_none());

    let stop = jan("Stop", T0 + 600, "Acct-Session-Time = 600\n");
    radclient_in(&ns, &v4, SECRET, &stop).await;
    eventually("the Stop unmapped the address", || async {
        ebok.lookup("10.77.0.7").await.is_none()
    })
    .await;
    assert!(ebok.metric("ebok_capture_frames_total").await >= 9.0);
    ebok.stop().await;
}

/// A signed Start as a NAS would send it.
fn start_request(id: u8, session: &str, framed: Ipv4Addr, pad: usize) -> Vec<u8> {
    let mut attrs: Vec<(u8, Vec<u8>)> = vec![
        (40, 1u32.to_be_bytes().to_vec()),
        (44, session.as_bytes().to_vec()),
        (1, b"vlan.user".to_vec()),
        (4, vec![192, 0, 2, 1]),
        (8, framed.octets().to_vec()),
        (55, (T0 as u32).to_be_bytes().to_vec()),
    ];
    for _ in 0..pad {
        attrs.push((25, vec![b'v'; 250]));
    }
    build_accounting_request(id, SECRET.as_bytes(), &attrs, false)
}

#[tokio::test]
async fn capture_reads_802_1q_and_qinq_tagged_frames() {
    let test = "capture_reads_802_1q_and_qinq_tagged_frames";
    let Some(veth) = veth_or_skip(test, false) else {
        return;
    };
    let nas4 = [198, 51, 100, 7];
    let nas6 = Ipv6Addr::new(0x2001, 0xdb8, 0xcafe, 0, 0, 0, 0, 7);
    let server4 = [198, 51, 100, 1];
    let server6 = Ipv6Addr::new(0x2001, 0xdb8, 0xcafe, 0, 0, 0, 0, 1);
    let r = rand::random::<u16>();
    let vlan_net = format!("100.{}.{}", 64 + (r >> 8) % 64, r & 0xff);
    let dir = tempfile::tempdir().unwrap();
    let mut config = capture_config(
        dir.path(),
        &veth.far,
        &[
            "198.51.100.0/24".to_owned(),
            "2001:db8:cafe::/64".to_owned(),
            format!("{vlan_net}.0/24"),
        ],
    );
    config.capture.promiscuous = true;
    let ebok = Ebok::start(config).await;

    // Frames put on the near end by a packet socket reach the far end as a switch would
    // deliver them from a trunk port.
    let near = ebok::radius::capture::find_interface(&veth.near).unwrap();
    let pnet_datalink::Channel::Ethernet(mut tx, _rx) =
        pnet_datalink::channel(&near, Default::default()).unwrap()
    else {
        panic!("an Ethernet channel");
    };
    let mut send = |frame: Vec<u8>| tx.send_to(&frame, None).unwrap().unwrap();
    let v4 =
        |id: u16, packet: &[u8]| ipv4(nas4, server4, id, false, 0, &[], &udp(3000, 1813, packet));

    send(ethernet(
        &[(0x8100, 10)],
        0x0800,
        &v4(
            1,
            &start_request(1, "vlan-10", Ipv4Addr::new(10, 78, 0, 1), 0),
        ),
    ));
    send(ethernet(
        &[(0x88a8, 100), (0x8100, 10)],
        0x0800,
        &v4(2, &start_request(2, "qinq", Ipv4Addr::new(10, 78, 0, 2), 0)),
    ));
    send(ethernet(
        &[(0x88a8, 100), (0x8100, 20), (0x8100, 30)],
        0x0800,
        &v4(
            3,
            &start_request(3, "three-tags", Ipv4Addr::new(10, 78, 0, 3), 0),
        ),
    ));
    // QinQ IPv6 in two fragments, the second first.
    let datagram = udp(
        3000,
        1813,
        &start_request(4, "qinq-v6", Ipv4Addr::new(10, 78, 0, 4), 6),
    );
    let (a, b) = datagram.split_at(1200);
    let mut first = v6_fragment_header(17, 0, true, 0x00c0_ffee);
    first.extend_from_slice(a);
    let mut second = v6_fragment_header(17, 1200 / 8, false, 0x00c0_ffee);
    second.extend_from_slice(b);
    for part in [second, first] {
        send(ethernet(
            &[(0x88a8, 100), (0x8100, 10)],
            0x86dd,
            &ipv6(nas6, server6, 44, &part),
        ));
    }
    for (ip, session) in [
        ("10.78.0.1", "vlan-10"),
        ("10.78.0.2", "qinq"),
        ("10.78.0.3", "three-tags"),
        ("10.78.0.4", "qinq-v6"),
    ] {
        assert_eq!(wait_mapped(&ebok, ip).await.session_id, session);
    }
    assert_eq!(
        ebok.lookup("10.78.0.4").await.unwrap().nas_client,
        "mirrored-bras"
    );

    // A VLAN sub-interface sending through the kernel's own 802.1Q code, where the kernel
    // has it (CONFIG_VLAN_8021Q).
    let sub = format!("{}.10", veth.near);
    match ip(&[
        "link", "add", "link", &veth.near, "name", &sub, "type", "vlan", "id", "10",
    ]) {
        Ok(()) => {
            for command in [
                format!("link set {sub} up"),
                format!("addr add {vlan_net}.2/24 dev {sub}"),
                neighbour_other_server(&format!("{vlan_net}.1"), &sub),
            ] {
                ip(&command.split(' ').collect::<Vec<_>>()).unwrap();
            }
            let to: SocketAddr = format!("{vlan_net}.1:1813").parse().unwrap();
            let socket = tokio::net::UdpSocket::bind(format!("{vlan_net}.2:0"))
                .await
                .unwrap();
            let packet = start_request(5, "vlan-sub", Ipv4Addr::new(10, 78, 0, 5), 0);
            socket.send_to(&packet, to).await.unwrap();
            assert_eq!(wait_mapped(&ebok, "10.78.0.5").await.session_id, "vlan-sub");
        }
        Err(why) => eprintln!(
            "{test}: no VLAN sub-interface ({why}): this kernel lacks 802.1Q; the tagged \
             frames above were put on the wire directly"
        ),
    }
    ebok.stop().await;
}

/// A capture interface that does not exist stops start-up, naming the key, the interface and
/// those present (the configuration itself is only data; capture looks the interface up).
#[tokio::test]
async fn a_missing_capture_interface_stops_start_up_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let config = capture_config(dir.path(), "ebok-none0", &["127.0.0.1".to_owned()]);
    let mut radius = Vec::new();
    for addr in &config.radius.listen {
        radius.push(ebok::server::bind_udp(*addr, config.radius.recv_buffer).unwrap());
    }
    let listeners = ebok::server::Listeners {
        radius,
        metrics: tokio::net::TcpListener::bind(config.metrics.listen)
            .await
            .unwrap(),
        web: tokio::net::TcpListener::bind(config.web.listen)
            .await
            .unwrap(),
    };
    let (_stop, rx) = tokio::sync::watch::channel(false);
    let Err(e) = ebok::server::start(config, listeners, rx).await else {
        panic!("started without its capture interface");
    };
    let e = format!("{e:#}");
    assert!(e.contains("capture.interface"), "{e}");
    assert!(e.contains("ebok-none0") && e.contains("lo"), "{e}");
}
