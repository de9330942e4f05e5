//! `ntp-client decode`: a dissector for one NTP packet, in the manner of a
//! protocol analyser that understands NTS.
//!
//! Input is hex (whitespace and an optional `0x` prefix are ignored), from the
//! command line or standard input. Output is a readable dissection, or with
//! `--json` one object with a fixed set of keys (see [`JsonPacket`]). Bad
//! input exits with status 2 and one line naming the problem and its byte
//! offset.

use std::fmt::Write as _;
use std::io::{Read, Write};
use std::process::ExitCode;

use clap::Args;
use ntp_proto::{
    Header, Mode, NtpTimestamp, NtsField, PacketView, ParseError, RawExtensionField, UnixTime,
};
use serde::Serialize;

use crate::EXIT_BAD_INPUT;

/// Arguments of `decode`.
#[derive(Debug, Args)]
pub struct DecodeArgs {
    /// The packet as hex; read from standard input when absent or `-`.
    pub hex: Option<String>,
    /// Print one JSON object instead of the dissection.
    #[arg(long)]
    pub json: bool,
    /// Decode a built-in sample instead: an NTS response chrony sent.
    #[arg(long, conflicts_with = "hex")]
    pub sample: bool,
}

/// The `--sample` packet: an NTS-protected response from chrony 4.3, captured
/// on loopback (the shared corpus's `chrony-server-nts-response.hex`).
pub const SAMPLE: &str =
    include_str!("../../ntp-proto/tests/corpus/chrony-server-nts-response.hex");

/// Why input could not be decoded, with the byte offset of the problem.
#[derive(Debug, PartialEq, Eq)]
pub struct DecodeError {
    /// Offset in the decoded bytes where the problem is.
    pub offset: usize,
    /// What is wrong.
    pub message: String,
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "at byte offset {}: {}", self.offset, self.message)
    }
}

/// Runs the subcommand.
pub fn run(args: &DecodeArgs) -> ExitCode {
    let text = match &args.hex {
        _ if args.sample => SAMPLE.to_string(),
        Some(hex) if hex != "-" => hex.clone(),
        _ => {
            let mut input = String::new();
            if let Err(e) = std::io::stdin().read_to_string(&mut input) {
                eprintln!("error: cannot read standard input: {e}");
                return ExitCode::from(EXIT_BAD_INPUT);
            }
            input
        }
    };
    let now = UnixTime::from_system_time(std::time::SystemTime::now());
    let result = parse_hex(&text).and_then(|bytes| {
        let view = PacketView::new(&bytes).map_err(parse_error)?;
        Ok(if args.json {
            let json =
                serde_json::to_string(&JsonPacket::from_view(&view)).map_err(|e| DecodeError {
                    offset: 0,
                    message: e.to_string(),
                })?;
            json + "\n"
        } else {
            dissect(&view, now)
        })
    });
    match result {
        Ok(out) => {
            // A closed pipe (`| head`) is not an error worth a status.
            let _ = std::io::stdout().write_all(out.as_bytes());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(EXIT_BAD_INPUT)
        }
    }
}

fn parse_error(e: ParseError) -> DecodeError {
    DecodeError {
        offset: e.offset(),
        message: e.to_string(),
    }
}

/// Decodes hex text, ignoring whitespace and a leading `0x`.
///
/// # Errors
/// A non-hex character or an odd digit count, with the byte offset it falls at.
pub fn parse_hex(text: &str) -> Result<Vec<u8>, DecodeError> {
    let text = text.trim();
    let text = text
        .strip_prefix("0x")
        .or_else(|| text.strip_prefix("0X"))
        .unwrap_or(text);
    let mut bytes = Vec::with_capacity(text.len() / 2);
    let mut high: Option<u8> = None;
    for c in text.chars().filter(|c| !c.is_whitespace()) {
        let offset = bytes.len();
        let Some(nibble) = c.to_digit(16) else {
            return Err(DecodeError {
                offset,
                message: format!("{c:?} is not a hex digit"),
            });
        };
        // to_digit(16) is below 16.
        let nibble = nibble as u8;
        match high.take() {
            Some(h) => bytes.push((h << 4) | nibble),
            None => high = Some(nibble),
        }
    }
    if high.is_some() {
        return Err(DecodeError {
            offset: bytes.len(),
            message: "odd number of hex digits: the last byte is incomplete".into(),
        });
    }
    if bytes.is_empty() {
        return Err(DecodeError {
            offset: 0,
            message: "no input: expected a packet as hex".into(),
        });
    }
    Ok(bytes)
}

/// The `--json` output: exactly these keys.
#[derive(Debug, Serialize, PartialEq)]
pub struct JsonPacket {
    /// Leap indicator, 0–3.
    pub leap: u8,
    /// Version, 1–4.
    pub version: u8,
    /// Mode, 0–7.
    pub mode: u8,
    /// Stratum as on the wire.
    pub stratum: u8,
    /// Poll, log₂ s.
    pub poll: i8,
    /// Precision, log₂ s.
    pub precision: i8,
    /// Root delay in seconds.
    pub root_delay: f64,
    /// Root dispersion in seconds.
    pub root_dispersion: f64,
    /// Reference id, 8 hex digits.
    pub reference_id: String,
    /// Reference timestamp, 16 hex digits (raw 64-bit value).
    pub reference_timestamp: String,
    /// Origin timestamp, 16 hex digits.
    pub origin_timestamp: String,
    /// Receive timestamp, 16 hex digits.
    pub receive_timestamp: String,
    /// Transmit timestamp, 16 hex digits.
    pub transmit_timestamp: String,
    /// Extension fields in wire order.
    pub extension_fields: Vec<JsonField>,
    /// The MAC trailer, if any.
    pub mac: Option<JsonMac>,
    /// The kiss code of a Kiss-o'-Death packet.
    pub kiss_code: Option<String>,
}

/// One extension field in `--json` output.
#[derive(Debug, Serialize, PartialEq)]
pub struct JsonField {
    /// Field type.
    #[serde(rename = "type")]
    pub field_type: u16,
    /// Field length including its header and padding.
    pub length: usize,
}

/// The MAC in `--json` output.
#[derive(Debug, Serialize, PartialEq)]
pub struct JsonMac {
    /// Key id.
    pub key_id: u32,
    /// Digest length: 16, 20, or 0 for a crypto-NAK.
    pub digest_len: usize,
}

impl JsonPacket {
    /// The JSON form of a checked packet.
    pub fn from_view(view: &PacketView<'_>) -> Self {
        let h = view.header();
        let ts = |t: NtpTimestamp| format!("{:016x}", t.to_bits());
        Self {
            leap: h.leap.to_bits(),
            version: h.version.get(),
            mode: h.mode.to_bits(),
            stratum: h.stratum,
            poll: h.poll,
            precision: h.precision,
            root_delay: h.root_delay.to_seconds_f64(),
            root_dispersion: h.root_dispersion.to_seconds_f64(),
            reference_id: h.reference_id.to_string(),
            reference_timestamp: ts(h.reference_timestamp),
            origin_timestamp: ts(h.origin_timestamp),
            receive_timestamp: ts(h.receive_timestamp),
            transmit_timestamp: ts(h.transmit_timestamp),
            extension_fields: view
                .extension_fields()
                .map(|f| JsonField {
                    field_type: f.field_type.0,
                    length: f.length(),
                })
                .collect(),
            mac: view.mac().map(|m| JsonMac {
                key_id: m.key_id(),
                digest_len: m.digest().len(),
            }),
            kiss_code: h.kiss_code().map(|k| k.as_str().to_string()),
        }
    }
}

/// The readable dissection. Timestamps are shown as UTC dates in the era
/// nearest `now` (RFC 5905 §6).
pub fn dissect(view: &PacketView<'_>, now: UnixTime) -> String {
    let h = view.header();
    let mut out = String::new();
    let bytes = view.as_bytes().len();
    let _ = writeln!(out, "NTP packet, {bytes} bytes");
    header_lines(&mut out, h, now);
    let fields: Vec<RawExtensionField<'_>> = view.extension_fields().collect();
    if fields.is_empty() {
        let _ = writeln!(out, "Extension fields: none");
    } else {
        let _ = writeln!(out, "Extension fields: {}", fields.len());
        for f in &fields {
            field_lines(&mut out, f);
        }
    }
    match view.nts_protected_parts() {
        Ok(Some(parts)) => {
            let _ = writeln!(
                out,
                "NTS: bytes 0..{} authenticated by the field at byte {}{}",
                parts.associated_data.len(),
                parts.authenticator_offset,
                match parts.trailing_fields().count() {
                    0 => String::new(),
                    n => format!("; {n} field(s) after it are NOT authenticated"),
                }
            );
        }
        Ok(None) => {}
        Err(e) => {
            let _ = writeln!(out, "NTS: malformed authenticator: {e}");
        }
    }
    match view.mac() {
        None => {
            let _ = writeln!(out, "MAC: none");
        }
        Some(m) if m.is_crypto_nak() => {
            let _ = writeln!(out, "MAC: crypto-NAK (key id 0, no digest)");
        }
        Some(m) => {
            let _ = writeln!(
                out,
                "MAC: key id {}, {}-byte digest {}",
                m.key_id(),
                m.digest().len(),
                hex(m.digest())
            );
        }
    }
    out
}

fn header_lines(out: &mut String, h: &Header, now: UnixTime) {
    let _ = writeln!(out, "  Leap indicator:   {} ({})", h.leap.to_bits(), h.leap);
    let _ = writeln!(out, "  Version:          {}", h.version);
    let _ = writeln!(out, "  Mode:             {} ({})", h.mode.to_bits(), h.mode);
    let stratum = match (h.stratum, h.kiss_code()) {
        (0, Some(code)) => format!(
            "0 (Kiss-o'-Death {code}: {})",
            code.description().unwrap_or("unregistered code")
        ),
        (0, None) => "0 (unspecified)".to_string(),
        (1, _) => "1 (primary reference)".to_string(),
        (s @ 2..=15, _) => format!("{s} (secondary reference)"),
        (16, _) => "16 (unsynchronized)".to_string(),
        (s, _) => format!("{s} (reserved)"),
    };
    let _ = writeln!(out, "  Stratum:          {stratum}");
    let _ = writeln!(
        out,
        "  Poll:             {} ({})",
        h.poll,
        power_of_two(h.poll)
    );
    let _ = writeln!(
        out,
        "  Precision:        {} ({})",
        h.precision,
        power_of_two(h.precision)
    );
    let _ = writeln!(out, "  Root delay:       {}", h.root_delay);
    let _ = writeln!(out, "  Root dispersion:  {}", h.root_dispersion);
    let refid = match (h.kiss_code(), h.reference_id.as_ascii()) {
        (Some(code), _) => format!("{} (kiss code {code})", h.reference_id),
        (None, Some(name)) if h.stratum == 1 => format!("{} ({name})", h.reference_id),
        (None, _) if h.stratum >= 2 && h.stratum < 16 => {
            format!(
                "{} (IPv4 {} or IPv6 hash)",
                h.reference_id,
                h.reference_id.to_ipv4()
            )
        }
        _ => h.reference_id.to_string(),
    };
    let _ = writeln!(out, "  Reference ID:     {refid}");
    let client_xmt_note = h.mode == Mode::Client && h.origin_timestamp.is_zero();
    for (name, t) in [
        ("Reference time:", h.reference_timestamp),
        ("Origin time:", h.origin_timestamp),
        ("Receive time:", h.receive_timestamp),
        ("Transmit time:", h.transmit_timestamp),
    ] {
        let date = if t.is_zero() {
            "(unset)".to_string()
        } else {
            t.to_unix_near(now).to_string()
        };
        let note = if client_xmt_note && name == "Transmit time:" {
            "  (clients often send random bits here)"
        } else {
            ""
        };
        let _ = writeln!(out, "  {name:<17} {t}  {date}{note}");
    }
}

fn field_lines(out: &mut String, f: &RawExtensionField<'_>) {
    let what = match f.nts() {
        Ok(Some(NtsField::UniqueIdentifier(uid))) => format!("{}-byte id {}", uid.len(), hex(uid)),
        Ok(Some(NtsField::Cookie(cookie))) => format!("{}-byte cookie", cookie.len()),
        Ok(Some(NtsField::CookiePlaceholder { len })) => {
            format!("placeholder for a {len}-byte cookie")
        }
        Ok(Some(NtsField::Authenticator(a))) => format!(
            "nonce {} bytes {}, ciphertext {} bytes, additional padding {}",
            a.nonce.len(),
            hex(a.nonce),
            a.ciphertext.len(),
            a.additional_padding
        ),
        Ok(None) => format!("{} body bytes", f.body.len()),
        Err(e) => format!("malformed: {e}"),
    };
    let _ = writeln!(
        out,
        "  [{:>4}] {}, {} bytes: {what}",
        f.offset,
        f.field_type,
        f.length()
    );
}

fn power_of_two(exp: i8) -> String {
    let seconds = 2f64.powi(i32::from(exp));
    if seconds >= 1.0 {
        format!("{seconds} s")
    } else {
        format!("{:.3e} s", seconds)
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_errors_name_the_byte() {
        assert_eq!(parse_hex("0x2300 04").unwrap(), [0x23, 0, 4]);
        assert_eq!(
            parse_hex("2300zz").unwrap_err(),
            DecodeError {
                offset: 2,
                message: "'z' is not a hex digit".into()
            }
        );
        assert_eq!(parse_hex("23001").unwrap_err().offset, 2);
        assert_eq!(parse_hex("  ").unwrap_err().offset, 0);
    }
}
