//! Where the load goes, and the guard that keeps it on this machine.

use std::net::{IpAddr, SocketAddr, ToSocketAddrs};

use crate::PerfError;

/// Whether `ip` is a loopback address: 127.0.0.0/8, `::1`, or an
/// IPv4-mapped `::ffff:127.x.y.z`.
pub fn is_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => {
            v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    }
}

/// Resolves `host:port` (IPv4 first) and refuses a target that is not
/// loopback unless `allow_remote`: a load generator pointed at someone
/// else's server is an attack.
///
/// # Errors
/// [`PerfError::Resolve`] or [`PerfError::NotLoopback`].
pub fn resolve(host: &str, port: u16, allow_remote: bool) -> Result<SocketAddr, PerfError> {
    let addrs: Vec<SocketAddr> = (host, port)
        .to_socket_addrs()
        .map_err(|e| PerfError::Resolve(format!("{host}: {e}")))?
        .collect();
    let addr = addrs
        .iter()
        .find(|a| a.is_ipv4())
        .or_else(|| addrs.first())
        .copied()
        .ok_or_else(|| PerfError::Resolve(format!("{host}: no address")))?;
    if !allow_remote {
        if let Some(bad) = addrs.iter().find(|a| !is_loopback(a.ip())) {
            return Err(PerfError::NotLoopback(bad.ip()));
        }
    }
    Ok(addr)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_guard() {
        for ok in ["127.0.0.1", "127.255.0.9", "::1", "::ffff:127.0.0.1"] {
            assert!(
                is_loopback(ok.parse().unwrap_or(IpAddr::from([0; 4]))),
                "{ok}"
            );
            assert!(resolve(ok, 123, false).is_ok(), "{ok}");
        }
        for bad in [
            "10.0.0.1",
            "192.0.2.1",
            "::",
            "2001:db8::1",
            "::ffff:10.0.0.1",
        ] {
            let err = resolve(bad, 123, false);
            assert!(
                matches!(err, Err(PerfError::NotLoopback(_))),
                "{bad}: {err:?}"
            );
            assert!(resolve(bad, 123, true).is_ok(), "{bad}");
        }
        assert!(resolve("localhost", 123, false).is_ok());
    }
}
