//! Decode a captured NTP packet with `ntp-proto` alone.
//!
//! `cargo run -p ntp-examples --example decode_packet [HEX]`

use ntp_proto::{NtpTimestamp, PacketView, UnixTime};

/// A chrony 4.3 server response captured on loopback.
const CAPTURED: &str = "240106e700000000000000007f7f0101eeaca26014ffeda9b1305188f6a7f3aeeeaca261fdf0bec9eeaca261fdf78432";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let hex = std::env::args()
        .nth(1)
        .unwrap_or_else(|| CAPTURED.to_string());
    let bytes = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2).unwrap_or("zz"), 16))
        .collect::<Result<Vec<u8>, _>>()?;
    let packet = PacketView::new(&bytes)?;
    let h = packet.header();
    let now = UnixTime::from_system_time(std::time::SystemTime::now());
    let date = |t: NtpTimestamp| t.to_unix_near(now).to_string();
    println!(
        "mode {}, version {}, stratum {}, refid {}",
        h.mode, h.version, h.stratum, h.reference_id
    );
    println!("receive  {}", date(h.receive_timestamp));
    println!("transmit {}", date(h.transmit_timestamp));
    for field in packet.extension_fields() {
        println!("field {} of {} bytes", field.field_type, field.length());
    }
    Ok(())
}
