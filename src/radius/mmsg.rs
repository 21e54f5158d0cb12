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

/// Send every `(bytes, destination)` with as few `sendmmsg` calls as the socket allows,
/// waiting while its buffer is full. Returns how many were sent; a datagram the kernel
/// refuses (other than for a full buffer) is logged and skipped.
pub(crate) async fn send_all(socket: &UdpSocket, datagrams: &[(Vec<u8>, SocketAddr)]) -> usize {
    let mut out = Outgoing::new(datagrams);
    let fd = socket.as_raw_fd();
    let mut progress = Progress::default();
    while progress.done < datagrams.len() {
        let from = progress.done;
        let r = socket.try_io(Interest::WRITABLE, || {
            out.send(fd, from, libc::MSG_DONTWAIT)
        });
        if progress.account(r, datagrams) {
            if let Err(e) = socket.writable().await {
                tracing::warn!(error = %e, "radius: replies not sent");
                break;
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
    let mut out = Outgoing::new(datagrams);
    let fd = socket.as_raw_fd();
    let mut progress = Progress::default();
    while progress.done < datagrams.len() {
        let r = out.send(fd, progress.done, 0);
        progress.account(r, datagrams);
    }
    progress.sent
}

/// How far a [`send_all`] got.
#[derive(Default)]
struct Progress {
    /// Datagrams dealt with (sent or skipped).
    done: usize,
    sent: usize,
}

impl Progress {
    /// Count one `sendmmsg` result; true when the socket's buffer was full (nothing done).
    fn account(&mut self, r: io::Result<usize>, datagrams: &[(Vec<u8>, SocketAddr)]) -> bool {
        match r {
            Ok(n) => {
                self.done += n;
                self.sent += n;
                false
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => true,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => false,
            Err(e) => {
                tracing::warn!(to = %datagrams[self.done].1, error = %e, "radius: reply not sent");
                self.done += 1;
                false
            }
        }
    }
}

/// The `sendmmsg` arguments for a batch of datagrams.
struct Outgoing {
    /// Kept alive for the pointers in `headers`.
    _addrs: Vec<SockAddr>,
    _iovs: Vec<libc::iovec>,
    headers: Vec<libc::mmsghdr>,
}

// The raw pointers only point into the datagrams (borrowed for the whole `send_all`) and the
// struct's own vectors; they are used by one task at a time.
unsafe impl Send for Outgoing {}

impl Outgoing {
    fn new(datagrams: &[(Vec<u8>, SocketAddr)]) -> Self {
        let addrs: Vec<SockAddr> = datagrams
            .iter()
            .map(|(_, to)| SockAddr::from(*to))
            .collect();
        let mut iovs: Vec<libc::iovec> = datagrams
            .iter()
            .map(|(bytes, _)| libc::iovec {
                iov_base: bytes.as_ptr() as *mut libc::c_void,
                iov_len: bytes.len(),
            })
            .collect();
        let headers = iovs
            .iter_mut()
            .zip(&addrs)
            .map(|(iov, addr)| {
                // SAFETY: msghdr is plain old data; the fields we need are set below.
                let mut hdr: libc::msghdr = unsafe { MaybeUninit::zeroed().assume_init() };
                hdr.msg_name = addr.as_ptr() as *mut libc::c_void;
                hdr.msg_namelen = addr.len();
                hdr.msg_iov = iov;
                hdr.msg_iovlen = 1;
                libc::mmsghdr {
                    msg_hdr: hdr,
                    msg_len: 0,
                }
            })
            .collect();
        Outgoing {
            _addrs: addrs,
            _iovs: iovs,
            headers,
        }
    }

    /// One `sendmmsg` of the datagrams from `from` on.
    fn send(&mut self, fd: RawFd, from: usize, flags: libc::c_int) -> io::Result<usize> {
        let rest = &mut self.headers[from..];
        // SAFETY: `rest` are valid mmsghdr pointing at the datagrams and at this struct's
        // address and iovec vectors, all alive for the duration of the call.
        let n = unsafe { libc::sendmmsg(fd, rest.as_mut_ptr(), rest.len() as libc::c_uint, flags) };
        if n < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(n as usize)
        }
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
