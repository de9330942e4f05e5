//! An SNTP query (RFC 4330 style) with `ntp-proto` and std UDP: one request,
//! one reply, offset and delay.
//!
//! `cargo run -p ntp-examples --example sntp_query -- 127.0.0.1:123`

use std::net::UdpSocket;
use std::time::{Duration, SystemTime};

use ntp_proto::{Header, NtpTimestamp, PacketView, UnixTime};

fn now() -> NtpTimestamp {
    NtpTimestamp::from_unix(UnixTime::from_system_time(SystemTime::now()))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let server = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:123".into());
    let socket = UdpSocket::bind("0.0.0.0:0")?;
    socket.set_read_timeout(Some(Duration::from_secs(2)))?;
    socket.connect(&server)?;

    // Random transmit bits (data minimisation); the real T1 stays local.
    let cookie = rand::random::<u64>();
    let request = Header::client_request(6, cookie);
    let t1 = now();
    socket.send(&request.to_bytes())?;

    let mut buf = [0u8; 1024];
    let reply = loop {
        let n = socket.recv(&mut buf)?;
        let t4 = now();
        let Ok(view) = PacketView::new(buf.get(..n).unwrap_or_default()) else {
            continue; // not NTP: ignore
        };
        let h = *view.header();
        if h.origin_timestamp != request.transmit_timestamp {
            continue; // not the answer to our request
        }
        break (h, t4);
    };
    let (h, t4) = reply;
    if let Some(code) = h.kiss_code() {
        return Err(format!("kiss-o'-death {code} from {server}").into());
    }
    let (t2, t3) = (h.receive_timestamp, h.transmit_timestamp);
    let offset = ((t2 - t1) + (t3 - t4)).half();
    let delay = (t4 - t1) - (t3 - t2);
    println!(
        "{server}: stratum {} refid {} offset {:+.6} s delay {:.6} s",
        h.stratum,
        h.reference_id,
        offset.to_seconds_f64(),
        delay.to_seconds_f64()
    );
    Ok(())
}
