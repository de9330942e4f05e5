//! `ntp-client query` against a real chronyd (Debian's), started by each test
//! on loopback ports with `-x` (it never touches the clock) and a test CA.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod support;

use std::sync::atomic::Ordering;

use support::{Chronyd, Pki, UdpProxy, failure, json_lines, ntp_client, nts_query};

/// Both clocks are this machine's: the offset must be near zero.
const SAME_MACHINE_OFFSET: f64 = 0.001;

#[test]
fn plain_query_gets_time_from_chronyd() {
    let chrony = Chronyd::start();
    let port = chrony.ntp_port.to_string();
    let out = ntp_client(&[
        "query",
        "--json",
        "--port",
        &port,
        "--timeout",
        "1",
        "127.0.0.1",
    ]);
    let samples = json_lines(&out);
    assert_eq!(samples.len(), 1);
    let s = &samples[0];
    assert_eq!(s["server"], format!("127.0.0.1:{port}"));
    assert_eq!(s["nts"], false);
    assert!(s["cookies"].is_null());
    assert_eq!(s["stratum"], 1);
    assert_eq!(s["reference_id"], "7f7f0101", "chrony's local reference");
    assert_eq!(s["leap"], 0);
    assert!(
        s["offset"].as_f64().unwrap().abs() < SAME_MACHINE_OFFSET,
        "{s}"
    );
    assert!(s["delay"].as_f64().unwrap() >= 0.0);
}

#[test]
fn nts_query_gets_authenticated_time_from_chronyd() {
    let chrony = Chronyd::start();
    // No --port: the NTP port comes from chrony's NTS-KE Port record.
    let out = nts_query(
        &chrony,
        &["--count", "3", "--interval", "0.2", "--json"],
        "127.0.0.1",
    );
    let samples = json_lines(&out);
    assert_eq!(samples.len(), 3);
    for s in &samples {
        assert_eq!(s["nts"], true, "{s}");
        assert_eq!(s["server"], format!("127.0.0.1:{}", chrony.ntp_port), "{s}");
        // Each reply replaces the cookie used (no placeholders were needed).
        assert!(s["cookies"].as_u64().unwrap() >= 1, "{s}");
        assert_eq!(s["stratum"], 1);
        assert!(
            s["offset"].as_f64().unwrap().abs() < SAME_MACHINE_OFFSET,
            "{s}"
        );
    }
    // By host name too, and the human output names the AEAD.
    let out = nts_query(&chrony, &[], "localhost");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("NTS AEAD_AES_SIV_CMAC_256 (15)"), "{text}");
}

#[test]
fn certificate_from_another_ca_is_refused() {
    let chrony = Chronyd::start();
    let other = Pki::create(chrony.dir.path(), "other");
    let ke_port = chrony.ke_port.to_string();
    let out = ntp_client(&[
        "query",
        "--nts",
        "--ca",
        other.ca.to_str().unwrap(),
        "--ke-port",
        &ke_port,
        "127.0.0.1",
    ]);
    let err = failure(&out);
    assert!(
        err.contains("bad certificate from NTS-KE server 127.0.0.1"),
        "{err}"
    );
}

#[test]
fn tampered_nts_reply_is_rejected() {
    let chrony = Chronyd::start();

    // Control: through an honest proxy the query succeeds.
    let honest = UdpProxy::passthrough(chrony.ntp_addr());
    let out = nts_query(
        &chrony,
        &["--port", &honest.addr.port().to_string()],
        "127.0.0.1",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    drop(honest);

    // One bit flipped in the encrypted part of every reply.
    let flip = Box::new(|d: &mut Vec<u8>| {
        let i = d.len() - 8;
        d[i] ^= 0x01;
    });
    let proxy = UdpProxy::start(chrony.ntp_addr(), Box::new(|_| {}), flip);
    let port = proxy.addr.port().to_string();
    let out = nts_query(
        &chrony,
        &["--port", &port, "--timeout", "0.5", "--retries", "1"],
        "127.0.0.1",
    );
    let err = failure(&out);
    assert!(err.contains("no valid reply"), "{err}");
    assert!(err.contains("authentication"), "{err}");
    // chrony did answer both attempts; we refused what arrived.
    assert_eq!(proxy.replies.load(Ordering::Relaxed), 2);

    // A header field changed (the stratum) is covered by the authenticator too.
    let proxy = UdpProxy::start(
        chrony.ntp_addr(),
        Box::new(|_| {}),
        Box::new(|d: &mut Vec<u8>| d[1] = 2),
    );
    let port = proxy.addr.port().to_string();
    let out = nts_query(
        &chrony,
        &["--port", &port, "--timeout", "0.5", "--retries", "0"],
        "127.0.0.1",
    );
    assert!(failure(&out).contains("authentication"));
}

#[test]
fn damaged_cookie_gets_an_nts_nak_from_chronyd() {
    let chrony = Chronyd::start();
    // The cookie field starts at byte 84 (after the 48-byte header and the
    // 36-byte UID field); damage a byte inside the cookie body.
    let damage_cookie = Box::new(|d: &mut Vec<u8>| d[100] ^= 0xff);
    let proxy = UdpProxy::start(chrony.ntp_addr(), damage_cookie, Box::new(|_| {}));
    let out = nts_query(
        &chrony,
        &["--port", &proxy.addr.port().to_string()],
        "127.0.0.1",
    );
    let err = failure(&out);
    assert!(err.contains("NTS NAK"), "{err}");
}

#[test]
fn no_common_aead_with_chronyd_is_reported() {
    // chrony implements AEAD 15 (and 30), not 17.
    let chrony = Chronyd::start();
    let err = failure(&nts_query(&chrony, &["--aead", "17"], "127.0.0.1"));
    assert!(err.contains("NTS-KE with 127.0.0.1"), "{err}");
    assert!(err.to_lowercase().contains("aead"), "{err}");
}

#[test]
fn closed_ke_port_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::create(dir.path(), "closed");
    let port = support::free_port().to_string();
    let ca = pki.ca.to_str().unwrap();
    let out = ntp_client(&[
        "query",
        "--nts",
        "--ca",
        ca,
        "--ke-port",
        &port,
        "--timeout",
        "1",
        "127.0.0.1",
    ]);
    let err = failure(&out);
    assert!(
        err.contains("cannot connect to NTS-KE server 127.0.0.1"),
        "{err}"
    );
}

#[test]
fn spoofed_kiss_of_death_is_ignored_by_the_nts_client() {
    use ntp_proto::{ExtensionFieldType, Header, KissCode, PacketView, SystemInfo};
    let chrony = Chronyd::start();
    // Before each real reply, an on-path attacker sends a DENY kiss that
    // echoes the right origin and the right unique identifier, but cannot
    // carry a valid authenticator.
    let forge = Box::new(|reply: &[u8]| {
        let view = PacketView::new(reply).unwrap();
        let real = *view.header();
        let uid = view
            .extension_fields()
            .find(|f| f.field_type == ExtensionFieldType::UNIQUE_IDENTIFIER)
            .unwrap();
        let mut request = real;
        request.transmit_timestamp = real.origin_timestamp;
        let system = SystemInfo {
            leap: real.leap,
            stratum: real.stratum,
            precision: real.precision,
            root_delay: real.root_delay,
            root_dispersion: real.root_dispersion,
            reference_id: real.reference_id,
            reference_timestamp: real.reference_timestamp,
        };
        let kiss = Header::kiss_of_death(
            &request,
            KissCode::DENY,
            &system,
            real.receive_timestamp,
            real.transmit_timestamp,
        );
        let mut forged = kiss.to_bytes().to_vec();
        forged.extend_from_slice(&reply[uid.offset..uid.offset + uid.length()]);
        vec![forged, reply.to_vec()]
    });
    let proxy = UdpProxy::start_expanding(chrony.ntp_addr(), Box::new(|_| {}), forge);
    let port = proxy.addr.port().to_string();
    let out = nts_query(
        &chrony,
        &[
            "--port",
            &port,
            "--count",
            "2",
            "--interval",
            "0.2",
            "--json",
        ],
        "127.0.0.1",
    );
    let samples = json_lines(&out);
    assert_eq!(samples.len(), 2);
    assert!(
        samples
            .iter()
            .all(|s| s["nts"] == true && s["stratum"] == 1),
        "{samples:?}"
    );
    assert_eq!(proxy.replies.load(Ordering::Relaxed), 2);
}
