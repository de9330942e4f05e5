//! CPU time of this process and of the server under test.
//!
//! The generator's own time comes from `getrusage(RUSAGE_SELF)` (all threads,
//! microsecond resolution). The server's comes from `/proc/PID/stat`: fields
//! 14 and 15, `utime` and `stime`, in clock ticks (`sysconf(_SC_CLK_TCK)`,
//! 100 on Linux), so its resolution is 10 ms: over a 10 s window the error is
//! under 0.2 % of a core. Both are sampled at the start and at the end of the
//! measured window and subtracted; nothing is attributed by guess.
//!
//! A server may do part of its work in child processes (chronyd runs NTS-KE
//! in helper processes), so [`process_tree_cpu`] adds the CPU time of every
//! descendant, found by scanning the parent pid of each `/proc/*/stat`. A
//! child that exits inside the window takes its time with it; helpers live as
//! long as the server, so this does not arise in practice.

use std::time::Duration;

/// A process's CPU time, split as the kernel accounts it: `user` is time in
/// the program itself, `system` time in the kernel on its behalf (for a
/// network server: the socket and UDP/IP paths, copies, wake-ups). The split
/// tells a reader how much of a server's cost its own code could ever save.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct CpuTime {
    /// Time in user space.
    pub user: Duration,
    /// Time in the kernel.
    pub system: Duration,
}

impl CpuTime {
    /// `user + system`.
    pub fn total(self) -> Duration {
        self.user + self.system
    }

    /// The time spent since `before` (each part saturating at zero).
    #[must_use]
    pub fn saturating_sub(self, before: Self) -> Self {
        Self {
            user: self.user.saturating_sub(before.user),
            system: self.system.saturating_sub(before.system),
        }
    }
}

impl std::ops::AddAssign for CpuTime {
    fn add_assign(&mut self, other: Self) {
        self.user += other.user;
        self.system += other.system;
    }
}

/// Total user + system CPU time of this process.
pub fn own_cpu() -> Duration {
    use nix::sys::resource::{UsageWho, getrusage};
    match getrusage(UsageWho::RUSAGE_SELF) {
        Ok(u) => timeval(u.user_time()) + timeval(u.system_time()),
        Err(_) => Duration::ZERO,
    }
}

fn timeval(tv: nix::sys::time::TimeVal) -> Duration {
    let secs = u64::try_from(tv.tv_sec()).unwrap_or(0);
    let micros = u64::try_from(tv.tv_usec()).unwrap_or(0);
    Duration::from_secs(secs) + Duration::from_micros(micros)
}

/// Clock ticks per second for `/proc` times (100 if `sysconf` fails).
pub fn clock_ticks() -> u64 {
    match nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK) {
        Ok(Some(t)) if t > 0 => u64::try_from(t).unwrap_or(100),
        _ => 100,
    }
}

/// User and system CPU time of process `pid`, read from `/proc/PID/stat`.
///
/// # Errors
/// If the file cannot be read (no such process) or does not parse.
pub fn process_cpu(pid: u32) -> std::io::Result<CpuTime> {
    let line = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let (user, system) = parse_stat_times(&line).ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("/proc/{pid}/stat: cannot find utime and stime"),
        )
    })?;
    let hz = clock_ticks();
    Ok(CpuTime {
        user: ticks_to_duration(user, hz),
        system: ticks_to_duration(system, hz),
    })
}

/// CPU time of `pid` and all its descendants (see the module docs).
///
/// # Errors
/// If `pid` itself cannot be read.
pub fn process_tree_cpu(pid: u32) -> std::io::Result<CpuTime> {
    let mut total = process_cpu(pid)?;
    let mut family = vec![pid];
    let mut others: Vec<(u32, u32)> = Vec::new();
    for entry in std::fs::read_dir("/proc")?.flatten() {
        let Some(child) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(line) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        if let Some(parent) = parse_stat_ppid(&line) {
            others.push((child, parent));
        }
    }
    // Walk down the tree, one generation at a time.
    let mut i = 0;
    while let Some(&parent) = family.get(i) {
        for &(child, p) in &others {
            if p == parent && child != pid && !family.contains(&child) {
                family.push(child);
                total += process_cpu(child).unwrap_or_default();
            }
        }
        i += 1;
    }
    Ok(total)
}

/// The parent pid (field 4) of one `/proc/PID/stat` line.
pub fn parse_stat_ppid(line: &str) -> Option<u32> {
    let (_, rest) = line.rsplit_once(')')?;
    rest.split_whitespace().nth(4 - 3)?.parse().ok()
}

/// The kernel's count of UDP datagrams dropped for want of receive buffer
/// space, system-wide (`RcvbufErrors` in `/proc/net/snmp`). Its change over a
/// run says whether loss happened in a socket queue, ours or the server's.
pub fn udp_rcvbuf_errors() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/net/snmp").ok()?;
    parse_snmp_udp(&text, "RcvbufErrors")
}

/// CPU time the hypervisor ran something else while this machine's virtual
/// CPUs wanted to run (`steal`, the 8th value of the `cpu` line of
/// `/proc/stat`), summed over all CPUs; `None` off Linux or when unreadable.
/// On a virtual machine its change over a run says whether the host took
/// time away: such a run's CPU figures are inflated and its latencies
/// stretched, whichever side was robbed.
pub fn steal_time() -> Option<Duration> {
    let text = std::fs::read_to_string("/proc/stat").ok()?;
    parse_proc_stat_steal(&text).map(|ticks| ticks_to_duration(ticks, clock_ticks()))
}

/// The `steal` ticks of the aggregate `cpu` line of `/proc/stat`.
pub fn parse_proc_stat_steal(text: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with("cpu "))?;
    // cpu user nice system idle iowait irq softirq steal ...
    line.split_whitespace().nth(8)?.parse().ok()
}

/// One counter of the `Udp:` lines of `/proc/net/snmp`.
pub fn parse_snmp_udp(text: &str, name: &str) -> Option<u64> {
    let mut lines = text.lines().filter(|l| l.starts_with("Udp:"));
    let names = lines.next()?;
    let values = lines.next()?;
    let column = names.split_whitespace().position(|n| n == name)?;
    values.split_whitespace().nth(column)?.parse().ok()
}

/// `(utime, stime)` in clock ticks from one `/proc/PID/stat` line. The
/// command name (field 2) is in parentheses and may itself hold spaces and
/// parentheses, so fields are counted after the **last** `)`.
pub fn parse_stat_times(line: &str) -> Option<(u64, u64)> {
    let (_, rest) = line.rsplit_once(')')?;
    // `rest` starts at field 3 (state); utime is field 14, stime field 15.
    let mut fields = rest.split_whitespace().skip(14 - 3);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some((utime, stime))
}

/// Converts clock ticks to time.
pub fn ticks_to_duration(ticks: u64, per_second: u64) -> Duration {
    let per_second = per_second.max(1);
    Duration::from_secs(ticks / per_second)
        + Duration::from_nanos((ticks % per_second) * 1_000_000_000 / per_second)
}

#[cfg(test)]
mod steal_tests {
    #[test]
    fn steal_is_the_eighth_value_of_the_cpu_line() {
        let text = "cpu  10 1 20 300 4 0 5 77 0 0\ncpu0 5 0 10 150 2 0 2 40 0 0\n";
        assert_eq!(super::parse_proc_stat_steal(text), Some(77));
        assert_eq!(super::parse_proc_stat_steal("cpu  1 2 3\n"), None);
        assert_eq!(super::parse_proc_stat_steal("intr 5\n"), None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_stat_line_with_a_hostile_name() {
        // Fields 14/15 are 1234 and 567; the name holds ") 9 9".
        let line = "4242 (evil) 9 9 name) S 1 4242 4242 0 -1 4194560 120 0 0 0 1234 567 0 0 20 0 3 0 99 1000 10 18446744073709551615\n";
        assert_eq!(parse_stat_times(line), Some((1234, 567)));
        assert_eq!(parse_stat_times("1 (x) S 1 2"), None);
        assert_eq!(parse_stat_times("garbage"), None);
    }

    #[test]
    fn parses_ppid_and_snmp() {
        assert_eq!(parse_stat_ppid("77 (a) b) S 12 77 0"), Some(12));
        let snmp = "Udp: InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors\nUdp: 10 2 3 11 7\nUdpLite: InDatagrams\nUdpLite: 0\n";
        assert_eq!(parse_snmp_udp(snmp, "RcvbufErrors"), Some(7));
        assert_eq!(parse_snmp_udp(snmp, "Nope"), None);
    }

    #[test]
    fn a_tree_includes_children() {
        let mut child = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .unwrap_or_else(|e| panic!("{e}"));
        let me = std::process::id();
        let own = process_cpu(me).unwrap_or_default();
        assert!(process_tree_cpu(me).is_ok_and(|t| t.total() >= own.total()));
        let _ = child.kill();
        let _ = child.wait();
    }

    #[test]
    fn cpu_time_arithmetic() {
        let ms = Duration::from_millis;
        let a = CpuTime {
            user: ms(30),
            system: ms(70),
        };
        let b = CpuTime {
            user: ms(10),
            system: ms(90),
        };
        assert_eq!(a.total(), ms(100));
        assert_eq!(
            a.saturating_sub(b),
            CpuTime {
                user: ms(20),
                system: ms(0)
            }
        );
        let mut c = a;
        c += b;
        assert_eq!(c.total(), ms(200));
    }

    #[test]
    fn ticks_convert() {
        assert_eq!(ticks_to_duration(250, 100), Duration::from_millis(2500));
        assert_eq!(ticks_to_duration(3, 1000), Duration::from_millis(3));
    }

    #[test]
    fn reads_our_own_process() {
        let pid = std::process::id();
        assert!(process_cpu(pid).is_ok());
        assert!(process_cpu(u32::MAX).is_err());
        let _ = own_cpu();
    }
}
