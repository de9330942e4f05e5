//! Unit tests: the shipped example, and the documentation against the key lists.

use super::*;

#[test]
fn shipped_example_parses_without_errors_or_warnings() {
    let loaded = parse(include_str!("../../../../docs/ntp-server.toml")).unwrap();
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    assert!(!loaded.config.servers.is_empty());
    assert!(!loaded.config.nts_ke_servers.is_empty());
}

#[test]
fn compatibility_table_names_every_key() {
    let docs = include_str!("mod.rs");
    for (section, list) in keys::ALL {
        for key in *list {
            assert!(
                [
                    format!("`{}`", key.name),
                    format!("[{}]", key.name),
                    format!(".{}]", key.name)
                ]
                .iter()
                .any(|form| docs.contains(form.as_str())),
                "{section} key {} is missing from the module documentation",
                key.name
            );
        }
    }
}
