//! The NTP datagram path: one blocking worker thread per core, each with its
//! own `SO_REUSEPORT` socket on the same address, so the kernel spreads
//! clients over the workers and no lock is shared on the receive path.
//!
//! Each worker receives up to [`BATCH`] datagrams per `recvmmsg` call (with
//! `MSG_WAITFORONE`, so a lone request is not delayed), stamps each with the
//! kernel's receive time (`SO_TIMESTAMPNS`), hands it to the
//! [`DatagramHandler`], and sends each reply with its own `sendmsg` as soon
//! as it is written. Buffers are allocated once per worker: nothing is
//! allocated per packet here. Each socket asks for a [`RECEIVE_BUFFER`] of
//! 4 MiB, so that bursts wait instead of being dropped (the wait is between
//! the two server stamps, which clients subtract); the start-up log says what
//! the kernel granted, and warns when `net.core.rmem_max` cut it short.
//!
//! **Why replies are not batched.** A reply's transmit timestamp (T3) is
//! read while the reply is written; the client takes the time between T3 and
//! the reply's arrival as path delay, and its offset moves by half of any
//! part of that time the reply actually spent waiting in the server. Queueing
//! before T2 costs clients nothing (T2 is the kernel's arrival stamp and the
//! client subtracts T3 − T2), but waiting after T3 does. Replies collected
//! for one `sendmmsg` waited for the handling of the rest of the batch and
//! then for the kernel to send the replies ahead of them: with full batches
//! of NTS requests that was tens of microseconds, and milliseconds when the
//! worker was preempted in between (measured with `ntp-perf`'s reply lag,
//! docs/PERFORMANCE.md). One `sendmsg` per reply keeps the gap at the
//! kernel's send path and costs one system-call entry per reply; the receive
//! side stays batched, where waiting costs nothing.
//!
//! Workers poll a stop flag every [`STOP_POLL`]; [`UdpServer::shutdown`]
//! sets it and joins them.

use std::io;
use std::io::{IoSlice, IoSliceMut};
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use nix::errno::Errno;
use nix::sys::socket::{
    self, ControlMessageOwned, MsgFlags, MultiHeaders, SockaddrStorage, sockopt,
};
use ntp_proto::{NtpTimestamp, UnixTime};
use socket2::{Domain, Protocol, Socket, Type};

/// Datagrams per `recvmmsg` call.
pub const BATCH: usize = 32;
/// Largest datagram accepted; NTS requests stay under 1280 bytes.
pub const MAX_DATAGRAM: usize = 2048;
/// How often an idle worker checks whether it should stop.
pub const STOP_POLL: Duration = Duration::from_millis(200);
/// Receive buffer asked for on each worker's socket. A busy worker, or one
/// the host does not schedule for a few milliseconds, finds the requests
/// that arrived meanwhile queued rather than dropped; their wait lies
/// between the kernel's receive stamp and the transmit stamp, so clients
/// subtract it. At 150,000 requests a second this holds tens of
/// milliseconds of traffic, where a stock 208 KiB buffer holds about one
/// (docs/PERFORMANCE.md, "The same receive buffer for both").
pub const RECEIVE_BUFFER: usize = 4 << 20;

/// What the workers call for every datagram.
pub trait DatagramHandler: Send + Sync + 'static {
    /// Handles one datagram from `from`, received at `receive`. Writes the
    /// reply into `out` (cleared by the caller) and returns whether to send it.
    fn handle(
        &self,
        from: SocketAddr,
        datagram: &[u8],
        receive: NtpTimestamp,
        out: &mut Vec<u8>,
    ) -> bool;
}

/// Running UDP workers.
#[derive(Debug)]
pub struct UdpServer {
    local_addr: SocketAddr,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl UdpServer {
    /// Binds `workers` sockets to `listen` (port 0 picks one port for all)
    /// and starts a thread for each.
    ///
    /// # Errors
    /// Socket creation or bind errors (e.g. a privileged port without the
    /// capability, or the address in use).
    pub fn spawn(
        listen: SocketAddr,
        workers: usize,
        handler: Arc<dyn DatagramHandler>,
    ) -> io::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let first = bind(listen)?;
        let local_addr = first
            .local_addr()?
            .as_socket()
            .ok_or_else(|| io::Error::other("bound socket has no inet address"))?;
        let mut sockets = vec![first];
        for _ in 1..workers.max(1) {
            sockets.push(bind(local_addr)?);
        }
        let buffer = sockets
            .iter()
            .map(|s| s.recv_buffer_size().unwrap_or(0))
            .min()
            .unwrap_or(0);
        // Linux reports twice the size asked for (half of it is kept for
        // its own bookkeeping).
        let expected = if cfg!(any(target_os = "linux", target_os = "android")) {
            2 * RECEIVE_BUFFER
        } else {
            RECEIVE_BUFFER
        };
        if buffer < expected {
            tracing::warn!(
                bytes = buffer,
                expected,
                "UDP receive buffer smaller than asked for: bursts beyond it are dropped; \
                 raise the sysctl net.core.rmem_max to at least {RECEIVE_BUFFER} \
                 (or start ntp-server with CAP_NET_ADMIN)"
            );
        }
        let threads = sockets
            .into_iter()
            .enumerate()
            .map(|(i, socket)| {
                let (stop, handler) = (stop.clone(), handler.clone());
                std::thread::Builder::new()
                    .name(format!("ntp-udp-{i}"))
                    .spawn(move || worker(socket, &*handler, &stop))
            })
            .collect::<io::Result<Vec<_>>>()?;
        tracing::info!(%local_addr, workers = threads.len(), receive_buffer = buffer, "serving NTP");
        Ok(Self {
            local_addr,
            stop,
            threads,
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops the workers and waits for them (at most about [`STOP_POLL`]).
    pub fn shutdown(self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads {
            let _ = t.join();
        }
    }
}

fn bind(addr: SocketAddr) -> io::Result<Socket> {
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    socket.set_reuse_port(true)?;
    socket.set_read_timeout(Some(STOP_POLL))?;
    size_receive_buffer(&socket);
    let _ = socket.set_send_buffer_size(4 << 20);
    socket.bind(&addr.into())?;
    if let Err(e) = socket::setsockopt(&socket, sockopt::ReceiveTimestampns, &true) {
        tracing::warn!("SO_TIMESTAMPNS unavailable ({e}); receive times come from user space");
    }
    Ok(socket)
}

/// Asks for [`RECEIVE_BUFFER`]. `SO_RCVBUF` is capped by
/// `net.core.rmem_max` (208 KiB on a stock kernel, so the socket would get
/// 416 KiB); `SO_RCVBUFFORCE` is not, and a server started as root to bind
/// port 123 may use it (it needs `CAP_NET_ADMIN`, and the socket is made
/// before privileges are dropped).
fn size_receive_buffer(socket: &Socket) {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    if socket::setsockopt(socket, sockopt::RcvBufForce, &RECEIVE_BUFFER).is_ok() {
        return;
    }
    if let Err(e) = socket.set_recv_buffer_size(RECEIVE_BUFFER) {
        tracing::debug!("SO_RCVBUF: {e}");
    }
}

/// Per-datagram facts kept between receive and send.
#[derive(Clone, Copy)]
struct Meta {
    len: usize,
    from: Option<SocketAddr>,
    receive: NtpTimestamp,
}

const NO_META: Meta = Meta {
    len: 0,
    from: None,
    receive: NtpTimestamp::ZERO,
};

fn worker(socket: Socket, handler: &dyn DatagramHandler, stop: &AtomicBool) {
    let fd = socket.as_raw_fd();
    let mut inbox: Box<[[u8; MAX_DATAGRAM]; BATCH]> = Box::new([[0u8; MAX_DATAGRAM]; BATCH]);
    let mut out: Vec<u8> = Vec::with_capacity(MAX_DATAGRAM);
    let mut recv_headers = MultiHeaders::<SockaddrStorage>::preallocate(
        BATCH,
        Some(nix::cmsg_space!(nix::sys::time::TimeSpec)),
    );
    let mut metas = [NO_META; BATCH];

    while !stop.load(Ordering::Relaxed) {
        // Receive a batch.
        let received = {
            let mut iovs: [[IoSliceMut<'_>; 1]; BATCH] =
                inbox.each_mut().map(|b| [IoSliceMut::new(b)]);
            match socket::recvmmsg(
                fd,
                &mut recv_headers,
                iovs.iter_mut(),
                MsgFlags::MSG_WAITFORONE,
                None,
            ) {
                Ok(results) => {
                    let fallback = now();
                    let mut n = 0;
                    for (meta, msg) in metas.iter_mut().zip(results) {
                        let mut receive = fallback;
                        if let Ok(cmsgs) = msg.cmsgs() {
                            for c in cmsgs {
                                if let ControlMessageOwned::ScmTimestampns(ts) = c {
                                    receive =
                                        timespec(ts.tv_sec(), ts.tv_nsec()).unwrap_or(fallback);
                                }
                            }
                        }
                        *meta = Meta {
                            len: msg.bytes,
                            from: msg.address.and_then(|a: SockaddrStorage| to_std(&a)),
                            receive,
                        };
                        n += 1;
                    }
                    n
                }
                Err(Errno::EAGAIN | Errno::EINTR) => continue,
                Err(e) => {
                    tracing::warn!("recvmmsg: {e}");
                    continue;
                }
            }
        };

        // Handle each datagram and send its reply at once. The reply's
        // transmit timestamp is read as the reply is written, so the time
        // between that stamp and the datagram leaving lengthens the return
        // path the client measures and shifts its offset by half: sending
        // each reply right away keeps that gap to one system call (module
        // docs), where a `sendmmsg` after the whole batch held the first
        // reply back for the handling of every other datagram in the batch.
        for (meta, datagram) in metas.iter().zip(inbox.iter()).take(received) {
            out.clear();
            let (Some(from), Some(bytes)) = (meta.from, datagram.get(..meta.len)) else {
                continue;
            };
            if handler.handle(from, bytes, meta.receive, &mut out) {
                let to = SockaddrStorage::from(from);
                if let Err(e) =
                    socket::sendmsg(fd, &[IoSlice::new(&out)], &[], MsgFlags::empty(), Some(&to))
                {
                    tracing::debug!("sendmsg to {from}: {e}");
                }
            }
        }
    }
}

fn to_std(addr: &SockaddrStorage) -> Option<SocketAddr> {
    if let Some(v4) = addr.as_sockaddr_in() {
        return Some(SocketAddr::V4((*v4).into()));
    }
    addr.as_sockaddr_in6()
        .map(|v6| SocketAddr::V6((*v6).into()))
}

/// The system clock as an NTP timestamp (read only).
pub fn now() -> NtpTimestamp {
    NtpTimestamp::from_unix(UnixTime::from_system_time(SystemTime::now()))
}

fn timespec(seconds: i64, nanos: i64) -> Option<NtpTimestamp> {
    let since = Duration::new(u64::try_from(seconds).ok()?, u32::try_from(nanos).ok()?);
    Some(NtpTimestamp::from_unix(UnixTime::from_system_time(
        UNIX_EPOCH.checked_add(since)?,
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::UdpSocket;

    /// Echoes with a prefix byte, so the test sees the handler ran.
    struct Echo;

    impl DatagramHandler for Echo {
        fn handle(
            &self,
            _from: SocketAddr,
            datagram: &[u8],
            receive: NtpTimestamp,
            out: &mut Vec<u8>,
        ) -> bool {
            if datagram == b"drop" {
                return false;
            }
            out.push(0xAA);
            out.extend_from_slice(datagram);
            out.extend_from_slice(&receive.to_bits().to_be_bytes());
            true
        }
    }

    #[test]
    fn receive_buffer_is_the_size_asked_for_or_the_kernel_cap() {
        let socket = bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let got = socket.recv_buffer_size().unwrap();
        let rmem_max: usize = std::fs::read_to_string("/proc/sys/net/core/rmem_max")
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        // With CAP_NET_ADMIN (bit 12 of the effective set) the size is
        // forced past rmem_max; without, it is capped there. Linux reports
        // twice the size set.
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let effective = status
            .lines()
            .find_map(|l| l.strip_prefix("CapEff:"))
            .map(|hex| u64::from_str_radix(hex.trim(), 16).unwrap())
            .unwrap();
        let expected = if effective & (1 << 12) != 0 {
            2 * RECEIVE_BUFFER
        } else {
            2 * RECEIVE_BUFFER.min(rmem_max)
        };
        assert_eq!(got, expected, "rmem_max {rmem_max}");
    }

    #[test]
    fn workers_answer_many_clients_and_stop() {
        let server = UdpServer::spawn("127.0.0.1:0".parse().unwrap(), 2, Arc::new(Echo)).unwrap();
        let addr = server.local_addr();
        let clients: Vec<UdpSocket> = (0..8)
            .map(|_| UdpSocket::bind("127.0.0.1:0").unwrap())
            .collect();
        for (i, c) in clients.iter().enumerate() {
            c.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
            // A burst from each client exercises batching.
            for j in 0..10u8 {
                c.send_to(&[i as u8, j], addr).unwrap();
            }
            c.send_to(b"drop", addr).unwrap();
        }
        let before = now();
        for (i, c) in clients.iter().enumerate() {
            let mut got = Vec::new();
            let mut buf = [0u8; 64];
            for _ in 0..10 {
                let n = c.recv(&mut buf).unwrap();
                assert_eq!(n, 1 + 2 + 8);
                assert_eq!(buf[0], 0xAA);
                assert_eq!(buf[1], i as u8);
                got.push(buf[2]);
                // Kernel receive stamps are recent.
                let stamp =
                    NtpTimestamp::from_bits(u64::from_be_bytes(buf[3..11].try_into().unwrap()));
                assert!((before - stamp).to_seconds_f64().abs() < 5.0);
            }
            got.sort_unstable();
            assert_eq!(got, (0..10).collect::<Vec<u8>>());
            // "drop" got no reply.
            c.set_read_timeout(Some(Duration::from_millis(100)))
                .unwrap();
            assert!(c.recv(&mut buf).is_err());
        }
        server.shutdown();
    }
}
