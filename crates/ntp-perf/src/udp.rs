//! The UDP engine for the plain and NTS modes: one thread, batched syscalls.
//!
//! Every tick ([`TICK`]) the loop
//! 1. takes the requests the [`Pacer`] says are due (bounded by free in-flight
//!    slots), builds them and sends them with one `sendmmsg` of up to
//!    [`BATCH`] datagrams per client socket, round robin over the sockets;
//! 2. drains every socket with `recvmmsg(MSG_DONTWAIT)`, [`BATCH`] at a time,
//!    and matches each reply to its slot;
//! 3. every [`EXPIRE_EVERY`], frees slots older than the reply timeout;
//! 4. sleeps until the next tick unless a receive batch came back full; at an
//!    unlimited rate it waits in `poll(2)` instead, so it sends again as soon
//!    as replies free in-flight slots.
//!
//! Sleeping between receives does not distort latency: the receive time is the
//! kernel's `SO_TIMESTAMPNS` stamp, taken when the datagram arrived. The
//! socket buffers are enlarged so that a tick's worth of replies fits.

use std::io;
use std::io::{IoSlice, IoSliceMut};
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::{AsRawFd, RawFd};
use std::time::{Duration, Instant};

use nix::sys::socket::{
    self, ControlMessageOwned, MsgFlags, MultiHeaders, SockaddrStorage, sockopt,
};
use nix::sys::time::TimeSpec;
use nix::time::{ClockId, clock_gettime};
use ntp_proto::{Header, Mode as NtpMode, NtpTimestamp};
use nts_cookie::CookieJar;
use nts_cookie::jar::MAX_COOKIES;
use nts_cookie::packet::{ResponseError, UID_LEN, open_response, seal_request};
use rand::RngCore;

use crate::histogram::Histogram;
use crate::ke::KeClient;
use crate::pacer::{Pacer, Rate};
use crate::report::{Counts, CpuWindow, Report};
use crate::timing::{Sample, Timing};
use crate::{Config, Mode, PerfError, target};

/// Datagrams per `sendmmsg`/`recvmmsg` call.
pub const BATCH: usize = 32;
/// The pacing and receive period. Short enough that a burst at 150k/s (about
/// 40 requests) fits any server's default receive buffer; long enough that
/// the generator sleeps most of the time at moderate rates.
pub const TICK: Duration = Duration::from_micros(250);
/// How often timed-out requests are freed.
pub const EXPIRE_EVERY: Duration = Duration::from_millis(50);
/// Largest datagram read.
const MAX_DATAGRAM: usize = 2048;
/// NTS requests are kept under this size (PROTOCOL.md §3.7).
const NTS_MAX_REQUEST: usize = 1280;
/// NTS NAKs in a row after which a client runs the key exchange again.
const NAKS_BEFORE_REKEY: u32 = 16;
/// Requested socket buffer size (the kernel caps it at `rmem_max`/`wmem_max`
/// unless we may force it).
const SOCKET_BUFFER: usize = 4 << 20;

/// One NTS association.
struct Nts {
    jar: CookieJar,
    /// A cookie from the key exchange, sent again when the jar runs short.
    spare: Vec<u8>,
    naks_in_row: u32,
}

struct Client {
    socket: UdpSocket,
    outstanding: usize,
    nts: Option<Nts>,
}

#[derive(Clone, Copy)]
struct Slot {
    tx: u64,
    sent_ns: u64,
    client: u32,
    live: bool,
    uid: [u8; UID_LEN],
}

const FREE_SLOT: Slot = Slot {
    tx: 0,
    sent_ns: 0,
    client: 0,
    live: false,
    uid: [0; UID_LEN],
};

/// Outstanding requests; the slot index is in the low bits of the transmit
/// timestamp.
struct Slots {
    slots: Vec<Slot>,
    free: Vec<u32>,
    mask: u64,
}

impl Slots {
    fn new(inflight: usize) -> Self {
        let size = inflight.next_power_of_two();
        Self {
            slots: vec![FREE_SLOT; size],
            // Only `inflight` of them are handed out.
            free: (0..inflight as u32).rev().collect(),
            mask: size as u64 - 1,
        }
    }

    fn release(&mut self, index: u32) {
        if let Some(slot) = self.slots.get_mut(index as usize) {
            if slot.live {
                slot.live = false;
                self.free.push(index);
            }
        }
    }
}

/// Kernel-side state: buffers reused for every batch.
struct Io {
    out: Vec<Vec<u8>>,
    out_slot: [u32; BATCH],
    inbox: Box<[[u8; MAX_DATAGRAM]; BATCH]>,
    recv_headers: MultiHeaders<SockaddrStorage>,
    send_headers: MultiHeaders<SockaddrStorage>,
}

struct State {
    clients: Vec<Client>,
    slots: Slots,
    counts: Counts,
    latency: Histogram,
    timing: Timing,
    rng: rand::rngs::ThreadRng,
}

/// Runs the plain or NTS mode.
pub(crate) fn run(config: &Config) -> Result<Report, PerfError> {
    let nts = config.mode == Mode::Nts;
    // The guard runs before anything is sent, KE included.
    let probe_port = if nts {
        config.ke_port
    } else {
        config.port.unwrap_or(123)
    };
    let ke_addr = target::resolve(&config.host, probe_port, config.allow_remote)?;

    let mut counts = Counts::default();
    let mut ke = None;
    let mut sessions = Vec::new();
    let mut ntp_port = config.port.unwrap_or(ntp_io::DEFAULT_NTP_PORT);
    if nts {
        let client = KeClient::new(config)?;
        for _ in 0..config.clients {
            let exchange = client
                .exchange(&config.host, config.ke_port)
                .map_err(PerfError::KeyExchange)?;
            counts.key_exchanges += 1;
            if config.port.is_none() {
                ntp_port = exchange.ntp_server.port;
            }
            sessions.push(new_session(exchange.jar)?);
        }
        ke = Some(client);
    }
    let target = SocketAddr::new(ke_addr.ip(), ntp_port);

    let mut clients = Vec::with_capacity(config.clients);
    for i in 0..config.clients {
        clients.push(Client {
            socket: open_socket(target)?,
            outstanding: 0,
            nts: sessions.get_mut(i).and_then(Option::take),
        });
    }
    let mut state = State {
        clients,
        slots: Slots::new(config.inflight),
        counts,
        latency: Histogram::new(),
        timing: Timing::default(),
        rng: rand::rng(),
    };
    let mut io = Io {
        out: (0..BATCH)
            .map(|_| Vec::with_capacity(MAX_DATAGRAM))
            .collect(),
        out_slot: [0; BATCH],
        inbox: Box::new([[0; MAX_DATAGRAM]; BATCH]),
        recv_headers: MultiHeaders::preallocate(BATCH, Some(nix::cmsg_space!(TimeSpec))),
        send_headers: MultiHeaders::preallocate(BATCH, None),
    };

    let burst = match config.rate {
        Rate::PerSecond(r) => ((r * 0.01) as u64).max(4 * BATCH as u64),
        Rate::Unlimited => u64::MAX,
    };
    let mut pacer = Pacer::new(config.rate, burst);
    let timeout_ns = u64::try_from(config.reply_timeout.as_nanos()).unwrap_or(u64::MAX);

    let window = CpuWindow::start(config.server_pid);
    let start = window.at();
    let end = start + config.duration;
    let drain_end = end + config.reply_timeout;
    let mut next_expire = start + EXPIRE_EVERY;
    let mut last_send = start;
    let mut tick = start;

    loop {
        let now = Instant::now();
        let sending = now < end;
        if !sending && (state.slots.free.len() == config.inflight || now >= drain_end) {
            break;
        }
        if sending {
            let elapsed = now - start;
            // Send in batches: a full batch, or whatever is due once per tick.
            if pacer.due(elapsed) >= BATCH as u64 || now - last_send >= TICK {
                let room = state.slots.free.len() as u64;
                let n = pacer.take(elapsed, room);
                if n > 0 {
                    state.send(&mut io, n);
                    last_send = now;
                }
            }
        }
        let busy = state.receive(&mut io);
        if now >= next_expire {
            state.expire(realtime_ns().saturating_sub(timeout_ns));
            next_expire = now + EXPIRE_EVERY;
        }
        if let Some(ke) = &ke {
            state.rekey(ke, config);
        }
        if !busy && config.rate == Rate::Unlimited && sending {
            state.wait_for_replies(TICK);
        } else if !busy {
            tick += TICK;
            let now = Instant::now();
            if tick > now {
                std::thread::sleep(tick - now);
            } else {
                tick = now;
            }
        }
    }
    state.counts.schedule_skipped = pacer.skipped();
    Ok(Report::finish(
        config,
        target.to_string(),
        config.duration,
        state.counts,
        &state.latency,
        Some(&state.timing),
        window.finish(),
    ))
}

fn new_session(mut jar: CookieJar) -> Result<Option<Nts>, PerfError> {
    let spare = jar
        .take()
        .ok_or_else(|| PerfError::KeyExchange("the server sent no cookie".into()))?;
    // Give the cookie back: the spare is a copy.
    let _ = jar.store(spare.clone());
    Ok(Some(Nts {
        jar,
        spare,
        naks_in_row: 0,
    }))
}

fn open_socket(target: SocketAddr) -> io::Result<UdpSocket> {
    let local: SocketAddr = if target.is_ipv4() {
        (std::net::Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let socket = UdpSocket::bind(local)?;
    socket.connect(target)?;
    socket.set_nonblocking(true)?;
    if socket::setsockopt(&socket, sockopt::RcvBufForce, &SOCKET_BUFFER).is_err() {
        let _ = socket::setsockopt(&socket, sockopt::RcvBuf, &SOCKET_BUFFER);
    }
    if socket::setsockopt(&socket, sockopt::SndBufForce, &SOCKET_BUFFER).is_err() {
        let _ = socket::setsockopt(&socket, sockopt::SndBuf, &SOCKET_BUFFER);
    }
    // Without kernel stamps, latency falls back to the time we read the reply.
    let _ = socket::setsockopt(&socket, sockopt::ReceiveTimestampns, &true);
    Ok(socket)
}

/// `CLOCK_REALTIME` in nanoseconds: the clock `SO_TIMESTAMPNS` uses.
fn realtime_ns() -> u64 {
    clock_gettime(ClockId::CLOCK_REALTIME).map_or(0, |t| timespec_ns(t.tv_sec(), t.tv_nsec()))
}

fn timespec_ns(sec: i64, nsec: i64) -> u64 {
    u64::try_from(sec)
        .unwrap_or(0)
        .saturating_mul(1_000_000_000)
        .saturating_add(u64::try_from(nsec).unwrap_or(0))
}

impl State {
    /// Sends `n` requests, [`BATCH`] at a time, round robin over the clients.
    fn send(&mut self, io: &mut Io, mut n: u64) {
        let clients = self.clients.len();
        let mut cursor = (self.counts.sent as usize / BATCH) % clients.max(1);
        while n > 0 {
            let chunk = n.min(BATCH as u64) as usize;
            n -= chunk as u64;
            self.send_batch(io, cursor, chunk);
            cursor = (cursor + 1) % clients;
        }
    }

    fn send_batch(&mut self, io: &mut Io, client_index: usize, n: usize) {
        let Some(client) = self.clients.get_mut(client_index) else {
            return;
        };
        let mut built = 0;
        for (out, out_slot) in io.out.iter_mut().zip(io.out_slot.iter_mut()).take(n) {
            let Some(index) = self.slots.free.pop() else {
                break;
            };
            let tx = (self.rng.next_u64() & !self.slots.mask) | u64::from(index);
            let header = Header::client_request(0, tx);
            let mut uid = [0; UID_LEN];
            match &mut client.nts {
                None => {
                    out.clear();
                    out.extend_from_slice(&header.to_bytes());
                }
                Some(nts) => {
                    // Keep the jar full: one cookie in, one out (crate docs).
                    while nts.jar.len() < MAX_COOKIES && !nts.spare.is_empty() {
                        if nts.jar.store(nts.spare.clone()).is_err() {
                            break;
                        }
                        self.counts.cookies_reused += 1;
                    }
                    match seal_request(&header, &mut nts.jar, NTS_MAX_REQUEST, &mut self.rng) {
                        Ok(request) => {
                            *out = request.bytes;
                            uid = request.uid;
                        }
                        Err(e) => {
                            *self.counts.errors.entry(format!("seal: {e}")).or_default() += 1;
                            self.slots.free.push(index);
                            break;
                        }
                    }
                }
            }
            if let Some(slot) = self.slots.slots.get_mut(index as usize) {
                *slot = Slot {
                    tx,
                    sent_ns: 0,
                    client: client_index as u32,
                    live: true,
                    uid,
                };
            }
            *out_slot = index;
            built += 1;
        }
        if built == 0 {
            return;
        }

        let sent_ns = realtime_ns();
        for &index in io.out_slot.iter().take(built) {
            if let Some(slot) = self.slots.slots.get_mut(index as usize) {
                slot.sent_ns = sent_ns;
            }
        }
        let mut iovs: [[IoSlice<'_>; 1]; BATCH] = std::array::from_fn(|_| [IoSlice::new(&[])]);
        for (iov, out) in iovs.iter_mut().zip(io.out.iter()).take(built) {
            *iov = [IoSlice::new(out)];
        }
        let none: [Option<SockaddrStorage>; BATCH] = [None; BATCH];
        let fd = client.socket.as_raw_fd();
        let sent = match socket::sendmmsg(
            fd,
            &mut io.send_headers,
            iovs.get(..built).unwrap_or_default(),
            none,
            [],
            MsgFlags::MSG_DONTWAIT,
        ) {
            Ok(results) => results.count(),
            Err(_) => 0,
        };
        client.outstanding += sent;
        self.counts.sent += sent as u64;
        // The kernel refused the rest (full buffer, ICMP error): free them.
        for &index in io.out_slot.iter().take(built).skip(sent) {
            self.slots.release(index);
            self.counts.send_errors += 1;
        }
    }

    /// Waits until some socket is readable, at most `limit`.
    fn wait_for_replies(&self, limit: Duration) {
        use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
        use std::os::fd::AsFd;
        let mut fds: Vec<PollFd<'_>> = self
            .clients
            .iter()
            .map(|c| PollFd::new(c.socket.as_fd(), PollFlags::POLLIN))
            .collect();
        let ms = u16::try_from(limit.as_millis().max(1)).unwrap_or(u16::MAX);
        let _ = poll(&mut fds, PollTimeout::from(ms));
    }

    /// Drains every socket; true if some socket may still hold more.
    fn receive(&mut self, io: &mut Io) -> bool {
        let mut more = false;
        for client_index in 0..self.clients.len() {
            let Some(fd) = self.clients.get(client_index).map(|c| c.socket.as_raw_fd()) else {
                continue;
            };
            // A few rounds per socket, then let the others and the sender run.
            for _ in 0..4 {
                let got = self.receive_batch(io, fd, client_index);
                if got < BATCH {
                    break;
                }
                more = true;
            }
        }
        more
    }

    fn receive_batch(&mut self, io: &mut Io, fd: RawFd, client_index: usize) -> usize {
        let mut metas = [(0usize, 0u64); BATCH];
        let received = {
            let mut iovs: [[IoSliceMut<'_>; 1]; BATCH] =
                io.inbox.each_mut().map(|b| [IoSliceMut::new(b)]);
            match socket::recvmmsg(
                fd,
                &mut io.recv_headers,
                iovs.iter_mut(),
                MsgFlags::MSG_DONTWAIT,
                None,
            ) {
                Ok(results) => {
                    let mut fallback = None;
                    let mut n = 0;
                    for (meta, msg) in metas.iter_mut().zip(results) {
                        let mut rx = None;
                        if let Ok(cmsgs) = msg.cmsgs() {
                            for c in cmsgs {
                                if let ControlMessageOwned::ScmTimestampns(ts) = c {
                                    rx = Some(timespec_ns(ts.tv_sec(), ts.tv_nsec()));
                                }
                            }
                        }
                        let rx = rx.unwrap_or_else(|| *fallback.get_or_insert_with(realtime_ns));
                        *meta = (msg.bytes, rx);
                        n += 1;
                    }
                    n
                }
                // EAGAIN: empty. ECONNREFUSED: an ICMP error from an earlier send.
                Err(_) => return 0,
            }
        };
        for (&(len, rx_ns), datagram) in metas.iter().zip(io.inbox.iter()).take(received) {
            if let Some(bytes) = datagram.get(..len) {
                self.on_datagram(client_index, bytes, rx_ns);
            }
        }
        received
    }

    fn on_datagram(&mut self, client_index: usize, bytes: &[u8], rx_ns: u64) {
        let Ok(header) = Header::parse(bytes) else {
            self.counts.unmatched += 1;
            return;
        };
        let org = header.origin_timestamp.to_bits();
        let index = (org & self.slots.mask) as u32;
        let Some(slot) = self.slots.slots.get(index as usize).copied() else {
            self.counts.unmatched += 1;
            return;
        };
        if !slot.live || slot.tx != org || slot.client as usize != client_index {
            self.counts.unmatched += 1;
            return;
        }
        self.slots.release(index);
        let Some(client) = self.clients.get_mut(client_index) else {
            return;
        };
        client.outstanding = client.outstanding.saturating_sub(1);
        let latency = rx_ns.saturating_sub(slot.sent_ns);

        let stamps = (header.receive_timestamp, header.transmit_timestamp);
        let kod = match &mut client.nts {
            None => {
                if header.mode != NtpMode::Server {
                    self.counts.invalid += 1;
                    return;
                }
                header.kiss_code()
            }
            Some(nts) => {
                match open_response(
                    bytes,
                    &slot.uid,
                    NtpTimestamp::from_bits(org),
                    nts.jar.keys(),
                ) {
                    Ok(mut response) => {
                        nts.naks_in_row = 0;
                        if response.kiss_code.is_none() {
                            response.store_cookies(&mut nts.jar);
                        }
                        response.kiss_code
                    }
                    Err(ResponseError::NtsNak) => {
                        nts.naks_in_row += 1;
                        self.counts.nts_naks += 1;
                        return;
                    }
                    Err(ResponseError::Unauthenticated {
                        kiss_code: Some(code),
                    }) => Some(code),
                    Err(_) => {
                        self.counts.invalid += 1;
                        return;
                    }
                }
            }
        };
        match kod {
            Some(code) => *self.counts.kods.entry(code.to_string()).or_default() += 1,
            None => {
                self.counts.answered += 1;
                self.latency.record(latency);
                self.timing
                    .record(Sample::new(slot.sent_ns, stamps.0, stamps.1, rx_ns));
            }
        }
    }

    /// Frees the slots of requests sent before `cutoff_ns` (they count as lost).
    fn expire(&mut self, cutoff_ns: u64) {
        for index in 0..self.slots.slots.len() {
            let Some(slot) = self.slots.slots.get(index).copied() else {
                continue;
            };
            if slot.live && slot.sent_ns < cutoff_ns {
                self.slots.release(index as u32);
                if let Some(c) = self.clients.get_mut(slot.client as usize) {
                    c.outstanding = c.outstanding.saturating_sub(1);
                }
            }
        }
    }

    /// Runs the key exchange again for clients the server keeps refusing.
    fn rekey(&mut self, ke: &KeClient, config: &Config) {
        for client in &mut self.clients {
            let Some(nts) = &mut client.nts else { continue };
            if nts.naks_in_row < NAKS_BEFORE_REKEY && !(nts.jar.is_empty() && nts.spare.is_empty())
            {
                continue;
            }
            self.counts.key_exchanges += 1;
            match ke.exchange(&config.host, config.ke_port) {
                Ok(exchange) => {
                    if let Ok(Some(fresh)) = new_session(exchange.jar) {
                        *nts = fresh;
                    }
                }
                Err(e) => {
                    *self.counts.errors.entry(format!("rekey: {e}")).or_default() += 1;
                    nts.naks_in_row = 0;
                }
            }
        }
    }
}
