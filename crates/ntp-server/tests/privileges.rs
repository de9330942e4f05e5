//! Least privilege: started as root with `[process] user`, the server binds
//! its sockets, then runs as that user with no capabilities, and still serves
//! plain and NTS time.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use common::{Extra, Server, block_on};

fn status_field(pid: u32, field: &str) -> String {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .unwrap_or_default()
        .trim()
        .to_string()
}

#[test]
fn runs_as_the_configured_user_without_capabilities() {
    assert!(
        common::is_root(),
        "this test starts the server as root, as CI does"
    );
    let server = Server::start(Extra {
        top: "[process]\nuser = \"nobody\"\n".into(),
        ..Extra::default()
    });
    // The switch happens right after binding; give it a moment.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while status_field(server.pid(), "Uid:").starts_with('0') {
        assert!(
            std::time::Instant::now() < deadline,
            "still root:\n{}",
            server.log()
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let nobody = nix_uid("nobody");
    let uids: Vec<String> = status_field(server.pid(), "Uid:")
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    assert_eq!(
        uids,
        vec![nobody.clone(); 4],
        "real, effective, saved and fs uid"
    );
    assert_eq!(status_field(server.pid(), "CapEff:"), "0000000000000000");
    assert_eq!(status_field(server.pid(), "CapPrm:"), "0000000000000000");
    assert!(
        server.log().contains("dropped privileges"),
        "{}",
        server.log()
    );

    for nts in [false, true] {
        let m = block_on(ntp_io::query("127.0.0.1", &server.options(nts))).unwrap();
        assert_eq!(m.stratum, 1);
    }
}

#[test]
fn unknown_user_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("c.toml");
    let port = common::free_port();
    std::fs::write(
        &config,
        format!(
            "[process]\nuser = \"no-such-user-here\"\n\n[[server]]\nlisten = \"127.0.0.1:{port}\"\n"
        ),
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ntp-server"))
        .arg("--config")
        .arg(&config)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("\"no-such-user-here\" does not exist"),
        "{err}"
    );
}

fn nix_uid(name: &str) -> String {
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap();
    passwd
        .lines()
        .find_map(|l| {
            let mut f = l.split(':');
            (f.next() == Some(name)).then(|| f.nth(1).unwrap().to_string())
        })
        .unwrap()
}

#[test]
fn world_readable_private_key_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let pki = common::Pki::create(dir.path(), "open");
    let config = dir.path().join("c.toml");
    std::fs::write(
        &config,
        format!(
            "[[nts-ke-server]]\nlisten = \"127.0.0.1:{}\"\ncertificate-chain-path = \"{}\"\nprivate-key-path = \"{}\"\n",
            common::free_port(),
            pki.cert.display(),
            pki.key.display()
        ),
    )
    .unwrap();
    let check = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_ntp-server"))
            .arg("check-config")
            .arg(&config)
            .output()
            .unwrap()
    };
    // 0600 (as the test PKI writes it) and 0640 (Debian's ssl-cert group) pass.
    assert!(
        check().status.success(),
        "{}",
        String::from_utf8_lossy(&check().stderr)
    );
    std::fs::set_permissions(&pki.key, std::fs::Permissions::from_mode(0o640)).unwrap();
    assert!(check().status.success());
    // Readable by everyone: refused, naming the line and the file.
    std::fs::set_permissions(&pki.key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = check();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(":4:"), "{err}");
    assert!(err.contains("private key"), "{err}");
    assert!(err.contains("644"), "{err}");
}
