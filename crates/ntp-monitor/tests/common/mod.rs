//! Helpers for the ntp-monitor integration tests: the binary, HTTP on
//! loopback, and a chronyd whose clock libfaketime shifts at run time.

#![allow(clippy::unwrap_used, dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use ntp_test_support::{Guarded, chronyd_binary, free_port, is_root, without_clock_privilege};

/// The binary under test.
pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_ntp-monitor"))
}

/// `target/` (from the binary's path), for artifacts.
pub fn target_dir() -> PathBuf {
    bin()
        .parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .unwrap()
}

/// GET `path`; returns the status and body. Bounded to 5 s.
pub fn http_get(addr: SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    s.set_write_timeout(Some(Duration::from_secs(5)))?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    let status = out
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = out
        .split_once("\r\n\r\n")
        .map(|x| x.1)
        .unwrap_or("")
        .to_string();
    Ok((status, body))
}

/// Polls `f` every 100 ms until it returns `Some`, or panics after `limit`
/// with `what` and the last state `show` gives.
pub fn wait_for<T>(
    limit: Duration,
    what: &str,
    mut f: impl FnMut() -> Option<T>,
    show: impl Fn() -> String,
) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return v;
        }
        if Instant::now() > deadline {
            panic!("timed out waiting for {what}; last: {}", show());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A monitor process.
pub struct Monitor {
    /// The process (killed by PID on drop).
    pub child: Guarded,
    /// Its HTTP address.
    pub addr: SocketAddr,
    /// Where its stderr goes.
    pub log: PathBuf,
}

impl Monitor {
    /// Starts `ntp-monitor run --config CONFIG` with its log in `dir`.
    pub fn start(config: &Path, addr: SocketAddr, dir: &Path) -> Self {
        let log = dir.join(format!("monitor-{}.log", free_port()));
        let child = Command::new(bin())
            .args(["run", "--config"])
            .arg(config)
            .env("NTP_LOG", "info,ntp_io=warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let m = Self {
            child: Guarded(child),
            addr,
            log,
        };
        wait_for(
            Duration::from_secs(10),
            "the monitor's HTTP server",
            || http_get(addr, "/metrics").ok(),
            || m.log_text(),
        );
        m
    }

    /// The monitor's log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// GET on the monitor.
    pub fn get(&self, path: &str) -> (u16, String) {
        http_get(self.addr, path).unwrap_or((0, String::new()))
    }

    /// Sends SIGTERM (by PID) and waits up to 10 s for the exit.
    pub fn terminate(mut self) -> ExitStatus {
        signal(&self.child.0, "TERM");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.child.0.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "monitor ignored SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Sends SIGKILL (by PID) and reaps it.
    pub fn kill9(mut self) {
        signal(&self.child.0, "KILL");
        let _ = self.child.0.wait();
    }
}

/// Sends `SIG<name>` to `child` by its PID.
pub fn signal(child: &Child, name: &str) {
    let status = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(status.success(), "kill -{name} {}", child.id());
}

/// Runs the binary with `args`; returns status, stdout, stderr.
pub fn run(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(bin()).args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn libfaketime() -> PathBuf {
    for dir in [
        "/usr/lib/x86_64-linux-gnu/faketime",
        "/usr/lib/aarch64-linux-gnu/faketime",
        "/usr/lib/faketime",
        "/usr/local/lib/faketime",
    ] {
        let p = Path::new(dir).join("libfaketime.so.1");
        if p.exists() {
            return p;
        }
    }
    panic!(
        "libfaketime is not installed; scripts/test-all.sh installs it (apt-get install faketime)"
    );
}

/// A plain-NTP chronyd on loopback whose clock libfaketime shifts by the
/// offset written to a control file (read on every clock call, so it can
/// change while chronyd runs). Never touches the real clock (`-x`, no
/// CAP_SYS_TIME). Stopped by PID on drop.
///
/// chronyd timestamps requests in the kernel, which libfaketime does not
/// shift, so a client measures about half the fake offset.
pub struct FakeChronyd {
    child: Guarded,
    /// NTP port.
    pub ntp_port: u16,
    control: PathBuf,
    /// Its directory.
    pub dir: tempfile::TempDir,
}

impl FakeChronyd {
    /// Starts chronyd with a fake offset spec such as `"+0"` or `"+0.3"`.
    pub fn start(offset: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let ntp_port = free_port();
        let d = dir.path().display();
        let conf = format!(
            "pidfile {d}/chronyd.pid\nport {ntp_port}\nbindaddress 127.0.0.1\ncmdport 0\n\
             local stratum 1\nallow 127.0.0.1\n"
        );
        let conf_path = dir.path().join("chrony.conf");
        std::fs::write(&conf_path, conf).unwrap();
        let control = dir.path().join("faketime");
        std::fs::write(&control, format!("{offset}\n")).unwrap();
        let log = std::fs::File::create(dir.path().join("chronyd.log")).unwrap();
        let mut cmd = without_clock_privilege(None, &chronyd_binary());
        cmd.arg("-x").arg("-d").arg("-f").arg(&conf_path);
        if is_root() {
            cmd.arg("-u").arg("root");
        }
        cmd.env("LD_PRELOAD", libfaketime())
            .env("FAKETIME_TIMESTAMP_FILE", &control)
            .env("FAKETIME_NO_CACHE", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        let child = Guarded(cmd.spawn().unwrap());
        let c = Self {
            child,
            ntp_port,
            control,
            dir,
        };
        // Ready when it answers; ntp-monitor's own client is not at hand
        // here, so send one client-mode packet by hand.
        wait_for(
            Duration::from_secs(10),
            "faketime chronyd",
            || c.answers().then_some(()),
            || std::fs::read_to_string(c.dir.path().join("chronyd.log")).unwrap_or_default(),
        );
        c
    }

    fn answers(&self) -> bool {
        let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        s.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let mut req = [0u8; 48];
        req[0] = 0x23; // LI 0, version 4, mode 3
        req[40..48].copy_from_slice(&[1, 2, 3, 4, 5, 6, 7, 8]);
        if s.send_to(&req, ("127.0.0.1", self.ntp_port)).is_err() {
            return false;
        }
        let mut buf = [0u8; 512];
        s.recv(&mut buf).is_ok()
    }

    /// Changes the fake offset.
    pub fn set_offset(&self, offset: &str) {
        let tmp = self.control.with_extension("tmp");
        std::fs::write(&tmp, format!("{offset}\n")).unwrap();
        std::fs::rename(&tmp, &self.control).unwrap();
    }
}

/// A loopback address with a free port, for `http-listen`.
pub fn free_http() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], free_port()))
}
