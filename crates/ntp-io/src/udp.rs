//! A connected UDP socket that reports when each datagram arrived, from the
//! kernel where it can (`SO_TIMESTAMPNS` on Linux), from the clock right after
//! `recvmsg` otherwise.
//!
//! The kernel stamps a datagram when the network stack receives it, before
//! the process is scheduled, so T4 does not include scheduling delay: on a
//! loaded machine that is the difference between microseconds and
//! milliseconds of error.
//!
//! One kernel behaviour to know: Linux turns receive timestamping on for the
//! whole host lazily. The first socket that asks for it schedules the switch
//! on a work queue, and a datagram that arrives before the switch has run
//! carries no stamp; `recvmsg` then stamps it with the time of the read
//! (`__sock_recv_timestamp` in `net/socket.c`, "race occurred between
//! timestamp enabling and packet receiving"). So on a host where no other
//! socket has timestamps on (no chronyd, no ntpd), the first replies a fresh
//! process receives may be stamped when they are read, as a user-space stamp
//! would be; later ones are stamped on arrival. The stamp is never wrong by
//! more than the time the datagram waited in the queue.

use std::io;
use std::io::IoSliceMut;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use nix::sys::socket::{self, ControlMessageOwned, MsgFlags, sockopt};
use ntp_proto::{NtpTimestamp, UnixTime};
use tokio::io::Interest;
use tokio::net::UdpSocket;

/// How a receive time was taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimestampSource {
    /// The kernel's `SO_TIMESTAMPNS` stamp.
    Kernel,
    /// The system clock, read right after the datagram was dequeued.
    User,
}

/// A datagram and when it arrived.
#[derive(Clone, Copy, Debug)]
pub struct Received {
    /// Bytes received (the datagram is in the caller's buffer).
    pub len: usize,
    /// Arrival time as an NTP timestamp (T4 for a client).
    pub timestamp: NtpTimestamp,
    /// Where the timestamp came from.
    pub source: TimestampSource,
}

/// The current system time as an NTP timestamp. Reading the clock is all
/// this does; nothing in this crate sets it.
pub fn now() -> NtpTimestamp {
    NtpTimestamp::from_unix(UnixTime::from_system_time(SystemTime::now()))
}

/// A UDP socket connected to one server.
#[derive(Debug)]
pub struct TimestampedSocket {
    socket: UdpSocket,
    kernel_timestamps: bool,
}

impl TimestampedSocket {
    /// Binds an ephemeral port (random, as RFC 9109 asks) of the right
    /// family and connects it to `server`, asking the kernel for receive
    /// timestamps.
    ///
    /// # Errors
    /// The socket calls' errors.
    pub async fn connect(server: SocketAddr) -> io::Result<Self> {
        let local: SocketAddr = if server.is_ipv4() {
            (std::net::Ipv4Addr::UNSPECIFIED, 0).into()
        } else {
            (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
        };
        let socket = UdpSocket::bind(local).await?;
        socket.connect(server).await?;
        let kernel_timestamps =
            socket::setsockopt(&socket, sockopt::ReceiveTimestampns, &true).is_ok();
        if !kernel_timestamps {
            tracing::debug!("SO_TIMESTAMPNS unavailable; receive times come from user space");
        }
        Ok(Self {
            socket,
            kernel_timestamps,
        })
    }

    /// The server this socket talks to.
    ///
    /// # Errors
    /// If the socket is not connected.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.socket.peer_addr()
    }

    /// Sends one datagram.
    ///
    /// # Errors
    /// The send error.
    pub async fn send(&self, bytes: &[u8]) -> io::Result<()> {
        let sent = self.socket.send(bytes).await?;
        if sent != bytes.len() {
            return Err(io::Error::other(format!(
                "short send: {sent} of {} bytes",
                bytes.len()
            )));
        }
        Ok(())
    }

    /// Waits for the next datagram (from the connected peer only; the kernel
    /// filters the rest).
    ///
    /// # Errors
    /// The receive error, e.g. `ConnectionRefused` after an ICMP port
    /// unreachable.
    pub async fn recv(&self, buf: &mut [u8]) -> io::Result<Received> {
        let fd = self.socket.as_raw_fd();
        let kernel = self.kernel_timestamps;
        self.socket
            // ERROR too: an ICMP port unreachable sets a socket error without
            // making the socket readable, and must end the wait at once.
            .async_io(Interest::READABLE | Interest::ERROR, || {
                let mut iov = [IoSliceMut::new(buf)];
                let mut cmsg = nix::cmsg_space!(nix::sys::time::TimeSpec);
                let msg = socket::recvmsg::<()>(
                    fd,
                    &mut iov,
                    kernel.then_some(&mut cmsg),
                    MsgFlags::empty(),
                )
                .map_err(io::Error::from)?;
                let user_time = now();
                let mut stamp = None;
                if let Ok(cmsgs) = msg.cmsgs() {
                    for c in cmsgs {
                        if let ControlMessageOwned::ScmTimestampns(ts) = c {
                            stamp = timespec_to_ntp(ts.tv_sec(), ts.tv_nsec());
                        }
                    }
                }
                Ok(match stamp {
                    Some(timestamp) => Received {
                        len: msg.bytes,
                        timestamp,
                        source: TimestampSource::Kernel,
                    },
                    None => Received {
                        len: msg.bytes,
                        timestamp: user_time,
                        source: TimestampSource::User,
                    },
                })
            })
            .await
    }
}

fn timespec_to_ntp(seconds: i64, nanos: i64) -> Option<NtpTimestamp> {
    let nanos = u32::try_from(nanos).ok()?;
    let since_epoch = Duration::new(u64::try_from(seconds).ok()?, nanos);
    let time = UNIX_EPOCH.checked_add(since_epoch)?;
    Some(NtpTimestamp::from_unix(UnixTime::from_system_time(time)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn receive_times_are_kernel_stamped_and_current() {
        let server = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let client = TimestampedSocket::connect(server.local_addr().unwrap())
            .await
            .unwrap();
        let mut buf = [0u8; 16];
        // On a host where nothing else has receive timestamps on, the
        // kernel switches them on lazily (see the module docs): the first
        // replies may be stamped at read time. Every reply must carry a
        // current time; within a bounded number of tries one must be
        // stamped on arrival, well before it is read.
        let mut stamped_on_arrival = None;
        for attempt in 1..=50 {
            client.send(b"ping").await.unwrap();
            let (n, from) = server.recv_from(&mut buf).await.unwrap();
            let before_send = now();
            server.send_to(&buf[..n], from).await.unwrap();
            tokio::time::sleep(Duration::from_millis(20)).await;
            let before_read = now();
            let received = client.recv(&mut buf).await.unwrap();
            let after_read = now();
            assert_eq!(received.len, 4);
            assert_eq!(&buf[..4], b"ping");
            // Linux always offers SO_TIMESTAMPNS.
            assert_eq!(received.source, TimestampSource::Kernel);
            assert!(
                !received.timestamp.is_before(before_send),
                "stamp before the reply was sent"
            );
            assert!(
                !after_read.is_before(received.timestamp),
                "stamp after the read returned"
            );
            // Stamped on arrival: before we read it 20 ms later (a stamp
            // taken by the read would come after `before_read`).
            if received.timestamp.is_before(before_read) {
                stamped_on_arrival = Some(attempt);
                break;
            }
        }
        assert!(
            stamped_on_arrival.is_some(),
            "no reply in 50 was stamped on arrival"
        );
    }

    #[tokio::test]
    async fn refused_port_is_reported() {
        // A port nobody listens on: bind, note it, close.
        let addr = UdpSocket::bind("127.0.0.1:0")
            .await
            .unwrap()
            .local_addr()
            .unwrap();
        let client = TimestampedSocket::connect(addr).await.unwrap();
        client.send(b"x").await.unwrap();
        let mut buf = [0u8; 16];
        let err = tokio::time::timeout(Duration::from_secs(2), client.recv(&mut buf))
            .await
            .unwrap()
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::ConnectionRefused);
    }
}
