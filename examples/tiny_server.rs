//! A tiny NTP server with `ntp-proto` and std UDP: answers client requests
//! with the local clock as a stratum-1 "LOCL" reference. It stops by itself
//! after `--count` answers or `--seconds` of idle time.
//!
//! `cargo run -p ntp-examples --example tiny_server -- 127.0.0.1:12300 --count 5`

use std::net::UdpSocket;
use std::time::{Duration, SystemTime};

use ntp_proto::{
    Header, LeapIndicator, Mode, NtpShort, NtpTimestamp, PacketView, ReferenceId, SystemInfo,
    UnixTime,
};

fn now() -> NtpTimestamp {
    NtpTimestamp::from_unix(UnixTime::from_system_time(SystemTime::now()))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let listen = args
        .first()
        .cloned()
        .unwrap_or_else(|| "127.0.0.1:12300".into());
    let flag = |name: &str, default: u64| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let (count, idle) = (flag("--count", 10), flag("--seconds", 10));

    let socket = UdpSocket::bind(&listen)?;
    socket.set_read_timeout(Some(Duration::from_secs(idle)))?;
    println!("listening on {}", socket.local_addr()?);
    let system = SystemInfo {
        leap: LeapIndicator::NoWarning,
        stratum: 1,
        precision: -20,
        root_delay: NtpShort::ZERO,
        root_dispersion: NtpShort::from_seconds_f64(0.001),
        reference_id: ReferenceId::from_ascii("LOCL").ok_or("bad refid")?,
        reference_timestamp: now(),
    };
    let mut buf = [0u8; 1024];
    let mut answered = 0;
    while answered < count {
        let (n, peer) = match socket.recv_from(&mut buf) {
            Ok(r) => r,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                break;
            }
            Err(e) => return Err(e.into()),
        };
        let t2 = now();
        // Malformed input is dropped, never answered.
        let Ok(view) = PacketView::new(buf.get(..n).unwrap_or_default()) else {
            continue;
        };
        if view.header().mode != Mode::Client {
            continue;
        }
        let reply = Header::server_response(view.header(), &system, t2, now());
        socket.send_to(&reply.to_bytes(), peer)?;
        answered += 1;
    }
    println!("answered {answered} requests");
    Ok(())
}
