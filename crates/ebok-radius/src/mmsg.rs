//! Many datagrams per system call: `recvmmsg(2)` and `sendmmsg(2)` on a tokio UDP socket.
//! Under load the listener receives a whole batch and sends all its replies in one call
//! each, instead of one `recvfrom`/`sendto` per packet.

use std::io;
use std::mem::MaybeUninit;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{AsRawFd, RawFd};

use socket2::SockAddr;
use tokio::io::Interest;
use tokio::net::UdpSocket;

/// Receive buffers for up to `slots` datagrams of up to `size` bytes each, reused.
pub(crate) struct RecvBuffers {
    data: Vec<u8>,
    size: usize,
    addrs: Vec<libc::sockaddr_storage>,
    iovs: Vec<libc::iovec>,
    headers: Vec<libc::mmsghdr>,
}

// The raw pointers in `iovs`/`headers` are rebuilt before every call and only point into
// the buffers' own vectors; nothing is shared between threads.
unsafe impl Send for RecvBuffers {}

impl RecvBuffers {
    pub(crate) fn new(slots: usize, size: usize) -> Self {
        RecvBuffers {
            data: vec![0; slots * size],
            size,
            // SAFETY: sockaddr_storage is plain old data; all-zero is a valid value.
            addrs: vec![unsafe { MaybeUninit::zeroed().assume_init() }; slots],
            iovs: Vec::with_capacity(slots),
            headers: Vec::with_capacity(slots),
        }
    }

    /// Receive up to `max` datagrams that are waiting now (never blocks; `WouldBlock` when
    /// none is) and pass each to `each` with its source.
    pub(crate) fn recv(
        &mut self,
        socket: &UdpSocket,
        max: usize,
        each: impl FnMut(&[u8], SocketAddr),
    ) -> io::Result<usize> {
        let fd = socket.as_raw_fd();
        let n = socket.try_io(Interest::READABLE, || {
            self.recvmmsg(fd, max, libc::MSG_DONTWAIT)
        })?;
        self.deliver(n, each);
        Ok(n)
    }

    /// On a blocking socket: wait for the first datagram (at most the socket's receive
    /// timeout, then `WouldBlock`), then take up to `max` in all that are waiting. Returns
    /// how many; [`RecvBuffers::received`] reads them in place.
    pub(crate) fn recv_wait(
        &mut self,
        socket: &std::net::UdpSocket,
        max: usize,
    ) -> io::Result<usize> {
        self.recvmmsg(socket.as_raw_fd(), max, libc::MSG_WAITFORONE)
    }

    /// One `recvmmsg` of up to `max` datagrams into the buffers.
    fn recvmmsg(&mut self, fd: RawFd, max: usize, flags: libc::c_int) -> io::Result<usize> {
        let max = max.min(self.addrs.len());
        if max == 0 {
            return Ok(0);
        }
        self.iovs.clear();
        self.headers.clear();
        for chunk in self.data.chunks_mut(self.size).take(max) {
            self.iovs.push(libc::iovec {
                iov_base: chunk.as_mut_ptr().cast(),
                iov_len: chunk.len(),
            });
        }
        for (iov, addr) in self.iovs.iter_mut().zip(self.addrs.iter_mut()) {
            // SAFETY: msghdr is plain old data; the fields we need are set below.
            let mut hdr: libc::msghdr = unsafe { MaybeUninit::zeroed().assume_init() };
            hdr.msg_name = (addr as *mut libc::sockaddr_storage).cast();
            hdr.msg_namelen = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            hdr.msg_iov = iov;
            hdr.msg_iovlen = 1;
            self.headers.push(libc::mmsghdr {
                msg_hdr: hdr,
                msg_len: 0,
            });
        }
        // SAFETY: `headers` holds `max` valid mmsghdr whose buffers and address storage live
        // in `self` for the duration of the call.
        let n = unsafe {
            libc::recvmmsg(
                fd,
                self.headers.as_mut_ptr(),
                self.headers.len() as libc::c_uint,
                flags,
                std::ptr::null_mut(),
            )
        };
        if n < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(n as usize)
        }
    }

    /// Pass the first `n` received datagrams to `each`.
    fn deliver(&self, n: usize, mut each: impl FnMut(&[u8], SocketAddr)) {
        for (bytes, source) in self.received(n) {
            each(bytes, source);
        }
    }

    /// The first `n` datagrams of the last receive, with their sources, in place.
    pub(crate) fn received(&self, n: usize) -> impl Iterator<Item = (&[u8], SocketAddr)> {
        (0..n.min(self.headers.len())).filter_map(move |i| {
            let len = (self.headers[i].msg_len as usize).min(self.size);
            let source = socket_addr(&self.addrs[i])?;
            let start = i * self.size;
            Some((&self.data[start..start + len], source))
        })
    }
}

/// The IPv4 or IPv6 address the kernel wrote into `storage`.
fn socket_addr(storage: &libc::sockaddr_storage) -> Option<SocketAddr> {
    match i32::from(storage.ss_family) {
        libc::AF_INET => {
            // SAFETY: the family says the storage holds a sockaddr_in, which fits in it.
            let a =
                unsafe { &*(storage as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>() };
            Some(SocketAddr::V4(SocketAddrV4::new(
                Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr)),
                u16::from_be(a.sin_port),
            )))
        }
        libc::AF_INET6 => {
            // SAFETY: the family says the storage holds a sockaddr_in6, which fits in it.
            let a = unsafe {
                &*(storage as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>()
            };
            Some(SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::from(a.sin6_addr.s6_addr),
                u16::from_be(a.sin6_port),
                a.sin6_flowinfo,
                a.sin6_scope_id,
            )))
        }
        _ => None,
    }
}

/// Replies of the same size to the same address go out as one UDP GSO message
/// (`UDP_SEGMENT`): one pass through the send path and one route lookup for up to this many
/// datagrams, which the kernel (or the NIC) splits. A NAS sends from one socket, so a batch of
/// its answers is mostly such a run.
const GSO_MAX_SEGMENTS: usize = 64;
/// Only datagrams up to this size are grouped (every Accounting-Response is 20 or 38 bytes):
/// a segment must fit any path MTU, and a run its 64 KiB message.
const GSO_MAX_SEGMENT_BYTES: usize = 512;

/// Cleared when the kernel refuses `UDP_SEGMENT` (before Linux 4.18); replies then go out one
/// `mmsghdr` each.
static GSO_ON: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(true);

fn gso_on() -> bool {
    GSO_ON.load(std::sync::atomic::Ordering::Relaxed)
}

/// True for the errors a kernel or route without UDP GSO answers with.
fn gso_refused(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EINVAL | libc::EIO | libc::EOPNOTSUPP | libc::ENOPROTOOPT)
    )
}

/// Send every `(bytes, destination)` with as few `sendmmsg` calls as the socket allows,
/// waiting while its buffer is full. Returns how many were sent; a datagram the kernel
/// refuses (other than for a full buffer) is logged and skipped.
pub(crate) async fn send_all(socket: &UdpSocket, datagrams: &[(Vec<u8>, SocketAddr)]) -> usize {
    let fd = socket.as_raw_fd();
    let mut out = Outgoing::new(datagrams, gso_on());
    let mut progress = Progress::default();
    while progress.done < out.messages() {
        let from = progress.done;
        let r = socket.try_io(Interest::WRITABLE, || {
            out.send(fd, from, libc::MSG_DONTWAIT)
        });
        match progress.account(r, &out) {
            Account::Go => {}
            Account::Full => {
                if let Err(e) = socket.writable().await {
                    tracing::warn!(error = %e, "radius: replies not sent");
                    break;
                }
            }
            Account::NoGso => {
                out = out.without_gso(progress.done);
                progress.done = 0;
            }
        }
    }
    progress.sent
}

/// [`send_all`] on a blocking socket: the kernel waits while its buffer is full.
pub(crate) fn send_all_wait(
    socket: &std::net::UdpSocket,
    datagrams: &[(Vec<u8>, SocketAddr)],
) -> usize {
    let fd = socket.as_raw_fd();
    let mut out = Outgoing::new(datagrams, gso_on());
    let mut progress = Progress::default();
    while progress.done < out.messages() {
        let r = out.send(fd, progress.done, 0);
        if let Account::NoGso = progress.account(r, &out) {
            out = out.without_gso(progress.done);
            progress.done = 0;
        }
    }
    progress.sent
}

/// How far a [`send_all`] got, in messages of its [`Outgoing`].
#[derive(Default)]
struct Progress {
    /// Messages dealt with (sent or skipped).
    done: usize,
    /// Datagrams sent.
    sent: usize,
}

/// What to do after one `sendmmsg`.
enum Account {
    Go,
    /// The socket's buffer was full (nothing done).
    Full,
    /// The kernel refused UDP GSO: send the rest without it.
    NoGso,
}

impl Progress {
    fn account(&mut self, r: io::Result<usize>, out: &Outgoing) -> Account {
        match r {
            Ok(n) => {
                self.sent += out.datagrams_in(self.done, n);
                self.done += n;
                Account::Go
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Account::Full,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Account::Go,
            Err(e) if out.is_gso(self.done) && gso_refused(&e) => {
                GSO_ON.store(false, std::sync::atomic::Ordering::Relaxed);
                tracing::info!(error = %e, "radius: UDP GSO refused; sending replies one by one");
                Account::NoGso
            }
            Err(e) => {
                tracing::warn!(to = %out.destination(self.done), error = %e, "radius: reply not sent");
                self.done += 1;
                Account::Go
            }
        }
    }
}

/// Control message buffer for one `UDP_SEGMENT` option (a `u16`), aligned for `cmsghdr`.
#[repr(C, align(8))]
#[derive(Clone, Copy)]
struct SegmentCmsg([u8; 32]);

/// The `sendmmsg` arguments for a batch of datagrams: one message per datagram, or per run of
/// equal-sized datagrams to one address with GSO.
struct Outgoing {
    /// The datagrams of each message (indices into the caller's slice), in message order.
    order: Vec<usize>,
    /// Per message: where its datagrams start in `order`, and how many there are.
    spans: Vec<(usize, usize)>,
    datagrams: Vec<(*const u8, usize, SocketAddr)>,
    /// Kept alive for the pointers in `headers`.
    _addrs: Vec<SockAddr>,
    _iovs: Vec<libc::iovec>,
    _cmsgs: Vec<SegmentCmsg>,
    headers: Vec<libc::mmsghdr>,
}

// The raw pointers only point into the datagrams (borrowed for the whole `send_all`) and the
// struct's own vectors; they are used by one task at a time.
unsafe impl Send for Outgoing {}

impl Outgoing {
    fn new(datagrams: &[(Vec<u8>, SocketAddr)], gso: bool) -> Self {
        let all = datagrams
            .iter()
            .map(|(bytes, to)| (bytes.as_ptr(), bytes.len(), *to))
            .collect();
        Self::build(all, gso)
    }

    /// The messages from `from` on, again, one datagram each.
    fn without_gso(self, from: usize) -> Self {
        let rest = self.spans[from..]
            .iter()
            .flat_map(|&(start, n)| self.order[start..start + n].iter())
            .map(|&i| self.datagrams[i])
            .collect();
        Self::build(rest, false)
    }

    fn build(datagrams: Vec<(*const u8, usize, SocketAddr)>, gso: bool) -> Self {
        let mut order: Vec<usize> = (0..datagrams.len()).collect();
        let mut spans = Vec::with_capacity(datagrams.len());
        if gso {
            // Runs of one (address, size); the order between them does not matter.
            order.sort_by_key(|&i| (datagrams[i].2, datagrams[i].1));
            let mut start = 0;
            while start < order.len() {
                let key = |i: usize| (datagrams[order[i]].2, datagrams[order[i]].1);
                let groups = datagrams[order[start]].1 <= GSO_MAX_SEGMENT_BYTES;
                let mut end = start + 1;
                while groups
                    && end < order.len()
                    && end - start < GSO_MAX_SEGMENTS
                    && key(end) == key(start)
                {
                    end += 1;
                }
                spans.push((start, end - start));
                start = end;
            }
        } else {
            spans.extend((0..order.len()).map(|i| (i, 1)));
        }
        let addrs: Vec<SockAddr> = spans
            .iter()
            .map(|&(start, _)| SockAddr::from(datagrams[order[start]].2))
            .collect();
        let mut iovs: Vec<libc::iovec> = order
            .iter()
            .map(|&i| libc::iovec {
                iov_base: datagrams[i].0 as *mut libc::c_void,
                iov_len: datagrams[i].1,
            })
            .collect();
        let mut cmsgs: Vec<SegmentCmsg> = spans
            .iter()
            .map(|&(start, n)| {
                let mut c = SegmentCmsg([0; 32]);
                if n > 1 {
                    segment_cmsg(&mut c, datagrams[order[start]].1 as u16);
                }
                c
            })
            .collect();
        let iov_base = iovs.as_mut_ptr();
        let headers = spans
            .iter()
            .zip(&addrs)
            .zip(cmsgs.iter_mut())
            .map(|((&(start, n), addr), cmsg)| {
                // SAFETY: msghdr is plain old data; the fields we need are set below.
                let mut hdr: libc::msghdr = unsafe { MaybeUninit::zeroed().assume_init() };
                hdr.msg_name = addr.as_ptr() as *mut libc::c_void;
                hdr.msg_namelen = addr.len();
                // SAFETY: `start + n <= iovs.len()`; the vector is not resized afterwards.
                hdr.msg_iov = unsafe { iov_base.add(start) };
                hdr.msg_iovlen = n;
                if n > 1 {
                    hdr.msg_control = cmsg.0.as_mut_ptr().cast();
                    // SAFETY: CMSG_SPACE only computes a size.
                    hdr.msg_controllen = unsafe { libc::CMSG_SPACE(2) } as usize;
                }
                libc::mmsghdr {
                    msg_hdr: hdr,
                    msg_len: 0,
                }
            })
            .collect();
        Outgoing {
            order,
            spans,
            datagrams,
            _addrs: addrs,
            _iovs: iovs,
            _cmsgs: cmsgs,
            headers,
        }
    }

    fn messages(&self) -> usize {
        self.headers.len()
    }

    /// Datagrams carried by `n` messages from message `from` on.
    fn datagrams_in(&self, from: usize, n: usize) -> usize {
        self.spans[from..from + n].iter().map(|&(_, k)| k).sum()
    }

    fn is_gso(&self, message: usize) -> bool {
        self.spans[message].1 > 1
    }

    fn destination(&self, message: usize) -> SocketAddr {
        self.datagrams[self.order[self.spans[message].0]].2
    }

    /// One `sendmmsg` of the messages from `from` on.
    fn send(&mut self, fd: RawFd, from: usize, flags: libc::c_int) -> io::Result<usize> {
        let rest = &mut self.headers[from..];
        // SAFETY: `rest` are valid mmsghdr pointing at the datagrams and at this struct's
        // address, iovec and control vectors, all alive for the duration of the call.
        let n = unsafe { libc::sendmmsg(fd, rest.as_mut_ptr(), rest.len() as libc::c_uint, flags) };
        if n < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(n as usize)
        }
    }
}

/// Fill `c` with one `SOL_UDP`/`UDP_SEGMENT` control message of segment size `size`.
fn segment_cmsg(c: &mut SegmentCmsg, size: u16) {
    // SAFETY: a msghdr whose control buffer is `c` (32 bytes ≥ CMSG_SPACE(2), aligned), so
    // CMSG_FIRSTHDR is a valid, aligned cmsghdr inside it and CMSG_DATA has room for a u16.
    unsafe {
        let mut hdr: libc::msghdr = MaybeUninit::zeroed().assume_init();
        hdr.msg_control = c.0.as_mut_ptr().cast();
        hdr.msg_controllen = libc::CMSG_SPACE(2) as usize;
        let cm = libc::CMSG_FIRSTHDR(&hdr);
        (*cm).cmsg_level = libc::SOL_UDP;
        (*cm).cmsg_type = libc::UDP_SEGMENT;
        (*cm).cmsg_len = libc::CMSG_LEN(2) as usize;
        std::ptr::copy_nonoverlapping(size.to_ne_bytes().as_ptr(), libc::CMSG_DATA(cm), 2);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_batch_goes_out_and_comes_back_in_order() {
        let a = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let b = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let to = b.local_addr().unwrap();
        let datagrams: Vec<(Vec<u8>, SocketAddr)> = (0..40u8)
            .map(|i| (vec![i; 1 + usize::from(i)], to))
            .collect();
        assert_eq!(send_all(&a, &datagrams).await, 40);

        let mut buffers = RecvBuffers::new(16, 4096);
        let mut got = Vec::new();
        while got.len() < 40 {
            b.readable().await.unwrap();
            match buffers.recv(&b, 16, |bytes, source| got.push((bytes.to_vec(), source))) {
                Ok(n) => assert!(n <= 16),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => panic!("{e}"),
            }
        }
        let from = a.local_addr().unwrap();
        for (i, (bytes, source)) in got.iter().enumerate() {
            assert_eq!(*bytes, vec![i as u8; 1 + i]);
            assert_eq!(*source, from);
        }
        // Nothing left: WouldBlock, not a zero-length read.
        let err = buffers
            .recv(&b, 16, |_, _| panic!("no datagram"))
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
    }

    #[tokio::test]
    async fn equal_replies_to_one_address_go_out_as_gso_runs_and_arrive_one_by_one() {
        let a = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let b = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let c = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let (to_b, to_c) = (b.local_addr().unwrap(), c.local_addr().unwrap());
        // Interleaved: 150 × 20 bytes and 30 × 38 bytes to b, 50 × 20 bytes to c; each
        // datagram names itself in its first two bytes.
        let mut datagrams: Vec<(Vec<u8>, SocketAddr)> = Vec::new();
        for i in 0..230u16 {
            let (len, to) = match i % 23 {
                0..=14 => (20, to_b),
                15..=17 => (38, to_b),
                _ => (20, to_c),
            };
            let mut bytes = vec![0xA5; len];
            bytes[..2].copy_from_slice(&i.to_be_bytes());
            datagrams.push((bytes, to));
        }
        let runs = Outgoing::new(&datagrams, true);
        // b/20: 64 + 64 + 22; b/38: 30; c/20: 50.
        assert_eq!(runs.messages(), 5);
        assert_eq!(Outgoing::new(&datagrams, false).messages(), 230);
        // Large datagrams are never grouped.
        let large = vec![(vec![0; 1400], to_b), (vec![1; 1400], to_b)];
        assert_eq!(Outgoing::new(&large, true).messages(), 2);
        assert_eq!(send_all(&a, &datagrams).await, 230);
        assert!(
            gso_on(),
            "the kernel refused UDP_SEGMENT (Linux ≥ 4.18 has it)"
        );

        let mut got = Vec::new();
        let mut buffers = RecvBuffers::new(64, 4096);
        for (socket, expected) in [(&b, 180), (&c, 50)] {
            let mut n = 0;
            while n < expected {
                socket.readable().await.unwrap();
                match buffers.recv(socket, 64, |bytes, _| {
                    got.push((bytes.to_vec(), socket.local_addr().unwrap()))
                }) {
                    Ok(k) => n += k,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) => panic!("{e}"),
                }
            }
        }
        got.sort();
        let mut sent = datagrams.clone();
        sent.sort();
        assert_eq!(got, sent);
    }

    #[tokio::test]
    async fn ipv6_sources_are_reported() {
        let Ok(a) = UdpSocket::bind("[::1]:0").await else {
            return; // no IPv6 loopback on this machine
        };
        let b = UdpSocket::bind("[::1]:0").await.unwrap();
        let to = b.local_addr().unwrap();
        assert_eq!(send_all(&a, &[(b"hello".to_vec(), to)]).await, 1);
        let mut buffers = RecvBuffers::new(4, 64);
        let mut got = Vec::new();
        while got.is_empty() {
            b.readable().await.unwrap();
            let _ = buffers.recv(&b, 4, |bytes, source| got.push((bytes.to_vec(), source)));
        }
        assert_eq!(got, vec![(b"hello".to_vec(), a.local_addr().unwrap())]);
    }

    #[test]
    fn blocking_variants_wait_for_the_first_and_take_the_rest() {
        let a = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let b = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        b.set_read_timeout(Some(std::time::Duration::from_millis(50)))
            .unwrap();
        let to = b.local_addr().unwrap();
        let mut buffers = RecvBuffers::new(32, 4096);
        // Nothing there: the receive timeout ends the wait.
        let err = buffers.recv_wait(&b, 32).unwrap_err();
        assert!(matches!(
            err.kind(),
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
        ));
        let datagrams: Vec<(Vec<u8>, SocketAddr)> = (0..20u8)
            .map(|i| (vec![i; 3 + usize::from(i)], to))
            .collect();
        assert_eq!(send_all_wait(&a, &datagrams), 20);
        let mut got = Vec::new();
        while got.len() < 20 {
            let n = buffers.recv_wait(&b, 32).unwrap();
            assert!(n >= 1);
            got.extend(
                buffers
                    .received(n)
                    .map(|(bytes, source)| (bytes.to_vec(), source)),
            );
        }
        let from = a.local_addr().unwrap();
        for (i, (bytes, source)) in got.iter().enumerate() {
            assert_eq!(*bytes, vec![i as u8; 3 + i]);
            assert_eq!(*source, from);
        }
    }
}
