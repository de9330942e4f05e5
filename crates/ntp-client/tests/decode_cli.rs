//! Runs the real `ntp-client decode` binary on captured packets and bad input.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

fn corpus(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../ntp-proto/tests/corpus")
        .join(name);
    std::fs::read_to_string(path).unwrap().trim().to_string()
}

fn decode(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ntp-client"))
        .arg("decode")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.unwrap_or("").as_bytes()).unwrap();
    drop(input);
    child.wait_with_output().unwrap()
}

#[test]
fn json_has_exactly_the_documented_keys_and_values() {
    let out = decode(
        &["--json", &corpus("chrony-server-plain-response.hex")],
        None,
    );
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "extension_fields",
            "kiss_code",
            "leap",
            "mac",
            "mode",
            "origin_timestamp",
            "poll",
            "precision",
            "receive_timestamp",
            "reference_id",
            "reference_timestamp",
            "root_delay",
            "root_dispersion",
            "stratum",
            "transmit_timestamp",
            "version",
        ]
    );
    assert_eq!(v["leap"], 0);
    assert_eq!(v["version"], 4);
    assert_eq!(v["mode"], 4);
    assert_eq!(v["stratum"], 1);
    assert_eq!(v["poll"], 6);
    assert_eq!(v["precision"], -25);
    assert_eq!(v["root_delay"], 0.0);
    assert_eq!(v["reference_id"], "7f7f0101");
    assert_eq!(v["origin_timestamp"], "b1305188f6a7f3ae");
    assert_eq!(v["transmit_timestamp"], "eeaca261fdf78432");
    assert_eq!(v["extension_fields"], serde_json::json!([]));
    assert!(v["mac"].is_null());
    assert!(v["kiss_code"].is_null());
}

#[test]
fn json_lists_nts_fields_in_wire_order_from_stdin() {
    let out = decode(&["--json"], Some(&corpus("chrony-client-nts-request.hex")));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        v["extension_fields"],
        serde_json::json!([
            {"type": 0x0104, "length": 36},
            {"type": 0x0204, "length": 104},
            {"type": 0x0404, "length": 40}
        ])
    );
}

#[test]
fn kiss_code_and_mac_are_reported() {
    let nak = decode(&["--json", &corpus("chrony-server-nts-nak.hex")], None);
    let v: serde_json::Value = serde_json::from_slice(&nak.stdout).unwrap();
    assert_eq!(v["kiss_code"], "NTSN");
    assert_eq!(v["leap"], 3);

    // A plain request with a 16-byte MAC under key 7.
    let with_mac = format!(
        "{}00000007{}",
        corpus("chrony-client-plain-request.hex"),
        "ab".repeat(16)
    );
    let out = decode(&["--json", &with_mac], None);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["mac"], serde_json::json!({"key_id": 7, "digest_len": 16}));
}

#[test]
fn sample_decodes_without_input() {
    let out = decode(&["--sample", "--json"], None);
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["mode"], 4);
    assert_eq!(v["extension_fields"].as_array().unwrap().len(), 2);
}

#[test]
fn dissection_names_fields_and_dates() {
    let out = decode(&[&corpus("chrony-server-nts-response.hex")], None);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("NTP packet, 228 bytes"), "{text}");
    assert!(text.contains("Mode:             4 (server)"), "{text}");
    assert!(
        text.contains("Unique Identifier (0x0104), 36 bytes"),
        "{text}"
    );
    assert!(
        text.contains("NTS Authenticator and Encrypted Extension Fields (0x0404), 144 bytes"),
        "{text}"
    );
    assert!(text.contains("NTS: bytes 0..84 authenticated"), "{text}");
    // The capture was made in November 2026.
    assert!(text.contains("2026-11-"), "{text}");
}

fn assert_bad_input(args: &[&str], stdin: Option<&str>, expected: &str) {
    let out = decode(args, stdin);
    assert_eq!(out.status.code(), Some(2), "{args:?}");
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(err.contains(expected), "{err:?} lacks {expected:?}");
    assert!(out.stdout.is_empty());
}

#[test]
fn bad_input_exits_2_with_the_offset() {
    let request = corpus("chrony-client-plain-request.hex");
    assert_bad_input(&["23000620"], None, "at byte offset 4: packet is 4 bytes");
    assert_bad_input(&["23g0"], None, "at byte offset 1: 'g' is not a hex digit");
    assert_bad_input(&["230"], None, "at byte offset 1: odd number of hex digits");
    assert_bad_input(&[], Some(""), "at byte offset 0: no input");
    // Version 5.
    let v5 = format!("2b{}", &request[2..]);
    assert_bad_input(&[&v5], None, "at byte offset 0: version 5 is not NTP");
    // Mode 6 (control).
    let control = format!("26{}", &request[2..]);
    assert_bad_input(&[&control], None, "at byte offset 0: mode 6 (control)");
    // An extension field whose length runs past the end, at byte 48.
    let bad_field =
        format!("{request}0104004000000000000000000000000000000000000000000000000000000000");
    assert_bad_input(
        &[&bad_field],
        None,
        "at byte offset 48: extension field at byte 48: length 64 runs past the end",
    );
    // 50 bytes: not a multiple of 4.
    assert_bad_input(
        &[&format!("{request}0000")],
        None,
        "at byte offset 50: packet length 50",
    );
}
