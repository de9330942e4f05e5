//! Test support shared by the integration tests of the suite's programs: a
//! throwaway PKI, chronyd and other real peers started so that they cannot
//! touch the system clock, network namespaces of the test's own, and a
//! tampering UDP proxy. Test code: failures panic with a message.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, SanType};

/// A CA and a server certificate for `localhost` and 127.0.0.1, written to
/// `dir` as `ca.pem`, `server.pem` and `server.key`.
pub struct Pki {
    /// The CA certificate (PEM) clients should trust.
    pub ca: PathBuf,
    /// The server certificate (PEM), signed by the CA.
    pub cert: PathBuf,
    /// The server's private key (PEM).
    pub key: PathBuf,
}

impl Pki {
    /// Makes the CA and server certificate, files named after `name`.
    pub fn create(dir: &Path, name: &str) -> Self {
        Self::create_for(dir, name, &[])
    }

    /// As [`Pki::create`], with extra IP addresses in the certificate (for
    /// servers in a test network namespace).
    pub fn create_for(dir: &Path, name: &str, extra_ips: &[std::net::IpAddr]) -> Self {
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, format!("{name} test CA"));
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
        params
            .subject_alt_names
            .push(SanType::IpAddress("127.0.0.1".parse().unwrap()));
        for ip in extra_ips {
            params.subject_alt_names.push(SanType::IpAddress(*ip));
        }
        let cert = params.signed_by(&key, &ca).unwrap();
        let pki = Self {
            ca: dir.join(format!("{name}-ca.pem")),
            cert: dir.join(format!("{name}-server.pem")),
            key: dir.join(format!("{name}-server.key")),
        };
        std::fs::write(&pki.ca, ca.pem()).unwrap();
        std::fs::write(&pki.cert, cert.pem()).unwrap();
        std::fs::write(&pki.key, key.serialize_pem()).unwrap();
        // As a real deployment would: servers refuse world-readable keys.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&pki.key, std::fs::Permissions::from_mode(0o600)).unwrap();
        pki
    }
}

/// A free loopback port for UDP and TCP (bind, note, release), never one
/// this process has handed out before: the kernel may offer a port again as
/// soon as it is released, and a test that asks for three ports before it
/// starts a server once got the same port twice (CI, "Address already in
/// use").
pub fn free_port() -> u16 {
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    loop {
        let tcp = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = tcp.local_addr().unwrap().port();
        if UdpSocket::bind(("127.0.0.1", port)).is_err() {
            continue;
        }
        let mut given = GIVEN
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if !given.contains(&port) {
            given.push(port);
            return port;
        }
    }
}

/// Where Debian installs chronyd; panics with a hint when it is missing.
pub fn chronyd_binary() -> PathBuf {
    for candidate in ["/usr/sbin/chronyd", "/usr/bin/chronyd", "/sbin/chronyd"] {
        if Path::new(candidate).exists() {
            return candidate.into();
        }
    }
    panic!("chronyd is not installed; scripts/test-all.sh installs it (apt-get install chrony)");
}

/// A chronyd serving plain NTP and NTS on loopback ports, as a local stratum-1
/// reference, with `-x` so it never touches the clock. Stopped (by its own
/// PID) when dropped.
pub struct Chronyd {
    child: Child,
    /// NTP port (UDP, loopback).
    pub ntp_port: u16,
    /// NTS-KE port (TCP, loopback).
    pub ke_port: u16,
    /// The certificates chronyd serves.
    pub pki: Pki,
    /// Its configuration, log and NTS dump directory.
    pub dir: tempfile::TempDir,
}

impl Chronyd {
    /// Starts chronyd and waits until its NTS-KE port accepts connections.
    pub fn start() -> Self {
        Self::start_with(None)
    }

    /// As [`Chronyd::start`]; with `Some(spec)` chronyd runs under
    /// libfaketime with `FAKETIME=spec` (e.g. `"+2s"`: it serves time two
    /// seconds ahead). libfaketime is preloaded directly rather than through
    /// the `faketime` wrapper, which forks, so that dropping this stops
    /// chronyd itself.
    pub fn start_with(faketime: Option<&str>) -> Self {
        Self::start_inner(faketime, (free_port(), free_port()))
    }

    /// As [`Chronyd::start`], on NTP and NTS-KE ports chosen by the test
    /// (e.g. reserved with [`free_port`] before a client that uses them
    /// starts).
    pub fn start_on(ntp_port: u16, ke_port: u16) -> Self {
        Self::start_inner(None, (ntp_port, ke_port))
    }

    fn start_inner(faketime: Option<&str>, (ntp_port, ke_port): (u16, u16)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let pki = Pki::create(dir.path(), "chrony");
        let d = dir.path().display();
        let conf = format!(
            "pidfile {d}/chronyd.pid\n\
             port {ntp_port}\n\
             bindaddress 127.0.0.1\n\
             cmdport 0\n\
             local stratum 1\n\
             allow 127.0.0.1\n\
             ntsserverkey {key}\n\
             ntsservercert {cert}\n\
             ntsport {ke_port}\n\
             ntsdumpdir {d}\n",
            key = pki.key.display(),
            cert = pki.cert.display(),
        );
        let conf_path = dir.path().join("chrony.conf");
        std::fs::write(&conf_path, conf).unwrap();
        let child = Self::spawn(dir.path(), faketime);
        let chronyd = Self {
            child,
            ntp_port,
            ke_port,
            pki,
            dir,
        };
        chronyd.wait_ready();
        chronyd
    }

    /// Runs chronyd on the configuration in `dir`, logging (appending) to
    /// `dir/chronyd.log`.
    fn spawn(dir: &Path, faketime: Option<&str>) -> Child {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("chronyd.log"))
            .unwrap();
        let mut cmd = without_clock_privilege(None, &chronyd_binary());
        cmd.arg("-x")
            .arg("-d")
            .arg("-f")
            .arg(dir.join("chrony.conf"));
        if let Some(spec) = faketime {
            cmd.env("LD_PRELOAD", libfaketime())
                .env("FAKETIME", spec)
                .env("FAKETIME_DONT_RESET", "1")
                .env("FAKETIME_NO_CACHE", "1");
        }
        // As root chronyd would switch to its own user, which cannot read the
        // test's key files; keep it as root (it still never touches the clock).
        if is_root() {
            cmd.arg("-u").arg("root");
        }
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap()
    }

    /// Stops chronyd and starts it again on the same ports and certificate
    /// but with new NTS server keys (its saved keys are deleted), so every
    /// cookie it issued before is refused with an NTS NAK. Without faketime.
    pub fn restart_with_new_keys(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(self.dir.path().join("ntskeys"));
        self.child = Self::spawn(self.dir.path(), None);
        self.wait_ready();
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if TcpStream::connect(("127.0.0.1", self.ke_port)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("chronyd did not start: {}", self.log());
    }

    /// chronyd's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("chronyd.log")).unwrap_or_default()
    }

    /// chronyd's NTP address.
    pub fn ntp_addr(&self) -> SocketAddr {
        ([127, 0, 0, 1], self.ntp_port).into()
    }
}

impl Drop for Chronyd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Where Debian installs libfaketime (package `faketime`); panics with a
/// hint when it is missing.
pub fn libfaketime() -> PathBuf {
    for dir in [
        "/usr/lib/x86_64-linux-gnu/faketime",
        "/usr/lib/aarch64-linux-gnu/faketime",
        "/usr/lib/faketime",
        "/usr/local/lib/faketime",
    ] {
        let lib = Path::new(dir).join("libfaketime.so.1");
        if lib.exists() {
            return lib;
        }
    }
    panic!(
        "libfaketime is not installed; scripts/test-all.sh installs it (apt-get install faketime)"
    );
}

/// A shared library for `LD_PRELOAD` that lets a third-party NTP daemon run
/// as a client without steering the clock: every call that would change the
/// system clock (`clock_adjtime`/`ntp_adjtime`/`adjtimex` with modes set,
/// `clock_settime`, `settimeofday`) succeeds without reaching the kernel and
/// is remembered, so later reads show the daemon its own settings (source:
/// `crates/test-support/clock_shim.c`). With `CLOCK_SHIM_LOG=FILE` each
/// intercepted change is appended to FILE as a line. Use it together with
/// [`without_clock_privilege`], which takes the privilege away as well.
///
/// Compiled with the machine's C compiler on first use into the temporary
/// directory (one file per shim source, shared by concurrent tests).
pub fn clock_shim() -> PathBuf {
    const SOURCE: &str = include_str!("../clock_shim.c");
    // FNV-1a of the source names the build, so an edited shim is rebuilt.
    let hash = SOURCE.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    let lib = std::env::temp_dir().join(format!("ntp-suite-clock-shim-{hash:016x}.so"));
    if lib.exists() {
        return lib;
    }
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("clock_shim.c");
    std::fs::write(&src, SOURCE).unwrap();
    let built = work.path().join("clock_shim.so");
    let out = Command::new("cc")
        .args([
            "-shared", "-fPIC", "-O2", "-Wall", "-Wextra", "-Werror", "-o",
        ])
        .arg(&built)
        .arg(&src)
        .output()
        .unwrap_or_else(|e| panic!("the clock shim needs a C compiler (cc): {e}"));
    assert!(
        out.status.success(),
        "building the clock shim failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Rename is atomic: a concurrent test sees the whole library or none.
    let staged = std::env::temp_dir().join(format!(
        "ntp-suite-clock-shim-{hash:016x}.{}.tmp",
        std::process::id()
    ));
    std::fs::copy(&built, &staged).unwrap();
    std::fs::rename(&staged, &lib).unwrap();
    lib
}

/// A command for `program` (optionally inside network namespace `netns`)
/// that cannot change the system clock whatever it tries: as root, it runs
/// under `setpriv` with `CAP_SYS_TIME` removed from the bounding set, so
/// every clock adjustment fails with EPERM (NTPsec, for one, calls
/// `ntp_adjtime` even when told not to discipline the clock).
pub fn without_clock_privilege(netns: Option<&str>, program: &Path) -> Command {
    let mut cmd;
    if let Some(ns) = netns {
        cmd = Command::new("ip");
        cmd.args(["netns", "exec", ns]);
    } else if is_root() {
        cmd = Command::new("setpriv");
    } else {
        return Command::new(program);
    }
    if netns.is_some() {
        cmd.arg("setpriv");
    }
    cmd.args(["--bounding-set", "-sys_time", "--"]).arg(program);
    cmd
}

/// Two network namespaces of this test joined by a veth pair: `upstream`
/// (address `.1`) and `host` (address `.2`) on a /30 picked per process.
/// Deleted when dropped; the test's processes in them must be stopped first
/// (declare them after this guard so they drop before it).
pub struct NetnsPair {
    /// Name of the namespace that hosts the program under test.
    pub host: String,
    /// Name of the namespace that hosts its upstream.
    pub upstream: String,
    /// Address of the host end of the veth pair.
    pub host_addr: String,
    /// Address of the upstream end of the veth pair.
    pub upstream_addr: String,
}

impl NetnsPair {
    /// Creates both namespaces and the veth pair; panics unless root.
    pub fn create(tag: &str) -> Self {
        assert!(
            is_root(),
            "network namespaces need root; CI runs as root (scripts/test-all.sh)"
        );
        let id = std::process::id();
        let host = format!("ntpt-{tag}-{id}");
        let upstream = format!("ntpt-{tag}-up-{id}");
        // 10.213.x.y/30 chosen by pid: private, inside our own namespaces only.
        let block = (id % 16_000) * 4;
        let (a, b) = (block / 256, block % 256);
        let upstream_addr = format!("10.213.{a}.{}", b + 1);
        let host_addr = format!("10.213.{a}.{}", b + 2);
        // Interface names: at most 15 bytes, unique per tag and process.
        let short: String = tag.chars().take(4).collect();
        let (veth_h, veth_u) = (
            format!("h{short}{}", id % 1_000_000),
            format!("u{short}{}", id % 1_000_000),
        );
        let run = |args: &[&str]| {
            let out = Command::new("ip").args(args).output().unwrap();
            assert!(
                out.status.success(),
                "ip {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        run(&["netns", "add", &host]);
        run(&["netns", "add", &upstream]);
        run(&[
            "link", "add", &veth_h, "netns", &host, "type", "veth", "peer", "name", &veth_u,
            "netns", &upstream,
        ]);
        for (ns, dev, addr) in [
            (&host, &veth_h, &host_addr),
            (&upstream, &veth_u, &upstream_addr),
        ] {
            run(&["-n", ns, "link", "set", "lo", "up"]);
            run(&["-n", ns, "addr", "add", &format!("{addr}/30"), "dev", dev]);
            run(&["-n", ns, "link", "set", dev, "up"]);
        }
        Self {
            host,
            upstream,
            host_addr,
            upstream_addr,
        }
    }
}

impl Drop for NetnsPair {
    fn drop(&mut self) {
        for ns in [&self.host, &self.upstream] {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

/// A child process stopped (by its own PID) when dropped.
pub struct Guarded(pub Child);

impl Drop for Guarded {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Where scripts/test-all.sh puts peers that Debian does not install
/// system-wide (NTPsec's ntpd unpacked, ntpd-rs built).
pub fn peers_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("NTP_SUITE_PEERS") {
        return dir.into();
    }
    let home = std::env::var_os("HOME").unwrap_or_else(|| "/root".into());
    Path::new(&home).join(".cache/ntp-suite/peers")
}

/// Whether this process runs as root (uid 0).
pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|uid| uid == "0"))
        })
        .unwrap_or(false)
}

/// A UDP proxy on loopback that forwards datagrams between one client and
/// `upstream`, letting the test change requests and replies on the way. It
/// stops when dropped, and by itself after 30 s.
pub struct UdpProxy {
    /// Where clients send their datagrams.
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
    /// Datagrams forwarded from the client.
    pub requests: Arc<AtomicUsize>,
    /// Datagrams forwarded back to the client.
    pub replies: Arc<AtomicUsize>,
    thread: Option<JoinHandle<()>>,
}

type Mutate = Box<dyn Fn(&mut Vec<u8>) + Send>;
/// Turns one upstream reply into the datagrams sent to the client, in order.
type Expand = Box<dyn Fn(&[u8]) -> Vec<Vec<u8>> + Send>;

impl UdpProxy {
    /// Starts forwarding, applying `on_request` and `on_reply` on the way.
    pub fn start(upstream: SocketAddr, on_request: Mutate, on_reply: Mutate) -> Self {
        Self::start_expanding(
            upstream,
            on_request,
            Box::new(move |reply: &[u8]| {
                let mut d = reply.to_vec();
                on_reply(&mut d);
                vec![d]
            }),
        )
    }

    /// Like [`UdpProxy::start`], but each upstream reply becomes any number
    /// of datagrams (for injecting forgeries before or after it).
    pub fn start_expanding(upstream: SocketAddr, on_request: Mutate, on_reply: Expand) -> Self {
        let front = UdpSocket::bind("127.0.0.1:0").unwrap();
        let back = UdpSocket::bind("127.0.0.1:0").unwrap();
        back.connect(upstream).unwrap();
        front
            .set_read_timeout(Some(Duration::from_millis(20)))
            .unwrap();
        back.set_read_timeout(Some(Duration::from_millis(20)))
            .unwrap();
        let addr = front.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let (requests, replies) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let (stop2, rq, rp) = (stop.clone(), requests.clone(), replies.clone());
        let thread = std::thread::spawn(move || {
            let started = Instant::now();
            let mut client = None;
            let mut buf = [0u8; 2048];
            while !stop2.load(Ordering::Relaxed) && started.elapsed() < Duration::from_secs(30) {
                if let Ok((n, from)) = front.recv_from(&mut buf) {
                    client = Some(from);
                    let mut datagram = buf[..n].to_vec();
                    on_request(&mut datagram);
                    rq.fetch_add(1, Ordering::Relaxed);
                    let _ = back.send(&datagram);
                }
                if let (Ok(n), Some(to)) = (back.recv(&mut buf), client) {
                    rp.fetch_add(1, Ordering::Relaxed);
                    for datagram in on_reply(&buf[..n]) {
                        let _ = front.send_to(&datagram, to);
                    }
                }
            }
        });
        Self {
            addr,
            stop,
            requests,
            replies,
            thread: Some(thread),
        }
    }

    /// Forwards without changing anything.
    pub fn passthrough(upstream: SocketAddr) -> Self {
        Self::start(upstream, Box::new(|_| {}), Box::new(|_| {}))
    }
}

impl Drop for UdpProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
