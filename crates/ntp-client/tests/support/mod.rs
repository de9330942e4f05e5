//! Helpers for running the `ntp-client` binary; the rest of the test
//! support lives in the `ntp-test-support` crate.

#![allow(dead_code, clippy::unwrap_used)] // each test file uses a part of this

use std::process::{Command, Output, Stdio};

pub use ntp_test_support::*;

/// Runs `ntp-client` with `args`; bounded by its own --timeout/--retries.
pub fn ntp_client(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ntp-client"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// `ntp-client query --nts --ca <the test CA> --ke-port <chronyd's>`, then
/// `extra`, then `host`.
pub fn nts_query(chrony: &Chronyd, extra: &[&str], host: &str) -> Output {
    let ca = chrony.pki.ca.to_str().unwrap();
    let ke_port = chrony.ke_port.to_string();
    let mut args = vec!["query", "--nts", "--ca", ca, "--ke-port", &ke_port];
    args.extend_from_slice(extra);
    args.push(host);
    ntp_client(&args)
}

/// The JSON lines of a successful run.
pub fn json_lines(out: &Output) -> Vec<serde_json::Value> {
    assert!(
        out.status.success(),
        "exit {:?}: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The one-line error of a failed run (exit status 1).
pub fn failure(out: &Output) -> String {
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(1), "expected exit 1, stderr: {err}");
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    err
}
